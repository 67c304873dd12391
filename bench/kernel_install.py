#!/usr/bin/env python3
"""Install kernel flows: odpctl's library against C ``ovs-dpctl add-flows``.

Run inside the user-mode-linux guest (it needs the openvswitch module, and root):

    testbed/uml-run --rw "$PWD" -- .venv/bin/python bench/kernel_install.py

It makes a network namespace with a datapath and ``--flows`` weave-like flows
(bench/kernelbed.py), then, ``--repeat`` rounds, interleaved, into an empty
datapath each time:

  (a) C        ``ovs-dpctl add-flows system@DP FILE``: the same flows, one
               ``MATCH ACTIONS`` line each, read from a file (a whole process
               run, start-up included; its start-up alone, adding one flow, is
               shown too)
  (b) library  ``Dpif.add_flows(dp, flows)`` from `Flow` objects (encoding
               included), batched

and checks after each run that the datapath holds every flow; after the first
round, that both installed the very same flows (their dumps' text agree).
Figures are the best of the rounds.  Target (DESIGN.md, Performance): (b) at
least 20,000 flows/s.  Exit status 0 on PASS, 1 on FAIL.  The namespace and the
datapath are deleted at the end, whatever happens.

``--profile`` runs (b) once more under a sampling profiler (bench/kernelbed.py:
cProfile reads the clock around every call, a syscall in the guest); the socket
counts (sends, receives, datagrams) come from wrapping the connection's socket,
strace-free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernelbed import (
    Bed,
    SamplingProfiler,
    SyscallCounter,
    add_flows_line,
    bed,
    dpctl_line,
    now_ms,
    table,
    weave_flows,
)

from odpctl.odp.flow import Flow, encode_flow_attrs
from odpctl.odp.header import odp_payload
from odpctl.odp.uapi import FlowCmd

TARGET = 20_000


def install_library(b: Bed, flows: list[Flow]) -> float:
    t0 = time.perf_counter()
    results = b.dpif.add_flows(b.dp, flows)
    elapsed = time.perf_counter() - t0
    failed = [r for r in results if r is not None]
    if failed:
        raise SystemExit(f"library: {len(failed)} flows failed, first: {failed[0]}")
    return elapsed


def timed_encode(b: Bed, flows: list[Flow]) -> float:
    """What add_flows spends turning Flows into request payloads (no I/O)."""
    fam, ifindex = b.dpif._flow_family, b.dp.ifindex
    t0 = time.perf_counter()
    for flow in flows:
        odp_payload(FlowCmd.NEW, fam.version, ifindex, encode_flow_attrs(flow))
    return time.perf_counter() - t0


def expect_count(b: Bed, n: int, who: str) -> None:
    got = b.dpif.get_datapath(b.dp).flows
    if got != n:
        raise SystemExit(f"{who}: the datapath holds {got} flows, expected {n}")


def dump_text(b: Bed) -> list[str]:
    now = now_ms()
    return sorted(dpctl_line(f, now) for f in b.dpif.dump_flows(b.dp))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=100_000, help="flows per install")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each measurement")
    ap.add_argument("--profile", action="store_true", help="profile one more run of (b)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    n = args.flows
    flows = weave_flows(n)

    with bed("bi") as b, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.txt"
        path.write_text("".join(add_flows_line(f) + "\n" for f in flows))
        one = Path(tmp) / "one.txt"
        one.write_text(add_flows_line(flows[0]) + "\n")

        b.dpif.flush_flows(b.dp)
        startup = []
        for _ in range(3):
            startup.append(b.ovs_dpctl("add-flows", b.dpctl_dp, str(one)))
            b.dpif.flush_flows(b.dp)

        with SyscallCounter(b.dpif) as sc:
            install_library(b, flows)
        expect_count(b, n, "library")
        print(f"library install of {n:,} flows: {sc.describe()}")
        reference = dump_text(b)
        b.dpif.flush_flows(b.dp)
        b.ovs_dpctl("add-flows", b.dpctl_dp, str(path))
        expect_count(b, n, "ovs-dpctl")
        if dump_text(b) != reference:
            raise SystemExit("ovs-dpctl and the library installed different flows")
        print(f"check: ovs-dpctl add-flows and the library install the same {n:,} flows")
        b.dpif.flush_flows(b.dp)

        times: dict[str, list[float]] = {"a": [], "b": []}
        for _ in range(args.repeat):
            times["a"].append(b.ovs_dpctl("add-flows", b.dpctl_dp, str(path)))
            expect_count(b, n, "ovs-dpctl")
            b.dpif.flush_flows(b.dp)
            times["b"].append(install_library(b, flows))
            expect_count(b, n, "library")
            b.dpif.flush_flows(b.dp)

        encode = min(timed_encode(b, flows) for _ in range(2))
        a, lib = min(times["a"]), min(times["b"])
        rows = [
            (
                "(a) C ovs-dpctl add-flows FILE",
                f"{a:.3f}",
                f"{statistics.median(times['a']):.3f}",
                f"{n / a:,.0f}",
                "1.00x",
            ),
            (
                "(b) library Dpif.add_flows (batched)",
                f"{lib:.3f}",
                f"{statistics.median(times['b']):.3f}",
                f"{n / lib:,.0f}",
                f"{a / lib:.2f}x",
            ),
        ]
        print()
        print(
            f"install {n:,} kernel flows into an empty datapath, best of {args.repeat} "
            f"(ovs-dpctl start-up, adding 1 flow: {min(startup) * 1000:.0f} ms; "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        print(table(rows, ("what", "best s", "median s", "flows/s", "speed vs C")))
        print(
            f"(b) includes encoding the {n:,} requests in Python: {encode:.3f} s "
            f"({encode / n * 1e6:.1f} us/flow); the rest is the kernel and the syscalls"
        )
        rate = n / lib
        verdict = "PASS" if rate >= TARGET else "FAIL"
        print(
            f"\n{verdict}: library {rate:,.0f} flows/s ({a / lib:.2f}x ovs-dpctl's "
            f"{n / a:,.0f}), target >= {TARGET:,} flows/s"
        )

        if args.profile:
            with SamplingProfiler() as prof:
                install_library(b, flows)
            b.dpif.flush_flows(b.dp)
            print(f"\nprofile of (b):\n{prof.report()}")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

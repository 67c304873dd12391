#!/usr/bin/env python3
"""Dump 100,000 kernel flows: odpctl's library against C ``ovs-dpctl dump-flows``.

Run inside the user-mode-linux guest (it needs the openvswitch module, and root):

    testbed/uml-run --rw "$PWD" -- .venv/bin/python bench/kernel_dump.py

It makes a network namespace with a datapath, installs ``--flows`` weave-like
flows through the library (``Dpif.add_flows``, see bench/kernelbed.py), checks
that the library's text of every flow is byte for byte what ovs-dpctl prints,
and then times, ``--repeat`` rounds, interleaved:

  (a) C        ``ovs-dpctl dump-flows system@DP > /dev/null`` (a whole process run,
               start-up included; its start-up alone, on an empty datapath of the
               same namespace, is shown too)
  (b) decode   ``Dpif.dump_flows``: every flow decoded into a `Flow`, streamed
  (c) text     (b) plus each flow formatted as ovs-dpctl's line (match, stats,
               actions) and written to /dev/null: the apples-to-apples figure
  (d) CLI      ``odpctl --netns NS flow dump DP --format odp --sort none`` >
               /dev/null, interpreter start-up included (if the command exists)

Each figure is the best of its rounds.  Target (DESIGN.md, Performance): (c)
within 1.5x of (a).  Exit status 0 on PASS, 1 on FAIL.  The namespace and the
datapath are deleted at the end, whatever happens.

``--profile`` runs (c) once more under a sampling profiler (bench/kernelbed.py:
cProfile reads the clock around every call, a syscall in the guest, and would
measure itself) and prints where the time goes; the socket counts (datagrams,
their sizes, syscalls) come from wrapping the connection's socket, strace-free.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernelbed import (
    Bed,
    SamplingProfiler,
    SyscallCounter,
    bed,
    dpctl_line,
    now_ms,
    table,
    weave_flows,
)

TARGET = 1.5
REPO = Path(__file__).resolve().parent.parent


def library_decode(b: Bed) -> int:
    n = 0
    for _flow in b.dpif.dump_flows(b.dp):
        n += 1
    return n


def library_text(b: Bed) -> int:
    n = 0
    now = now_ms()
    line = dpctl_line
    # A 1 MiB buffer: ~20 writes for 100,000 lines, where the default 8 KiB
    # would make ~2,500 (each a syscall, ~100 us in the guest).
    with open(os.devnull, "w", buffering=1 << 20) as sink:
        write = sink.write
        for flow in b.dpif.dump_flows(b.dp):
            write(line(flow, now))
            write("\n")
            n += 1
    return n


def cli_argv(b: Bed) -> list[str] | None:
    exe = REPO / ".venv" / "bin" / "odpctl"
    if not exe.exists():
        exe_s = shutil.which("odpctl")
        if exe_s is None:
            return None
        exe = Path(exe_s)
    argv = [
        str(exe),
        "--netns",
        b.netns,
        "flow",
        "dump",
        b.dp_name,
        "--format",
        "odp",
        "--sort",
        "none",
    ]
    probe = subprocess.run([*argv[:5], "--help"], capture_output=True, text=True)
    if probe.returncode or "--format" not in probe.stdout or "--sort" not in probe.stdout:
        return None
    return argv


def run_cli(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def check_text(b: Bed, n: int) -> None:
    """Every line the library prints must be ovs-dpctl's, in the same order."""
    theirs = b.ovs_dpctl_output("dump-flows", b.dpctl_dp).splitlines()
    now = now_ms()
    ours = [dpctl_line(f, now) for f in b.dpif.dump_flows(b.dp)]
    if len(theirs) != n or len(ours) != n:
        raise SystemExit(f"flow count: ovs-dpctl {len(theirs)}, library {len(ours)}, want {n}")
    if ours != theirs:
        if sorted(ours) == sorted(theirs):
            print("note: same lines as ovs-dpctl, in another order")
            return
        for mine, other in zip(sorted(ours), sorted(theirs), strict=True):
            if mine != other:
                raise SystemExit(
                    f"text differs from ovs-dpctl:\n  ours:   {mine}\n  theirs: {other}"
                )
    print(f"text check: all {n:,} lines identical to ovs-dpctl dump-flows")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=100_000, help="flows in the datapath")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each measurement")
    ap.add_argument("--profile", action="store_true", help="profile one more run of (c)")
    ap.add_argument("--no-cli", action="store_true", help="skip (d), the odpctl command")
    ap.add_argument("--no-check", action="store_true", help="skip the text check")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    n = args.flows

    with bed("bd") as b:
        flows = weave_flows(n)
        t0 = time.perf_counter()
        with SyscallCounter(b.dpif) as sc:
            results = b.dpif.add_flows(b.dp, flows)
        install = time.perf_counter() - t0
        failed = [r for r in results if r is not None]
        if failed:
            raise SystemExit(f"{len(failed)} flows failed to install, first: {failed[0]}")
        del flows, results
        count = b.dpif.get_datapath(b.dp).flows
        if count != n:
            raise SystemExit(f"the datapath holds {count} flows, expected {n}")
        print(
            f"installed {n:,} flows in {install:.2f} s ({n / install:,.0f} flows/s); "
            f"{sc.describe()}"
        )

        if not args.no_check:
            check_text(b, n)

        cli = None if args.no_cli else cli_argv(b)
        with SyscallCounter(b.dpif) as sc:
            library_decode(b)
        print(f"one dump: {sc.describe()}")

        empty = b.dpif.create_datapath(b.dp_name + "e")
        startup = min(b.ovs_dpctl("dump-flows", f"system@{empty.name}") for _ in range(3))
        cli_startup = None
        if cli:
            empty_argv = [*cli[:5], empty.name, *cli[6:]]
            cli_startup = min(run_cli(empty_argv) for _ in range(2))
        b.dpif.delete_datapath(empty.name)
        times: dict[str, list[float]] = {k: [] for k in "abcd"}
        for _ in range(args.repeat):
            times["a"].append(b.ovs_dpctl("dump-flows", b.dpctl_dp))
            for key, fn in (("b", library_decode), ("c", library_text)):
                t0 = time.perf_counter()
                got = fn(b)
                times[key].append(time.perf_counter() - t0)
                if got != n:
                    raise SystemExit(f"({key}) dumped {got} flows, expected {n}")
            if cli:
                times["d"].append(run_cli(cli))

        a = min(times["a"])
        rows = []
        labels = {
            "a": "(a) C ovs-dpctl dump-flows > /dev/null",
            "b": "(b) library: dump -> Flow objects",
            "c": "(c) library: dump + ovs-dpctl text -> sink",
            "d": "(d) odpctl flow dump --format odp (CLI)",
        }
        for key in "abcd":
            if not times[key]:
                continue
            best = min(times[key])
            rows.append(
                (
                    labels[key],
                    f"{best:.3f}",
                    f"{statistics.median(times[key]):.3f}",
                    f"{n / best:,.0f}",
                    f"{best / a:.2f}x",
                )
            )
        print()
        print(
            f"dump of {n:,} kernel flows, best of {args.repeat}; start-up alone (an empty "
            f"datapath): ovs-dpctl {startup * 1000:.0f} ms"
            + (f", odpctl {cli_startup * 1000:.0f} ms" if cli_startup is not None else "")
            + f"; load average {os.getloadavg()[0]:.1f}"
        )
        print(table(rows, ("what", "best s", "median s", "flows/s", "vs C")))
        ratio = min(times["c"]) / a
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"\n{verdict}: (c)/(a) = {ratio:.2f}x, target <= {TARGET}x")

        if args.profile:
            with SamplingProfiler() as prof:
                library_text(b)
            print(f"\nprofile of (c):\n{prof.report()}")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Userspace datapath control plane: flow installs, dumps and misses per second.

Run as root: ``.venv/bin/python bench/userspace_flows.py`` (``--help``).

A ``python -m odpctl.datapath`` server in a namespace of its own, pinned to
one CPU, and the library's `Dpif` on another, over the unix socket:

- **install**: ``--flows`` Weave-like flows (in_port, eth, ipv4/24 masked;
  set(tunnel(...)) and output) with ``Dpif.add_flows`` (batched requests).
- **dump**: all of them back with ``Dpif.dump_flows``, twice: the first
  dump encodes each flow's key and mask (done lazily), the second reuses it.
- **miss to flow**: a packet that misses (executed with an output to a port
  that has no flow, through a recirculation), its upcall received, a flow
  installed for it: the latency a router sees, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from odpctl.odp.actions import Recirc  # noqa: E402
from odpctl.odp.dpif import Dpif, DpRef  # noqa: E402
from odpctl.odp.flow import Flow  # noqa: E402
from odpctl.odp.keys import FlowKey  # noqa: E402
from odpctl.odp.packet import Execute  # noqa: E402
from odpctl.odp.text.actions import parse_actions  # noqa: E402
from odpctl.odp.text.keys import parse_key  # noqa: E402
from odpctl.odp.uapi import KeyAttr  # noqa: E402


def flows(n: int) -> list[Flow]:
    out = []
    actions = parse_actions("set(tunnel(tun_id=0x2a,dst=10.0.0.9,ttl=64,flags(df|key))),2")
    for i in range(n):
        k, m = parse_key(
            f"in_port(1),eth(src=02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}),"
            f"eth_type(0x0800),ipv4(dst=10.{i >> 8 & 255}.{i & 255}.0/255.255.255.0)"
        )
        out.append(Flow(k, m, actions))
    return out


def arp(i: int) -> bytes:
    mac = bytes([2, 0, 0, i >> 16 & 255, i >> 8 & 255, i & 255])
    return (
        b"\xff" * 6
        + mac
        + b"\x08\x06"
        + bytes.fromhex("0001080006040001")
        + mac
        + bytes(4)
        + bytes(6)
        + bytes(4)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=20_000)
    parser.add_argument("--misses", type=int, default=2_000)
    parser.add_argument("--profile", metavar="FILE", help="profile the server into FILE")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it makes a network namespace")
    cpus = sorted(os.sched_getaffinity(0))
    ns = f"obf{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    sock = os.path.join(tempfile.mkdtemp(prefix="odpb-"), "dp.sock")
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    server = subprocess.Popen(
        [sys.executable, *profile, "-m", "odpctl.datapath", "--socket", sock, "--netns", ns],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        preexec_fn=lambda: os.sched_setaffinity(0, cpus[-1:]),
    )
    if len(cpus) > 1:
        os.sched_setaffinity(0, cpus[:-1])
    try:
        while not os.path.exists(sock):
            time.sleep(0.05)
        time.sleep(0.2)
        with Dpif.open(f"unix:{sock}") as d:
            dp = d.create_datapath("bench")
            batch = flows(args.flows)
            t = time.perf_counter()
            errors = [r for r in d.add_flows(dp, batch) if r is not None]
            install = len(batch) / (time.perf_counter() - t)
            assert not errors, errors[:3]
            dumps = []
            for _ in range(2):
                t = time.perf_counter()
                n = sum(1 for _ in d.dump_flows(dp))
                dumps.append(n / (time.perf_counter() - t))
            print(f"install   {install:>10,.0f} flows/s   ({len(batch)} flows, batched)")
            print(f"dump      {dumps[0]:>10,.0f} flows/s first, {dumps[1]:,.0f} flows/s again")
            latencies = miss_to_flow(d, dp, args.misses)
            print(
                f"miss to flow installed   p50 {statistics.median(latencies) * 1e3:.2f} ms   "
                f"p99 {statistics.quantiles(latencies, n=100)[98] * 1e3:.2f} ms   "
                f"({len(latencies) / sum(latencies):,.0f}/s one at a time)"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["ip", "netns", "del", ns])


def miss_to_flow(d: Dpif, dp: DpRef, n: int) -> list[float]:
    """Execute a packet that recirculates into a miss; time upcall + install."""
    out = []
    with d.open_upcall_channel() as channel:
        # In port 0 is the local port: its upcall PID gets the misses.
        d.set_vport(dp, 0, upcall_pids=[channel.port_id])
        for i in range(n):
            start = time.perf_counter()
            d.execute(
                dp,
                Execute(
                    arp(i),
                    FlowKey({KeyAttr.IN_PORT: 0}),
                    [Recirc(1 + i)],
                ),
            )
            upcall = channel.receive(timeout=5)
            assert upcall is not None
            key = upcall.key
            mask = FlowKey(
                {
                    KeyAttr.RECIRC_ID: 0xFFFFFFFF,
                    KeyAttr.IN_PORT: 0xFFFFFFFF,
                    KeyAttr.ETHERNET: key[KeyAttr.ETHERNET]._replace(src=b"\xff" * 6, dst=bytes(6)),
                    KeyAttr.ETHERTYPE: 0xFFFF,
                }
            )
            d.add_flow(dp, Flow(key, mask, parse_actions("1")))
            out.append(time.perf_counter() - start)
    return out


if __name__ == "__main__":
    main()

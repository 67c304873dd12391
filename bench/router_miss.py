#!/usr/bin/env python3
"""Miss-to-flow latency and new flows per second through the overlay router.

    .venv/bin/python -P bench/router_miss.py --datapath userspace          # here
    testbed/uml-run --rw "$PWD" -- .venv/bin/python -P bench/router_miss.py --datapath kernel

Builds the 3-host overlay (odpctl/demo/overlaylab.py), lets container h0c0 learn
h1c0's MAC with a ping, then sends ``--frames`` frames from h0c0 to h1c0,
each from a new source MAC (ethertype 0x88B6, local experimental), in one
burst: every frame is a miss on host 0 and a tunnel-ingress miss on host 1,
and each installs a flow (``--rate`` paces the frames).  Reported: new
flows per second on host 0 (from the first frame sent, by the wall clock
the namespaces share, to the last flow installed, once no more come), and the router's own miss
handling time (decide, install, execute) p50 and p99 from its status, and
an accounting line: the frames sent against the flows installed and the
counted losses (no flow, drops, errors, upcalls lost, receive drops).
Targets (DESIGN.md): p99 <= 5 ms; >= 10,000 new flows/s on the userspace
datapath, >= 2,500 on the kernel's.  Run it with ``python -P`` (bench/dns.py
must not stand for dnspython).  To measure another tree, run from its
directory with PYTHONPATH=<tree>: the routers start with ``-m``, which looks
in the working directory first.
Everything is torn down at the end.  Exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError
from odpctl.router import kernel_datapath_available

SENDER = r"""
import socket, sys, time
dst = bytes.fromhex(sys.argv[1].replace(":", ""))
n = int(sys.argv[2])
rate = float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
payload = bytes(46)
print(time.time())  # the first frame's send time: the wall clock is one for all namespaces
start = time.perf_counter()
for i in range(n):
    if rate > 0:
        ahead = start + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    src = bytes([0x02, 0xbe, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255])
    s.send(dst + src + b"\x88\xb6" + payload)
print(time.perf_counter() - start)
"""


TARGET = {"kernel": 2500, "userspace": 10000}
POLL = 0.1  # seconds between looks at the router's status (--poll)
# A frame of the burst became a flow, or is counted in one of the others
# (heartbeats and the like can only add to them: a few at most).
ACCOUNTED = ("flows_installed", "no_flow", "drops", "errors", "lost", "rx_dropped")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def _strace(pid: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = Path(tempfile.mkstemp(prefix="odpbench-strace-")[1])
    proc = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", str(out), "-p", str(pid)])
    time.sleep(1.0)  # attached to every thread
    return proc, out


def _strace_total(tracer: tuple[subprocess.Popen[bytes], Path]) -> int:
    """System calls counted, once strace has detached and written its summary."""
    proc, out = tracer
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    lines = out.read_text().splitlines()
    out.unlink()
    # "% time, seconds, usecs/call, calls, [errors,] total": calls is the 4th.
    total = next((line.split() for line in lines if line.rstrip().endswith("total")), [])
    return int(total[3]) if len(total) > 4 else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datapath", choices=("kernel", "userspace", "auto"), default="auto")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument(
        "--handlers",
        type=int,
        default=0,
        help="miss-handler threads per router (default: the router's)",
    )
    parser.add_argument(
        "--strace",
        action="store_true",
        help="count the router's and its datapath server's system calls "
        "during the burst (strace -c; slows them down)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=POLL,
        help="seconds between the bench's looks at the router's counters during the burst",
    )
    parser.add_argument(
        "--to",
        choices=("remote", "local"),
        default="remote",
        help="where the burst goes: a container on host 1 (through the tunnel: a miss on "
        "host 0 and one on host 1), or the other container of host 0 (only host 0's "
        "router works: in the guest's one CPU, the routers no longer take turns)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="frames per second (default: as fast as the sender can)",
    )
    args = parser.parse_args()
    kind = args.datapath
    if kind == "auto":
        kind = "kernel" if kernel_datapath_available() else "userspace"
    with Lab("odpbench") as lab:
        overlay = OverlayLab(lab, datapath=kind)
        try:
            for host in overlay.hosts:
                overlay.start_router(
                    host.index, extra=(("--handlers", str(args.handlers)) if args.handlers else ())
                )
            overlay.wait_ready(timeout=60)
            time.sleep(5)  # heartbeats: onto the fast path
            src = overlay.hosts[0].containers[0]
            dst = (
                overlay.hosts[0].containers[1]
                if args.to == "local"
                else overlay.hosts[1].containers[0]
            )
            if not overlay.ping(src, dst):
                print("FAIL: no ping between the containers")
                return 1
            mac = lab.run(dst.ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
            before = overlay.status(0)["router"]
            control = ControlClient(overlay.hosts[0].control, timeout=10)

            def counters() -> dict[str, Any]:
                """The router's counters, by the light request where it has one."""
                try:
                    result: dict[str, Any] = control.request("misses")
                except OdpError:  # a router of before it: the whole status
                    result = overlay.status(0)["router"]
                return result

            router_proc = overlay.hosts[0].router
            assert router_proc is not None
            pids = [router_proc.pid, *_children(router_proc.pid)]  # and its datapath server
            # What answering this loop's status requests costs when idle, to take off.
            idle_start, idle_cpu = time.monotonic(), [_cpu_seconds(p) for p in pids]
            for _ in range(10):
                counters()
                time.sleep(POLL)
            cpu_before = [_cpu_seconds(p) for p in pids]
            t_before = time.monotonic()
            idle_rate = [
                (b - a) / (t_before - idle_start) for a, b in zip(idle_cpu, cpu_before, strict=True)
            ]
            tracers = [_strace(p) for p in pids] if args.strace else []
            sent = lab.run(
                src.ns,
                sys.executable,
                "-c",
                SENDER,
                mac,
                str(args.frames),
                str(args.rate),
                timeout=120,
            )
            if sent.returncode != 0:
                print(f"FAIL: sender: {sent.stderr}")
                return 1
            # From the first frame sent (not from starting the sender: a Python
            # start-up, over a second in the UML guest, would swamp the figure).
            started = float(sent.stdout.split()[0])
            accounted, changed = 0, time.time()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                router = counters()
                now = sum(router.get(k, 0) - before.get(k, 0) for k in ACCOUNTED)
                if now != accounted:
                    accounted, changed = now, time.time()
                elif now >= args.frames or time.time() - changed > 3:
                    break  # every frame accounted for, or no more coming
                time.sleep(args.poll)
            router = overlay.status(0)["router"]
            syscalls = [_strace_total(t) for t in tracers]
            installed = router["flows_installed"] - before["flows_installed"]
            # When the last flow went in, as the router saw it (else: as we did).
            finished = router.get("last_installed") or changed
            spent = time.monotonic() - t_before
            cpu = [
                _cpu_seconds(p) - c - r * spent
                for p, c, r in zip(pids, cpu_before, idle_rate, strict=True)
            ]
        finally:
            overlay.close()
    elapsed = finished - started
    rate = installed / elapsed if elapsed > 0 else 0.0
    latency = router["miss_latency"]
    delta = {k: router.get(k, 0) - before.get(k, 0) for k in ("misses", *ACCOUNTED)}
    counted = sum(delta[k] for k in ACCOUNTED if k != "flows_installed")
    rounds = sum(h.get("rounds", 0) for h in router["handlers"]) - sum(
        h.get("rounds", 0) for h in before["handlers"]
    )
    print(
        f"datapath {kind}: {args.frames} frames sent in {float(sent.stdout.split()[1]):.3f} s; "
        f"{installed} flows installed in {elapsed:.3f} s: {rate:,.0f} new flows/s "
        f"(target >= {TARGET[kind]:,})"
    )
    print(
        f"router miss handling: p50 {latency.get('p50_ms')} ms, p99 {latency.get('p99_ms')} ms "
        f"over {latency.get('samples')} misses (target p99 5 ms); "
        f"{delta['misses']} misses in {rounds or 'unbatched'} rounds, "
        f"{len(router['handlers'])} handler(s)"
    )
    misses = max(1, delta["misses"])
    print(
        f"CPU per miss: router {cpu[0] / misses * 1e6:.0f} us"
        + (f", datapath server {cpu[1] / misses * 1e6:.0f} us" if len(cpu) > 1 else "")
        + f" (net of idle status polling; load average {os.getloadavg()[0]:.1f})"
    )
    if syscalls:
        print(
            "system calls per miss (strace -c, status polling included): router "
            + ", datapath server ".join(f"{n / misses:.1f}" for n in syscalls)
        )
    print(
        f"accounting: sent {args.frames} = flows {delta['flows_installed']} + counted "
        f"{counted} ({', '.join(f'{k} {delta[k]}' for k in ACCOUNTED[1:])}) "
        f"+ unaccounted {args.frames - delta['flows_installed'] - counted}; "
        f"drop reasons {router.get('drop_reasons')}, "
        f"error reasons {router.get('error_reasons')}"
    )
    ok = rate >= TARGET[kind] and latency.get("p99_ms", 1e9) <= 5
    print("PASS" if ok else "FAIL (figures above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

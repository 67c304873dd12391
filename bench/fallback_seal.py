#!/usr/bin/env python3
"""The userspace fallback sealed (a mesh password) against plaintext (none), side by side.

    .venv/bin/python bench/fallback_seal.py            # as root, on this machine

Two overlays of 2 hosts x 1 container (odpctl/demo/overlaylab.py, userspace datapath)
run at once, UDP 6784 blocked in every host so that all traffic takes the
fallback: one with a mesh password (every datagram sealed), one without
(plaintext).  Interleaved, ``--rounds`` times: an iperf3 TCP run of
``--seconds`` seconds between the containers, and ``--pings`` pings (their
round trips, two frames each).  Reported: the best throughput and the median
round trip of each, the throughput ratio sealed / plaintext, the latency the
sealing adds per frame, and what sealing and opening a full-size frame cost
the CPU alone.  Everything is torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odpctl.crypto.keys import direction_keys
from odpctl.crypto.seal import Opener, Sealer
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

BLOCK_VXLAN = [
    ("add", "table", "inet", "odpblock"),
    ("add", "chain", "inet", "odpblock", "in", "{ type filter hook input priority 0 ; }"),
    ("add", "rule", "inet", "odpblock", "in", "udp", "dport", "6784", "drop"),
]


def iperf(lab: Lab, server_ns: str, client_ns: str, address: str, seconds: int) -> float:
    """Bits per second received, client to server."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        out = lab.run(
            client_ns, "iperf3", "-c", address, "-t", str(seconds), "-J", timeout=seconds + 30
        )
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])
    finally:
        server.kill()
        server.wait()


def round_trips(lab: Lab, src_ns: str, address: str, count: int) -> list[float]:
    """Milliseconds of each of ``count`` pings (a fresh miss each way: no flows here)."""
    out = lab.run(
        src_ns, "ping", "-c", str(count), "-i", "0.02", "-W", "2", address, timeout=count + 30
    )
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", out.stdout)]


def cpu_cost(frames: int = 20000, size: int = 1400) -> float:
    """Microseconds to seal and open one ``size``-byte frame, in this process."""
    keys = direction_keys(bytes(32), b"seal", outbound=True)
    sealer, opener = Sealer(keys.send), Opener(keys.send)
    frame, header = bytes(size), b"OE\0\1\0\2"
    start = time.perf_counter()
    for _ in range(frames):
        opener.open(sealer.seal(header, frame), len(header))
    return (time.perf_counter() - start) / frames * 1e6


def build(lab: Lab, password: Path | None) -> OverlayLab:
    overlay = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
    for host in overlay.hosts:
        for rule in BLOCK_VXLAN:
            done = lab.run(host.ns, "nft", *rule)
            if done.returncode != 0:
                raise RuntimeError(f"nft {' '.join(rule)}: {done.stderr}")
    extra = ("--password-file", str(password)) if password is not None else ()
    for host in overlay.hosts:
        overlay.start_router(host.index, extra=extra)
    return overlay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pings", type=int, default=200)
    args = parser.parse_args()
    password = Path(tempfile.mkdtemp(prefix="odpctl-bench-")) / "password"
    password.write_text("bench\n")
    best: dict[str, float] = {}
    rtts: dict[str, list[float]] = {"sealed": [], "plaintext": []}
    with Lab("odpseal") as sealed_lab, Lab("odpplain") as plain_lab:
        labs = {
            "sealed": (sealed_lab, build(sealed_lab, password)),
            "plaintext": (plain_lab, build(plain_lab, None)),
        }
        try:
            for name, (_, overlay) in labs.items():
                overlay.wait_ready(timeout=60, overlay="fallback")
                c0, c1 = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
                if not overlay.ping(c0, c1):
                    print(f"FAIL: the {name} containers do not reach each other")
                    return 1
            encryption = {
                c.get("encryption") for c in labs["sealed"][1].status(0)["router"]["connections"]
            }
            for _ in range(args.rounds):
                for name, (lab, overlay) in labs.items():
                    c0, c1 = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
                    bps = iperf(lab, c1.ns, c0.ns, c1.address, args.seconds)
                    best[name] = max(best.get(name, 0.0), bps)
                    rtts[name] += round_trips(lab, c0.ns, c1.address, args.pings)
        finally:
            for _, overlay in labs.values():
                overlay.close()
    if encryption != {"sealed"}:
        print(f"FAIL: the password overlay's connections are {encryption}, not sealed")
        return 1
    median = {name: statistics.median(values) for name, values in rtts.items()}
    for name in ("sealed", "plaintext"):
        print(
            f"{name:>10}: {best[name] / 1e6:9.2f} Mbit/s   round trip median "
            f"{median[name]:.3f} ms ({len(rtts[name])} pings)"
        )
    print(f"throughput sealed / plaintext: {best['sealed'] / best['plaintext']:.2f}")
    added = (median["sealed"] - median["plaintext"]) / 2 * 1000
    print(f"latency sealing adds per frame: {added:+.1f} us (half the round trip's difference)")
    print(f"CPU alone: seal + open of a 1400-byte frame {cpu_cost():.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

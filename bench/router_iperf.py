#!/usr/bin/env python3
"""Cross-host TCP throughput: the overlay's fast datapath against the bare underlay
and against the kernel's own bridge + vxlan device, side by side in one run.

    testbed/uml-run --rw "$PWD" -- .venv/bin/python bench/router_iperf.py

In the 3-host overlay (odpctl/demo/overlaylab.py, kernel datapath), ``--rounds``
rounds of ``--seconds``-second iperf3 runs, interleaved:

  (a) overlay   container h0c0 -> container h1c0 through the routers' flows (VXLAN)
  (b) underlay  host h0 -> host h1 over the bare veth underlay
  (c) bridge    a container behind a Linux bridge + vxlan device on h0 -> the same
                on h1 (VNI 42, UDP 4789): the kernel's own overlay

The best of the rounds is reported.  Targets (DESIGN.md): (a) >= 0.9 x (b), and
(a) >= (c).  Everything is torn down at the end.  Exit 0 on PASS, 1 on FAIL.
Use --datapath userspace (on this machine) to measure the userspace datapath (a, b only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab


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
        result = json.loads(out.stdout)
        return float(result["end"]["sum_received"]["bits_per_second"])
    finally:
        server.kill()
        server.wait()


def kernel_bridge(overlay: OverlayLab) -> tuple[str, str, str]:
    """A container behind bridge + vxlan on hosts 0 and 1; (ns0, ns1, address of ns1)."""
    lab = overlay.lab
    names = []
    for i, other in ((0, 1), (1, 0)):
        host, peer = overlay.hosts[i], overlay.hosts[other]
        ns = lab.namespace(f"h{i}bx")
        for argv in (
            (
                "ip",
                "link",
                "add",
                "vx42",
                "type",
                "vxlan",
                "id",
                "42",
                "local",
                host.address,
                "remote",
                peer.address,
                "dstport",
                "4789",
            ),
            ("ip", "link", "add", "brx", "type", "bridge"),
            ("ip", "link", "set", "vx42", "master", "brx", "up"),
            ("ip", "link", "set", "brx", "up"),
        ):
            done = lab.run(host.ns, *argv)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")
        lab.veth(host.ns, "cx", ns, "eth0")
        lab.run(
            host.ns, "ip", "link", "set", "cx", "master", "brx", "mtu", str(overlay.overlay_mtu)
        )
        lab.run(ns, "ip", "link", "set", "eth0", "mtu", str(overlay.overlay_mtu))
        lab.address(ns, "eth0", f"10.50.0.{i + 1}/24")
        names.append(ns)
    return names[0], names[1], "10.50.0.2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datapath", choices=("kernel", "userspace"), default="kernel")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, float] = {}
    with Lab("odpperf") as lab:
        overlay = OverlayLab(lab, datapath=args.datapath)
        try:
            overlay.start_routers()
            overlay.wait_ready(timeout=60)
            time.sleep(5)  # heartbeats: onto the fast path
            c0, c1 = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
            if not overlay.ping(c0, c1):
                print("FAIL: the containers do not reach each other")
                return 1
            runs = {
                "overlay": (c1.ns, c0.ns, c1.address),
                "underlay": (overlay.hosts[1].ns, overlay.hosts[0].ns, overlay.hosts[1].address),
            }
            if args.datapath == "kernel":
                b0, b1, address = kernel_bridge(overlay)
                runs["bridge+vxlan"] = (b1, b0, address)
            for _ in range(args.rounds):
                for name, (server, client, address) in runs.items():
                    bps = iperf(lab, server, client, address, args.seconds)
                    best[name] = max(best.get(name, 0.0), bps)
            fastdp = [c["overlay"] for c in overlay.status(0)["router"]["connections"]]
        finally:
            overlay.close()
    for name, bps in best.items():
        print(f"{name:>13}: {bps / 1e9:8.3f} Gbit/s")
    ratio = best["overlay"] / best["underlay"]
    print(f"overlay / underlay: {ratio:.2f} (target >= 0.9); connections: {fastdp}")
    ok = ratio >= 0.9
    if "bridge+vxlan" in best:
        bridge = best["overlay"] / best["bridge+vxlan"]
        print(f"overlay / kernel bridge+vxlan: {bridge:.2f} (target >= 1.0)")
        ok &= bridge >= 1.0
    print("PASS" if ok else "FAIL (figures above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Userspace datapath forwarding: TCP throughput and small-packet rate.

Run as root: ``.venv/bin/python bench/userspace_forward.py`` (``--help``).

Two hosts (network namespaces) talk through ``odpctl dp serve`` (a server
process in a third namespace, one netdev port per host, a flow each way),
and, side by side in the same run, two hosts talk over a bare veth pair:

- **throughput**: one iperf3 TCP stream; the figure is the datapath's
  bits/s as a ratio of the veth pair's.
- **small packets**: 64-byte frames written onto the sender's interface as
  fast as one process can; the figure is frames/s *received* on the far
  interface (the sender outruns the datapath: what arrives is what it
  forwards).  On the veth pair the sender is the limit.
- **vxlan** (``--vxlan``): the same TCP stream where the datapath
  encapsulates to a Linux vxlan device in another namespace.

``--profile FILE`` runs the server under cProfile and writes its statistics.
Nothing here is a timed test: the machines are noisy, so each figure is the
best of ``--repeat`` runs and the ratio is computed within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from odpctl.odp.dpif import Dpif  # noqa: E402
from odpctl.odp.flow import Flow  # noqa: E402
from odpctl.odp.text.actions import parse_actions  # noqa: E402
from odpctl.odp.text.keys import parse_key  # noqa: E402
from odpctl.odp.uapi import VportType  # noqa: E402
from odpctl.odp.vport import Vport  # noqa: E402


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


class Lab:
    """Namespaces and links, all removed on exit."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []

    def ns(self, name: str) -> str:
        full = f"ob{self.tag}{name}"
        sh("ip", "netns", "add", full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", full, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.namespaces.append(full)
        return full

    def veth(self, ns_a: str, a: str, ns_b: str, b: str) -> None:
        sh("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
        sh("ip", "-n", ns_a, "link", "set", a, "up")
        sh("ip", "-n", ns_b, "link", "set", b, "up")

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            for pid in sh("ip", "netns", "pids", ns).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# With two or more CPUs the server gets the last one to itself and iperf3 the
# others, so that the measurement is of the datapath, not of CPU sharing.
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = CPUS[-1:] if len(CPUS) > 1 else CPUS
LOAD_CPUS = ",".join(map(str, CPUS[:-1] if len(CPUS) > 1 else CPUS))


def iperf(client_ns: str, server_ns: str, ip: str, seconds: float, udp: bool) -> dict[str, float]:
    """One iperf3 run (retried once if iperf3 itself fails, as it may on a busy host)."""
    for attempt in range(2):
        report = _iperf_once(client_ns, server_ns, ip, seconds, udp)
        if "error" not in report:
            end = report["end"]
            if udp:
                s = end["sum"]
                received = s["packets"] - s["lost_packets"]
                return {"bps": s["bits_per_second"], "pps": received / s["seconds"]}
            return {"bps": end["sum_received"]["bits_per_second"], "pps": 0.0}
        print(
            f"iperf3 failed ({report['error']}){', again' if not attempt else ''}", file=sys.stderr
        )
    return {"bps": 0.0, "pps": 0.0}


def _iperf_once(
    client_ns: str, server_ns: str, ip: str, seconds: float, udp: bool
) -> dict[str, Any]:
    pin = ["taskset", "-c", LOAD_CPUS]
    srv = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, *pin, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if sh("ip", "netns", "exec", server_ns, "ss", "-Hltn", "sport = :5201").strip():
                break
            time.sleep(0.05)
        args = ["-u", "-b", "0", "-l", "64"] if udp else []
        try:
            out = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    client_ns,
                    *pin,
                    "iperf3",
                    "-J",
                    "-c",
                    ip,
                    "-t",
                    str(seconds),
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            ).stdout
        except subprocess.TimeoutExpired:
            return {"error": "iperf3 did not finish"}
        try:
            report: dict[str, Any] = json.loads(out)
        except ValueError:
            return {"error": out[-200:] or "no output"}
        return report
    finally:
        srv.kill()
        srv.wait()


# A sender of 64-byte UDP frames as fast as one Python process can, straight
# onto the interface (no socket stack in the way): run in the sending host.
_BLAST = """
import socket, struct, sys, time
dev, dst_mac, seconds = sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])
ip = struct.pack("!BBHHHBBHII", 0x45, 0, 46, 0, 0x4000, 64, 17, 0, 0x0A330001, 0x0A330002)
src_mac = b"\\x02\\0\\0\\0\\0\\x01"
udp = struct.pack("!HHHH", 9, 9, 26, 0) + bytes(18)
frame = dst_mac + src_mac + b"\\x08\\x00" + ip + udp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
send = s.send
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    for _ in range(256):
        try:
            send(frame)
        except OSError:
            pass
    n += 256
print(n)
"""


def _rx_packets(ns: str, dev: str) -> int:
    out = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", dev))
    return int(out[0]["stats64"]["rx"]["packets"])


def blast(src_ns: str, src_dev: str, dst_ns: str, dst_dev: str, seconds: float) -> float:
    """64-byte frames/s that reach ``dst_dev`` while ``src_dev`` is flooded with them."""
    mac = json.loads(sh("ip", "-n", dst_ns, "-j", "link", "show", dst_dev))[0]["address"]
    before = _rx_packets(dst_ns, dst_dev)
    start = time.monotonic()
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            src_ns,
            "taskset",
            "-c",
            LOAD_CPUS,
            sys.executable,
            "-c",
            _BLAST,
            src_dev,
            mac.replace(":", ""),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    time.sleep(0.5)  # what is still on its way
    return (_rx_packets(dst_ns, dst_dev) - before) / (time.monotonic() - start - 0.5)


@contextlib.contextmanager
def userspace_datapath(lab: Lab, profile: str | None) -> Iterator[tuple[str, str, Dpif]]:
    dp_ns = lab.ns("dp")
    sock = os.path.join(tempfile.mkdtemp(prefix="odpb-"), "dp.sock")
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", profile]
    cmd += ["-m", "odpctl.datapath", "--socket", sock, "--netns", dp_ns]
    server = subprocess.Popen(
        cmd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS),
    )
    try:
        for _ in range(400):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        time.sleep(0.2)
        with Dpif.open(f"unix:{sock}") as dpif:
            yield dp_ns, sock, dpif
    finally:
        server.terminate()
        server.wait(timeout=30)


def port_flows(dpif: Dpif, dp: object, pa: int, pb: int) -> None:
    for src, dst in ((pa, pb), (pb, pa)):
        k, m = parse_key(f"in_port({src}),eth()")
        dpif.add_flow(dp, Flow(k, m, parse_actions(str(dst))))  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> None:
    lab = Lab()
    try:
        # The bare veth pair.
        va, vb = lab.ns("va"), lab.ns("vb")
        lab.veth(va, "e0", vb, "e1")
        sh("ip", "-n", va, "addr", "add", "10.50.0.1/24", "dev", "e0")
        sh("ip", "-n", vb, "addr", "add", "10.50.0.2/24", "dev", "e1")
        # Two hosts through the userspace datapath.
        ha, hb = lab.ns("ha"), lab.ns("hb")
        with userspace_datapath(lab, args.profile) as (dp_ns, _sock, dpif):
            lab.veth(dp_ns, "pa", ha, "h0")
            lab.veth(dp_ns, "pb", hb, "h1")
            sh("ip", "-n", ha, "addr", "add", "10.51.0.1/24", "dev", "h0")
            sh("ip", "-n", hb, "addr", "add", "10.51.0.2/24", "dev", "h1")
            dp = dpif.create_datapath("bench")
            pa = dpif.add_vport(dp, Vport("pa")).port_no or 0
            pb = dpif.add_vport(dp, Vport("pb")).port_no or 0
            port_flows(dpif, dp, pa, pb)
            subprocess.run(
                ["ip", "netns", "exec", ha, "ping", "-c", "2", "-i", "0.2", "10.51.0.2"],
                capture_output=True,
            )
            results: dict[str, list[float]] = {"veth": [], "dp": [], "veth_pps": [], "dp_pps": []}
            for _ in range(args.repeat):
                if not args.no_tcp:
                    results["veth"].append(iperf(va, vb, "10.50.0.2", args.seconds, False)["bps"])
                    results["dp"].append(iperf(ha, hb, "10.51.0.2", args.seconds, False)["bps"])
                if not args.no_udp:
                    results["veth_pps"].append(blast(va, "e0", vb, "e1", args.seconds))
                    results["dp_pps"].append(blast(ha, "h0", hb, "h1", args.seconds))
            if args.vxlan:
                results["vxlan"] = vxlan(lab, dpif, dp_ns, args)
            stats = dpif.get_datapath(dp)
        if results["dp"]:
            veth, dpbps = max(results["veth"]), max(results["dp"])
            print(
                f"TCP throughput   veth pair {veth / 1e9:7.2f} Gbit/s   userspace datapath "
                f"{dpbps / 1e9:7.2f} Gbit/s   ratio {dpbps / veth:.3f}"
            )
        if results["dp_pps"]:
            vp, dpp = max(results["veth_pps"]), max(results["dp_pps"])
            print(
                f"64-byte frames   veth pair {vp / 1e3:7.1f} kpps        userspace datapath "
                f"{dpp / 1e3:7.1f} kpps        ratio {dpp / vp:.3f}"
            )
        if args.vxlan:
            print(
                f"TCP over VXLAN   to a Linux vxlan device: {max(results['vxlan']) / 1e9:.2f} "
                "Gbit/s"
            )
        print(
            f"datapath stats: hit={stats.hit} missed={stats.missed} lost={stats.lost} "
            f"exact-match cache hits={stats.cache_hit} masks visited={stats.mask_hit}"
        )
    finally:
        lab.close()


def vxlan(lab: Lab, dpif: Dpif, dp_ns: str, args: argparse.Namespace) -> list[float]:
    remote, host = lab.ns("rm"), lab.ns("hx")
    lab.veth(dp_ns, "u0", remote, "u1")
    sh("ip", "-n", dp_ns, "addr", "add", "10.99.1.1/24", "dev", "u0")
    sh("ip", "-n", remote, "addr", "add", "10.99.1.2/24", "dev", "u1")
    sh(
        "ip",
        "-n",
        remote,
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "42",
        "dstport",
        "4789",
        "remote",
        "10.99.1.1",
        "local",
        "10.99.1.2",
        "dev",
        "u1",
    )
    sh("ip", "-n", remote, "addr", "add", "192.168.80.2/24", "dev", "vx0")
    sh("ip", "-n", remote, "link", "set", "vx0", "up")
    lab.veth(dp_ns, "px", host, "hx0")
    sh("ip", "-n", host, "link", "set", "hx0", "mtu", "1450")
    sh("ip", "-n", host, "addr", "add", "192.168.80.1/24", "dev", "hx0")
    dp = dpif.create_datapath("benchvx")
    px = dpif.add_vport(dp, Vport("px")).port_no
    vx = dpif.add_vport(dp, Vport("vxlan_sys_4789", VportType.VXLAN)).port_no
    for key, actions in (
        (f"in_port({px}),eth()", f"set(tunnel(tun_id=0x2a,dst=10.99.1.2,ttl=64,flags(key))),{vx}"),
        (
            f"tunnel(tun_id=0x2a,src=10.99.1.2,dst=10.99.1.1,ttl=64/0,flags(+key)),in_port({vx}),"
            "eth()",
            str(px),
        ),
    ):
        k, m = parse_key(key)
        dpif.add_flow(dp, Flow(k, m, parse_actions(actions)))
    subprocess.run(
        ["ip", "netns", "exec", host, "ping", "-c", "2", "-i", "0.2", "192.168.80.2"],
        capture_output=True,
    )
    return [
        iperf(host, remote, "192.168.80.2", args.seconds, False)["bps"] for _ in range(args.repeat)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="per iperf3 run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (best kept)")
    parser.add_argument("--no-tcp", action="store_true", help="skip the TCP runs")
    parser.add_argument("--no-udp", action="store_true", help="skip the small-packet run")
    parser.add_argument("--vxlan", action="store_true", help="also measure VXLAN encapsulation")
    parser.add_argument("--profile", metavar="FILE", help="profile the server into FILE")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it makes network namespaces")
    run(args)


if __name__ == "__main__":
    main()

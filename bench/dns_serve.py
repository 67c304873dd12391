#!/usr/bin/env python3
"""DNS: queries per second answered by one router, beside dnsmasq; and how fast a
new name reaches every host of a 3-host mesh.

    .venv/bin/python bench/dns_serve.py

Queries per second: one host namespace runs a router (userspace datapath)
serving DNS on 10.53.0.1 with ``--names`` names registered (web0..), and
dnsmasq serving the same names from a hosts file on 10.53.0.2 (local TTL 1,
as ours); `dnsperf` (Debian dnsperf) in the same namespace asks each in turn,
``--rounds`` times, for ``--seconds`` each, the names in random order.  The
best round of each is reported, and their ratio: target >= 0.5 of dnsmasq.

Propagation: 3 hosts, each router serving on its loopback; a poller in each
host asks its own router for a new name every millisecond; the name is added
on host 0, and the time until the last host answers it is taken, ``--names``
... ``--trials`` times.  Needs root; everything is torn down at the end.
Exit status 0 on PASS (ratio >= 0.5), 1 on FAIL.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

OURS, DNSMASQ = "10.53.0.1", "10.53.0.2"
DOMAIN = "odpctl.local"

POLLER = r"""
import socket, sys, time
import dns.message, dns.rcode
name, server = sys.argv[1], sys.argv[2]
wire = dns.message.make_query(name, "A").to_wire()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.05)
print("ready", flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    s.sendto(wire, (server, 53))
    try:
        reply = dns.message.from_wire(s.recv(65535))
    except (TimeoutError, Exception):
        continue
    if reply.answer:
        print(time.time(), flush=True)
        break
    time.sleep(0.001)
else:
    print("timeout", flush=True)
"""


def dnsperf(ns: str, lab: Lab, server: str, queries: Path, seconds: float) -> float:
    result = lab.run(
        ns,
        "dnsperf",
        "-s",
        server,
        "-d",
        str(queries),
        "-l",
        str(seconds),
        "-c",
        "4",
        "-q",
        "200",
        "-t",
        "2",
        timeout=seconds + 30,
    )
    found = re.search(r"Queries per second:\s+([\d.]+)", result.stdout)
    if not found:
        raise RuntimeError(f"dnsperf: {result.stdout}{result.stderr}")
    lost = re.search(r"Queries lost:\s+(\d+)", result.stdout)
    print(f"  {server}: {float(found.group(1)):,.0f} q/s (lost {lost.group(1) if lost else '?'})")
    return float(found.group(1))


def queries_per_second(args: argparse.Namespace) -> tuple[float, float]:
    with Lab("odpbdns") as lab:
        overlay = OverlayLab(lab, hosts=1, containers=0, datapath="userspace")
        tmp = Path(tempfile.mkdtemp(prefix="odpctl-bench-dns-"))
        dnsmasq: subprocess.Popen[bytes] | None = None
        try:
            ns = overlay.hosts[0].ns
            lab.address(ns, "lo", f"{OURS}/32")
            lab.address(ns, "lo", f"{DNSMASQ}/32")
            overlay.start_router(
                0, extra=("--dns-listen", OURS, "--dns-rate", "0", "--log-level", "warning")
            )
            control = ControlClient(overlay.hosts[0].control, timeout=10)
            deadline = time.monotonic() + 30
            while True:
                try:
                    control.request("status")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            hosts = []
            for i in range(args.names):
                address = f"10.40.{i // 250}.{i % 250 + 1}"
                control.request("dns_add", name=f"web{i}", address=address)
                hosts.append(f"{address} web{i}.{DOMAIN}")
            (tmp / "hosts").write_text("\n".join(hosts) + "\n")
            names = [f"web{i}.{DOMAIN} A" for i in range(args.names)]
            random.shuffle(names)
            queries = tmp / "queries"
            queries.write_text("\n".join(names) + "\n")
            dnsmasq = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--no-hosts",
                    f"--addn-hosts={tmp / 'hosts'}",
                    f"--listen-address={DNSMASQ}",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--local-ttl=1",
                    "--user=root",
                    f"--pid-file={tmp / 'pid'}",
                    "--log-facility=-",
                    "--quiet-dhcp",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(dnsperf(ns, lab, OURS, queries, args.seconds))
                theirs.append(dnsperf(ns, lab, DNSMASQ, queries, args.seconds))
                print(f"  round ratio {ours[-1] / theirs[-1]:.2f}")
            return max(ours), max(theirs)
        finally:
            if dnsmasq is not None:
                dnsmasq.kill()
                dnsmasq.wait()
            overlay.close()
            shutil.rmtree(tmp, ignore_errors=True)


def propagation(args: argparse.Namespace) -> list[float]:
    times = []
    with Lab("odpbdnp") as lab:
        overlay = OverlayLab(lab, hosts=3, containers=0, datapath="userspace")
        try:
            for host in overlay.hosts:
                lab.address(host.ns, "lo", f"{OURS}/32")
                overlay.start_router(
                    host.index, extra=("--dns-listen", OURS, "--log-level", "warning")
                )
            overlay.wait_ready(timeout=60)
            control = ControlClient(overlay.hosts[0].control, timeout=10)
            for trial in range(args.trials):
                name = f"new{trial}.{DOMAIN}."
                pollers = [
                    subprocess.Popen(
                        ["ip", "netns", "exec", h.ns, sys.executable, "-c", POLLER, name, OURS],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for h in overlay.hosts
                ]
                for poller in pollers:
                    assert poller.stdout is not None and poller.stdout.readline() == "ready\n"
                start = time.time()
                control.request("dns_add", name=name, address=f"10.41.0.{trial + 1}")
                done = []
                for poller in pollers:
                    out, _ = poller.communicate(timeout=60)
                    done.append(float(out.strip()) if out.strip() != "timeout" else float("inf"))
                times.append(max(done) - start)
                print(f"  trial {trial}: every host answers after {times[-1] * 1000:.1f} ms")
        finally:
            overlay.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    for tool in ("dnsperf", "dnsmasq"):
        if shutil.which(tool) is None:
            package = "dnsmasq-base" if tool == "dnsmasq" else tool
            print(
                f"dns bench: needs {tool} (Debian {package}, installed by ./setup)", file=sys.stderr
            )
            return 2
    print(f"queries/s, {args.names} names, dnsperf {args.seconds:g} s x {args.rounds} rounds:")
    ours, theirs = queries_per_second(args)
    ratio = ours / theirs
    print(
        f"odpctl router {ours:,.0f} q/s, dnsmasq {theirs:,.0f} q/s: ratio {ratio:.2f} "
        f"(target >= 0.5)"
    )
    print("a new name, resolvable on every host of 3:")
    times = propagation(args)
    print(
        f"propagation: median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {len(times)} trials"
    )
    verdict = ratio >= 0.5
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())

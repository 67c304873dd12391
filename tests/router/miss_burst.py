"""A burst of new conversations through a router, every frame accounted for.

Shared by the host suite (userspace datapath) and the guest's (kernel
datapath): container h0c0 sends ``n`` frames to h1c0, each from a new
source MAC, as fast as it can; every one is a miss on host 0.  Afterwards
each frame must be in exactly one place: a flow of its own in the
datapath, or one of the router's counters: sent on without a flow,
dropped, an error, an upcall the datapath lost, or a frame its port
dropped on arrival.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from odpctl.demo.overlaylab import OverlayLab

# Counters that each take a frame of the burst (heartbeats have their own).
ACCOUNTED = ("flows_installed", "no_flow", "drops", "errors", "lost", "rx_dropped")
BURST_OUI = b"\x02\xbd"  # the first bytes of every source MAC of the burst

SENDER = r"""
import socket, sys, time
dst = bytes.fromhex(sys.argv[1].replace(":", ""))
rate = float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
sent = 0
start = time.monotonic()
for i in range(int(sys.argv[2])):
    if rate and start + i / rate > time.monotonic():
        time.sleep(start + i / rate - time.monotonic())
    src = b"\x02\xbd" + i.to_bytes(4, "big")
    try:
        s.send(dst + src + b"\x88\xb6" + bytes(46))
        sent += 1
    except BlockingIOError:
        pass
print(sent)
"""


def burst_accounting(
    overlay: OverlayLab, n: int, rate: float = 0
) -> tuple[int, dict[str, int], dict[str, Any]]:
    """(frames sent, each counter's change, router 0's status after) for a burst of ``n``
    (``rate`` frames per second; 0: as fast as the sender can)."""
    src, dst = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(src, dst), "no ping before the burst"
    mac = overlay.lab.run(dst.ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
    # The containers' IPv6 chatter (router solicitations, MLD reports) would be
    # counted with the burst: the accounting is exact, so nothing else may speak.
    for ns in (src.ns, dst.ns):
        overlay.lab.run(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    time.sleep(1)  # the ping's own misses settle
    before = overlay.status(0)["router"]
    result = overlay.lab.run(
        src.ns, sys.executable, "-c", SENDER, mac, str(n), str(rate), timeout=120
    )
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout)
    # Until the counters stand still: the router has caught up.
    last: tuple[int, ...] = ()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        router = overlay.status(0)["router"]
        now = tuple(router[k] for k in ACCOUNTED)
        if now == last and sum(now) - sum(before[k] for k in ACCOUNTED) >= sent:
            break
        last = now
        time.sleep(1.0)
    delta = {k: router[k] - before[k] for k in ACCOUNTED}
    # The burst's own flows, by their source MACs: other traffic (an ARP,
    # a neighbour solicitation) may install a flow of its own meanwhile.
    with overlay.dpif(0) as dpif:
        burst_flows = sum(
            1
            for f in dpif.dump_flows("odp-router")
            if f.key.eth is not None and f.key.eth.src[:2] == BURST_OUI
        )
    assert delta["flows_installed"] >= burst_flows, (delta, burst_flows)
    delta["flows_installed"] = burst_flows
    return sent, delta, router

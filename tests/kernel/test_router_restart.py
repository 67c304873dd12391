"""The overlay router restarting, relaying and following a MAC, on the kernel datapath."""

from __future__ import annotations

import signal
import time

import pytest
from router.helpers import wait_until

from odpctl.control.client import ControlClient
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def _established(overlay: OverlayLab, i: int) -> int:
    try:
        conns = overlay.status(i)["router"]["connections"]
    except OdpError:  # not up yet
        return -1
    return sum(1 for c in conns if c["state"] == "established")


def test_restart_keeps_established_traffic_and_resumes(overlay: OverlayLab) -> None:
    overlay.start_routers()
    # On VXLAN, not the fallback: only the fast path leaves flows in the kernel.
    overlay.wait_ready(timeout=60, overlay="fastdp")
    h0c0, h1c0, h2c0 = (overlay.hosts[i].containers[0] for i in range(3))
    assert overlay.ping(h0c0, h1c0), router_logs(overlay)
    assert overlay.ping(h1c0, h2c0), router_logs(overlay)

    # SIGTERM: a clean exit that leaves the datapath and its flows behind.
    assert overlay.stop_router(1) == 0, router_logs(overlay)
    assert wait_until(lambda: _established(overlay, 0) == 1, 30), "router 0 did not notice"
    # Established traffic keeps flowing through the flows left in the kernel.
    assert overlay.ping(h0c0, h1c0, count=3), router_logs(overlay)

    overlay.start_router(1)
    overlay.wait_ready(timeout=60)
    for a, b in ((h0c0, h1c0), (h1c0, h2c0), (overlay.hosts[1].containers[1], h0c0)):
        assert overlay.ping(a, b), f"{a.name} -> {b.name}\n{router_logs(overlay)}"
    status = overlay.status(1)["router"]
    assert status["errors"] == 0


def test_sigint_exits_cleanly(overlay: OverlayLab) -> None:
    overlay.start_router(0)
    assert wait_until(lambda: overlay.hosts[0].control.exists(), 30)
    time.sleep(0.5)
    assert overlay.stop_router(0, signal.SIGINT) == 0, router_logs(overlay)


def test_relay_through_the_middle_host(overlay: OverlayLab) -> None:
    # Hosts 0 and 2 cannot reach each other directly: only through host 1.
    overlay.lab.run(
        overlay.hosts[0].ns, "ip", "route", "add", "blackhole", f"{overlay.hosts[2].address}/32"
    )
    overlay.lab.run(
        overlay.hosts[2].ns, "ip", "route", "add", "blackhole", f"{overlay.hosts[0].address}/32"
    )
    overlay.start_routers()
    assert wait_until(
        lambda: (
            _established(overlay, 1) == 2
            and _established(overlay, 0) == 1
            and _established(overlay, 2) == 1
        ),
        60,
    ), router_logs(overlay)

    def routed() -> bool:
        try:
            return len(overlay.status(0)["routes"]) == 2 and len(overlay.status(2)["routes"]) == 2
        except OdpError:
            return False

    assert wait_until(routed, 30), overlay.status(0)["routes"]
    a, b = overlay.hosts[0].containers[0], overlay.hosts[2].containers[1]
    assert overlay.ping(a, b, count=3), router_logs(overlay)
    assert overlay.ping(b, a), router_logs(overlay)
    assert overlay.status(1)["router"]["relayed"] > 0


def test_mac_moving_between_hosts(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    moving, far = overlay.hosts[0].containers[0], overlay.hosts[2].containers[0]
    assert overlay.ping(moving, far)
    mac = overlay.lab.run(moving.ns, "cat", "/sys/class/net/eth0/address").stdout.strip()

    # The container leaves host 0 ...
    ControlClient(overlay.hosts[0].control).request("detach", iface=moving.iface)
    overlay.lab.run(overlay.hosts[0].ns, "ip", "link", "del", moving.iface)
    # ... and comes back on host 1 with the same MAC and address.
    ns = overlay.lab.namespace("moved")
    overlay.lab.veth(overlay.hosts[1].ns, "c9", ns, "eth0")
    overlay.lab.run(
        ns, "ip", "link", "set", "eth0", "address", mac, "mtu", str(overlay.overlay_mtu)
    )
    overlay.lab.address(ns, "eth0", f"{moving.address}/24")
    ControlClient(overlay.hosts[1].control).request("attach", iface="c9")
    moved = type(moving)("moved", ns, moving.address, 1, "c9")

    # Its first frames (ARP) tell everyone where it is now; flows follow.
    assert overlay.ping(moved, far, count=3), router_logs(overlay)
    assert overlay.ping(far, moved), router_logs(overlay)
    assert overlay.status(2)["router"]["mac_moves"] >= 1

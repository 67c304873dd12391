"""The overlay router attaching ports others add to its kernel datapath, in the guest."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from odpctl.cli import run
from odpctl.errors import OdpError
from odpctl.odp.actions import Output
from odpctl.odp.uapi import DpFeature
from odpctl.overlaylab import OverlayLab

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_port_added_by_others_is_attached_and_deleted_detached(
        overlay: OverlayLab, capsys: pytest.CaptureFixture[str]) -> None:
    # Two hosts are enough here: fewer processes to start in the guest.
    overlay.start_router(0)
    overlay.start_router(2)
    host = overlay.hosts[0]
    new, far = overlay.add_container(0, 9), overlay.hosts[2].containers[0]

    def connected(i: int) -> bool:
        try:
            conns = overlay.status(i)["router"]["connections"]
        except OdpError:  # not up yet
            return False
        return any(c["state"] == "established" for c in conns)

    assert _wait_for(lambda: connected(0) and connected(2), 60), router_logs(overlay)

    def ifaces() -> dict[str, int]:
        return overlay.status(0)["router"]["datapath"]["ifaces"]  # type: ignore[no-any-return]

    # `odpctl vport add` behind the router's back: the kernel's vport event attaches it.
    code = run(["--netns", host.ns, "--datapath", "kernel", "vport", "add", "odp-router",
                new.iface])
    assert code == 0, capsys.readouterr()
    assert _wait_for(lambda: new.iface in ifaces()), (ifaces(), router_logs(overlay))
    port = ifaces()[new.iface]
    router = overlay.status(0)["router"]
    assert port in router["datapath"]["ports"] and router["port_events"] == 1
    assert overlay.ping(new, far), router_logs(overlay)
    assert _flows_naming(overlay, port), "no flow to or from the new port"

    # Open vSwitch's ovs-dpctl deletes it: detached, its MACs and flows gone.
    done = overlay.lab.run(host.ns, "ovs-dpctl", "del-if", "odp-router", new.iface)
    assert done.returncode == 0, done.stderr
    assert _wait_for(lambda: new.iface not in ifaces()), (ifaces(), router_logs(overlay))
    router = overlay.status(0)["router"]
    assert port not in router["datapath"]["ports"] and router["port_events"] == 2
    assert sorted(ifaces()) == ["c0", "c1"]
    # ovs-dpctl switched the datapath to per-CPU upcalls on opening it: switched back.
    def per_port() -> bool:
        with overlay.dpif(0) as dpif:
            features = dpif.get_datapath("odp-router").features
        return not features & DpFeature.DISPATCH_UPCALL_PER_CPU

    assert _wait_for(per_port, 5)
    assert overlay.ping(host.containers[0], far), router_logs(overlay)
    assert overlay.status(0)["router"]["dispatch_resets"] >= 1
    assert not _flows_naming(overlay, port)

    # ovs-dpctl adds it back: attached again, and its misses are not lost.
    done = overlay.lab.run(host.ns, "ovs-dpctl", "add-if", "odp-router", new.iface)
    assert done.returncode == 0, done.stderr
    assert _wait_for(lambda: new.iface in ifaces()), (ifaces(), router_logs(overlay))
    assert overlay.ping(new, far), router_logs(overlay)
    assert overlay.status(0)["router"]["port_events"] == 3


def _flows_naming(overlay: OverlayLab, port: int) -> int:
    """How many flows of router 0's datapath come in on ``port`` or output to it."""
    with overlay.dpif(0) as dpif:
        return sum(1 for f in dpif.dump_flows("odp-router")
                   if f.key.in_port == port
                   or any(isinstance(a, Output) and a.port == port for a in f.actions))

"""The overlay router attaching ports others add to its kernel datapath, in the guest."""

from __future__ import annotations

import pytest
from router.helpers import flows_naming, wait_until

from odpctl.cli import run
from odpctl.demo.overlaylab import OverlayLab
from odpctl.odp.uapi import DpFeature

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def test_port_added_by_others_is_attached_and_deleted_detached(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two hosts are enough here: fewer processes to start in the guest.
    overlay.start_router(0)
    overlay.start_router(2)
    host = overlay.hosts[0]
    new, far = overlay.add_container(0, 9), overlay.hosts[2].containers[0]

    # On VXLAN, not the fallback: frames through the fallback get no flow.
    overlay.wait_ready(timeout=60, hosts=[0, 2], overlay="fastdp")

    def ifaces() -> dict[str, int]:
        return overlay.status(0)["router"]["datapath"]["ifaces"]  # type: ignore[no-any-return]

    # `odpctl vport add` behind the router's back: the kernel's vport event attaches it.
    code = run(
        ["--netns", host.ns, "--datapath", "kernel", "vport", "add", "odp-router", new.iface]
    )
    assert code == 0, capsys.readouterr()
    assert wait_until(lambda: new.iface in ifaces()), (ifaces(), router_logs(overlay))
    port = ifaces()[new.iface]
    router = overlay.status(0)["router"]
    assert port in router["datapath"]["ports"] and router["port_events"] == 1
    assert overlay.ping(new, far), router_logs(overlay)
    assert flows_naming(overlay, 0, port), "no flow to or from the new port"

    # Open vSwitch's ovs-dpctl deletes it: detached, its MACs and flows gone.
    done = overlay.lab.run(host.ns, "ovs-dpctl", "del-if", "odp-router", new.iface)
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: new.iface not in ifaces()), (ifaces(), router_logs(overlay))
    router = overlay.status(0)["router"]
    assert port not in router["datapath"]["ports"] and router["port_events"] == 2
    assert sorted(ifaces()) == ["c0", "c1"]

    # ovs-dpctl switched the datapath to per-CPU upcalls on opening it: switched back.
    def per_port() -> bool:
        with overlay.dpif(0) as dpif:
            features = dpif.get_datapath("odp-router").features
        return not features & DpFeature.DISPATCH_UPCALL_PER_CPU

    assert wait_until(per_port, 5)
    assert overlay.ping(host.containers[0], far), router_logs(overlay)
    assert overlay.status(0)["router"]["dispatch_resets"] >= 1
    assert not flows_naming(overlay, 0, port)

    # ovs-dpctl adds it back: attached again, and its misses are not lost.
    done = overlay.lab.run(host.ns, "ovs-dpctl", "add-if", "odp-router", new.iface)
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: new.iface in ifaces()), (ifaces(), router_logs(overlay))
    assert overlay.ping(new, far), router_logs(overlay)
    assert overlay.status(0)["router"]["port_events"] == 3

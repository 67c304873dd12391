"""`router attach --netns` with IPAM on the kernel datapath: 2 hosts x 2 containers."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator

import pytest

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.odp.uapi import VportType

from .router_fixtures import router_logs

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpk")
    try:
        built = OverlayLab(lab, hosts=2, containers=2, datapath="kernel", ipam=True)
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_containers_attached_by_namespace_ping_across_hosts(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    overlay.attach_all()
    addresses = [c.address for c in overlay.containers]
    assert len(set(addresses)) == 4
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("10.32.0.0/12") for a in addresses)
    failed = [
        (a.name, b.name)
        for a, b in itertools.combinations(overlay.containers, 2)
        if a.host != b.host and not overlay.ping(a, b)
    ]
    assert not failed, f"no ping between {failed}\n{router_logs(overlay)}"
    gone = overlay.hosts[0].containers[0]
    with overlay.dpif(0) as dpif:
        names = {v.name for v in dpif.list_vports("odp-router") if v.type == VportType.NETDEV}
    assert gone.iface in names
    client = ControlClient(overlay.hosts[0].control, timeout=30)
    result = client.request("detach", netns=gone.ns)
    assert [d["ip"].split("/")[0] for d in result["detached"]] == [gone.address]
    with overlay.dpif(0) as dpif:
        names = {v.name for v in dpif.list_vports("odp-router")}
    assert gone.iface not in names
    assert gone.address not in client.request("ipam_status")["allocations"].values()

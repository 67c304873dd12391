"""The overlay router on the kernel datapath: 3 hosts x 2 containers, in the guest."""

from __future__ import annotations

import itertools

import pytest

from odpctl.demo.overlaylab import OverlayLab

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def test_every_container_pair_pings_across_three_hosts(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    failed = [
        (a.name, b.name)
        for a, b in itertools.combinations(overlay.containers, 2)
        if not overlay.ping(a, b)
    ]
    assert not failed, f"no ping between {failed}\n{router_logs(overlay)}"
    for host in overlay.hosts:
        router = overlay.status(host.index)["router"]
        assert router["datapath"]["kind"] == "kernel"
        established = [c for c in router["connections"] if c["state"] == "established"]
        assert len(established) == 2
        assert all(c["overlay"] == "fastdp" for c in established), established
        assert router["flows_installed"] > 0
        assert router["errors"] == 0, router["handlers"]

"""The kernel datapath deleted under a running router (`ovs-dpctl del-dp`): recreated."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from router.helpers import wait_until

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    """2 hosts x 1 container on the kernel datapath, routers not started."""
    lab = Lab("odpk")
    try:
        built = OverlayLab(lab, hosts=2, containers=1, datapath="kernel")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_deleted_datapath_is_recreated_and_traffic_recovers(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=90, overlay="fastdp")
    host = overlay.hosts[0]
    a, b = host.containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(a, b), overlay.log_tail(0, 40)
    lines = len(host.log.read_bytes().splitlines())

    deleted = time.monotonic()
    done = overlay.lab.run(host.ns, "ovs-dpctl", "del-dp", "odp-router")
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: overlay.ping(a, b, count=1, wait=1), 60), overlay.log_tail(0, 40)
    recovered = time.monotonic() - deleted
    logged = len(host.log.read_bytes().splitlines()) - lines
    print(f"traffic back {recovered:.1f} s after del-dp, {logged} log lines meanwhile")
    assert logged <= 10, overlay.log_tail(0, 40)
    status = overlay.status(0)["router"]
    assert status["summary"].startswith("ok"), status["summary"]
    dp = status["datapath"]
    assert dp["outages"] == 1 and dp["restarts"] == 0
    assert "deleted" in dp["last_outage"]["reason"], dp["last_outage"]
    assert sorted(dp["ifaces"]) == ["c0"] and dp["vxlan_port"] is not None
    assert overlay.ping(b, a), overlay.log_tail(0, 40)

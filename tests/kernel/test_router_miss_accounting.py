"""Every frame of a burst of new flows accounted for, through a router on the kernel
datapath (the userspace one's: tests/router/test_miss_accounting.py)."""

from __future__ import annotations

import pytest
from router.miss_burst import burst_accounting

from odpctl.demo.overlaylab import OverlayLab

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def test_a_burst_is_accounted_for_frame_by_frame(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    sent, delta, router = burst_accounting(overlay, 3000)
    assert sent == sum(delta.values()), (
        sent,
        delta,
        router["drop_reasons"],
        router["error_reasons"],
        router_logs(overlay),
    )
    assert delta["flows_installed"] > 0, delta
    assert router["datapath"]["kind"] == "kernel"

"""Every frame of a burst of new flows accounted for, through a router on the userspace
datapath (the kernel's: tests/kernel/test_router_miss_accounting.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

from .miss_burst import burst_accounting


def odpctl(overlay: OverlayLab, *argv: str) -> str:
    """An odpctl command in host 0's namespace, against its router's control socket."""
    host = overlay.hosts[0]
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("odpctl")),
            "--netns",
            host.ns,
            *argv,
            "--control",
            str(host.control),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpm")
    try:
        built = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_a_burst_is_accounted_for_frame_by_frame(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    # Twice what the receive ring holds (4,096 slots), sent faster than Python reads it.
    sent, delta, router = burst_accounting(overlay, 8192)
    assert sent == sum(delta.values()), (
        sent,
        delta,
        router["drop_reasons"],
        router["error_reasons"],
    )
    assert delta["flows_installed"] > 0, delta
    assert delta["rx_dropped"] + delta["lost"] > 0, delta
    assert router["errors"] == 0, router["error_reasons"]
    # What people see of it: router status, watch stats.
    status = odpctl(overlay, "router", "status")
    assert f"rx dropped {router['rx_dropped']}" in status, status
    (line,) = odpctl(overlay, "watch", "stats", "--json", "--count", "1").splitlines()
    stats = json.loads(line)
    assert stats["rx_dropped"] == router["rx_dropped"], stats
    assert stats["unhandled"] is not None and all(  # the router answered, with reasons
        why.startswith(("drop: ", "error: ")) for why in stats["unhandled"]
    ), stats


def test_the_flow_limit_holds_and_misses_past_it_still_go_through(overlay: OverlayLab) -> None:
    for host in overlay.hosts:
        overlay.start_router(host.index, extra=("--max-flows", "40"))
    overlay.wait_ready(timeout=60, overlay="fastdp")
    # Paced, so that the frames reach the router rather than overrun the ring.
    sent, delta, router = burst_accounting(overlay, 300, rate=500)
    assert sent == sum(delta.values()), (sent, delta, router["drop_reasons"])
    assert router["max_flows"] == 40
    assert router["flows"] <= 40 and delta["flows_installed"] <= 40, (router["flows"], delta)
    assert router["over_limit"] > 0 and delta["no_flow"] >= router["over_limit"], delta

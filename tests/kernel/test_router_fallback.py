"""The userspace fallback on the kernel datapath: VXLAN blocked, or an underlay MTU too small."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def _reasons(overlay: OverlayLab) -> list[tuple[str, str | None]]:
    out = []
    for host in overlay.hosts:
        try:
            conns = overlay.status(host.index)["router"]["connections"]
        except OdpError:
            return []
        out += [(c["overlay"], c["reason"]) for c in conns if c["state"] == "established"]
    return out


def _wait_reason(overlay: OverlayLab, needle: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _reasons(overlay)
        if len(got) == 6 and all(o == "fallback" and r and needle in r for o, r in got):
            return True
        time.sleep(0.5)
    return False


def _cross_host_pings(overlay: OverlayLab) -> list[tuple[str, str]]:
    return [
        (a.name, b.name)
        for a, b in itertools.combinations(overlay.containers, 2)
        if a.host != b.host and not overlay.ping(a, b)
    ]


def test_vxlan_blocked_traffic_continues_on_the_fallback(overlay: OverlayLab) -> None:
    # The guest's kernel has no nftables: a tc filter drops the hosts' VXLAN
    # on its way out instead (the userspace tests block it with nft).
    for host in overlay.hosts:
        for rule in (
            ("qdisc", "add", "dev", "eth0", "root", "handle", "1:", "prio"),
            (
                "filter",
                "add",
                "dev",
                "eth0",
                "parent",
                "1:",
                "protocol",
                "ip",
                "u32",
                "match",
                "ip",
                "protocol",
                "17",
                "0xff",
                "match",
                "ip",
                "dport",
                "6784",
                "0xffff",
                "action",
                "drop",
            ),
        ):
            done = overlay.lab.run(host.ns, "tc", *rule)
            assert done.returncode == 0, done.stderr
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    assert _wait_reason(overlay, "UDP 6784"), (_reasons(overlay), router_logs(overlay))
    failed = _cross_host_pings(overlay)
    assert not failed, f"no ping between {failed}\n{router_logs(overlay)}"
    router = overlay.status(0)["router"]
    assert router["fallback"]["sent"] > 0 and not router["healthy"]


@pytest.fixture(name="small_underlay")
def small_underlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpm")
    try:
        built = OverlayLab(lab, datapath="kernel", underlay_mtu=1300, overlay_mtu=1376)
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_underlay_mtu_too_small_falls_back_with_the_reason(small_underlay: OverlayLab) -> None:
    overlay = small_underlay
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    assert _wait_reason(overlay, "path MTU too small"), (_reasons(overlay), router_logs(overlay))
    failed = _cross_host_pings(overlay)
    assert not failed, f"no ping between {failed}\n{router_logs(overlay)}"

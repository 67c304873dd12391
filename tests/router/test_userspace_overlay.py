"""The overlay router on the userspace datapath, on this machine: 3 hosts x 2 containers.

Needs root (network namespaces); skipped otherwise.  Each test builds its own
namespaces and removes them, and the routers, even when it fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator

import pytest

from odpctl.lab import Lab
from odpctl.overlaylab import OverlayLab

from .mirror_check import container_mac, watch_while_pinging

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpu")
    try:
        built = OverlayLab(lab, datapath="userspace")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def _logs(overlay: OverlayLab) -> str:
    return "\n".join(f"--- router {h.index}\n{overlay.log_tail(h.index, 40)}"
                     for h in overlay.hosts)


def _overlays(overlay: OverlayLab, i: int) -> list[tuple[str, str | None]]:
    conns = overlay.status(i)["router"]["connections"]
    return [(c["overlay"], c["reason"]) for c in conns if c["state"] == "established"]


def _wait_overlays(overlay: OverlayLab, name: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(o) == 2 and all(n == name for n, _ in o)
               for o in (_overlays(overlay, h.index) for h in overlay.hosts)):
            return True
        time.sleep(0.5)
    return False


def test_every_container_pair_pings(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    assert _wait_overlays(overlay, "fastdp"), [_overlays(overlay, h.index) for h in overlay.hosts]
    failed = [(a.name, b.name) for a, b in itertools.combinations(overlay.containers, 2)
              if not overlay.ping(a, b)]
    assert not failed, f"no ping between {failed}\n{_logs(overlay)}"
    router = overlay.status(0)["router"]
    assert router["datapath"]["kind"] == "userspace"
    assert router["flows_installed"] > 0 and router["errors"] == 0
    assert router["summary"].startswith("ok")


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables (nft)")
def test_vxlan_blocked_falls_back_and_returns(overlay: OverlayLab) -> None:
    rules = [("add", "table", "inet", "odpblock"),
             ("add", "chain", "inet", "odpblock", "in",
              "{ type filter hook input priority 0 ; }"),
             ("add", "rule", "inet", "odpblock", "in", "udp", "dport", "6784", "drop")]
    for host in overlay.hosts:
        for rule in rules:
            done = overlay.lab.run(host.ns, "nft", *rule)
            assert done.returncode == 0, done.stderr
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    assert _wait_overlays(overlay, "fallback"), _logs(overlay)

    def reasons() -> set[str | None]:
        return {r for h in overlay.hosts for _, r in _overlays(overlay, h.index)}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(r and "UDP 6784" in r for r in reasons()):
        time.sleep(0.5)
    assert all(r and "UDP 6784" in r for r in reasons()), reasons()
    failed = [(a.name, b.name) for a, b in itertools.combinations(overlay.containers, 2)
              if a.host != b.host and not overlay.ping(a, b)]
    assert not failed, f"no ping between {failed}\n{_logs(overlay)}"
    router = overlay.status(0)["router"]
    assert router["fallback"]["sent"] > 0 and router["fallback"]["received"] > 0
    assert not router["healthy"] and "degraded" in router["summary"]

    # VXLAN gets through again: back on the fast path.
    for host in overlay.hosts:
        overlay.lab.run(host.ns, "nft", "delete table inet odpblock")
    assert _wait_overlays(overlay, "fastdp"), _logs(overlay)
    a, b = overlay.hosts[0].containers[0], overlay.hosts[2].containers[1]
    assert overlay.ping(a, b), _logs(overlay)



def test_watch_upcalls_gets_copies_and_the_router_keeps_its_misses(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    event = watch_while_pinging(overlay)
    assert event["type"] == "miss" and container_mac(overlay) in str(event["key"]), event
    assert overlay.status(0)["router"]["flows_installed"] > 0

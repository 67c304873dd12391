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

from odpctl.cli import run
from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

from .helpers import flows_naming, wait_until
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
    return "\n".join(
        f"--- router {h.index}\n{overlay.log_tail(h.index, 40)}" for h in overlay.hosts
    )


def _overlays(overlay: OverlayLab, i: int) -> list[tuple[str, str | None]]:
    conns = overlay.status(i)["router"]["connections"]
    return [(c["overlay"], c["reason"]) for c in conns if c["state"] == "established"]


def _wait_overlays(overlay: OverlayLab, name: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(
            len(o) == 2 and all(n == name for n, _ in o)
            for o in (_overlays(overlay, h.index) for h in overlay.hosts)
        ):
            return True
        time.sleep(0.5)
    return False


def test_every_container_pair_pings(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60)
    assert _wait_overlays(overlay, "fastdp"), [_overlays(overlay, h.index) for h in overlay.hosts]
    failed = [
        (a.name, b.name)
        for a, b in itertools.combinations(overlay.containers, 2)
        if not overlay.ping(a, b)
    ]
    assert not failed, f"no ping between {failed}\n{_logs(overlay)}"
    router = overlay.status(0)["router"]
    assert router["datapath"]["kind"] == "userspace"
    assert router["flows_installed"] > 0 and router["errors"] == 0
    assert router["summary"].startswith("ok")


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables (nft)")
def test_vxlan_blocked_falls_back_and_returns(overlay: OverlayLab) -> None:
    rules = [
        ("add", "table", "inet", "odpblock"),
        ("add", "chain", "inet", "odpblock", "in", "{ type filter hook input priority 0 ; }"),
        ("add", "rule", "inet", "odpblock", "in", "udp", "dport", "6784", "drop"),
    ]
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
    failed = [
        (a.name, b.name)
        for a, b in itertools.combinations(overlay.containers, 2)
        if a.host != b.host and not overlay.ping(a, b)
    ]
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
    overlay.wait_ready(timeout=60, overlay="fastdp")
    event = watch_while_pinging(overlay)
    assert event["type"] == "miss" and container_mac(overlay) in str(event["key"]), event
    assert overlay.status(0)["router"]["flows_installed"] > 0


def test_port_added_by_others_is_attached_and_deleted_detached(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    host = overlay.hosts[0]
    new, far = overlay.add_container(0, 9), overlay.hosts[2].containers[0]
    endpoint = overlay.status(0)["router"]["datapath"]["endpoint"]
    odpctl = ["--netns", host.ns, "--datapath", endpoint]

    # Added behind the router's back: its vport event attaches it.
    assert run([*odpctl, "vport", "add", "odp-router", new.iface]) == 0, capsys.readouterr()

    def ifaces() -> dict[str, int]:
        return overlay.status(0)["router"]["datapath"]["ifaces"]  # type: ignore[no-any-return]

    assert wait_until(lambda: new.iface in ifaces()), (ifaces(), _logs(overlay))
    port = ifaces()[new.iface]
    router = overlay.status(0)["router"]
    assert port in router["datapath"]["ports"] and router["port_events"] == 1
    assert overlay.ping(new, far), _logs(overlay)
    assert overlay.ping(far, new), _logs(overlay)
    assert flows_naming(overlay, 0, port), "no flow to or from the new port"
    capsys.readouterr()
    assert run(["router", "status", "--control", str(host.control)]) == 0
    assert f"{new.iface} (port {port})" in capsys.readouterr().out

    # Deleted behind its back: detached, its MACs and flows gone.
    assert run([*odpctl, "vport", "del", "odp-router", new.iface]) == 0, capsys.readouterr()
    assert wait_until(lambda: new.iface not in ifaces()), (ifaces(), _logs(overlay))
    router = overlay.status(0)["router"]
    assert port not in router["datapath"]["ports"] and router["port_events"] == 2
    assert not overlay.ping(new, far, count=1, wait=1)
    # The router's own ports (VXLAN, the old containers) were not touched.
    assert overlay.ping(host.containers[0], far), _logs(overlay)
    assert sorted(ifaces()) == ["c0", "c1"]
    assert not flows_naming(overlay, 0, port)

    # The router's own detach is no news to it; the number it frees, taken by a port
    # added by others, is attached anew.
    c1_port = ifaces()["c1"]
    ControlClient(host.control).request("detach", iface="c1")
    assert run([*odpctl, "vport", "add", "odp-router", new.iface]) == 0, capsys.readouterr()
    assert wait_until(lambda: new.iface in ifaces()), (ifaces(), _logs(overlay))
    assert ifaces() == {"c0": ifaces()["c0"], new.iface: c1_port}
    assert overlay.status(0)["router"]["port_events"] == 3
    assert overlay.ping(new, far), _logs(overlay)

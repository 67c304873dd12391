"""IPAM across three hosts (userspace datapath, namespaces on this machine).

30 containers attached at once across the hosts; a router restarted; a
partition; rmpeer of a killed router.  The phases share one overlay (a lab
costs seconds to build) and run in order.  Needs root; skipped otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import Container, OverlayLab
from odpctl.errors import OdpError
from odpctl.router import EXPOSE_ID

from .helpers import wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

RANGE = ipaddress.IPv4Network("10.32.0.0/12")
ODPCTL = str(Path(sys.executable).parent / "odpctl")


@pytest.fixture(name="overlay", scope="module")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpi")
    try:
        built = OverlayLab(lab, hosts=3, containers=10, datapath="userspace", ipam=True)
        built.start_routers()
        built.wait_ready(timeout=60)
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def ipam(overlay: OverlayLab, i: int) -> dict[str, Any]:
    """IPAM's status, with the containers' allocations only: a router whose
    containers want DNS holds one more, its exposed address."""
    result = ControlClient(overlay.hosts[i].control, timeout=20).request("ipam_status")
    assert isinstance(result, dict)
    result["allocations"].pop(EXPOSE_ID, None)
    return result


def ready(overlay: OverlayLab, i: int) -> bool:
    try:
        return bool(ipam(overlay, i)["state"] == "ready")
    except OdpError:
        return False


def owned(overlay: OverlayLab, i: int) -> dict[str, int]:
    return {p["nickname"] or p["name"]: p["owned"] for p in ipam(overlay, i)["peers"]}


def all_addresses(overlay: OverlayLab, hosts: list[int]) -> list[str]:
    return [a for i in hosts for a in ipam(overlay, i)["allocations"].values()]


def pings(overlay: OverlayLab, pairs: list[tuple[Container, Container]]) -> list[str]:
    """The pairs that could not ping (pinged in parallel)."""

    def one(pair: tuple[Container, Container]) -> str | None:
        src, dst = pair
        ok = overlay.ping(src, dst, count=3, wait=2.0)
        return None if ok else f"{src.name} -> {dst.name} ({dst.address})"

    with ThreadPoolExecutor(max_workers=10) as pool:
        return [r for r in pool.map(one, pairs) if r]


def cross_host_pairs(overlay: OverlayLab) -> list[tuple[Container, Container]]:
    """Each container with the one of the same rank on the next host."""
    by_host = [h.containers for h in overlay.hosts]
    return [(c, by_host[(c.host + 1) % 3][j]) for h in by_host for j, c in enumerate(h)]


def logs(overlay: OverlayLab) -> str:
    return "\n".join(
        f"--- router {h.index}\n{overlay.log_tail(h.index, 30)}" for h in overlay.hosts
    )


def test_thirty_containers_attached_at_once_get_unique_addresses(overlay: OverlayLab) -> None:
    assert wait_until(lambda: all(ready(overlay, h.index) for h in overlay.hosts), 30), logs(
        overlay
    )
    status = ipam(overlay, 0)
    assert sum(p["owned"] for p in status["peers"]) == RANGE.num_addresses
    assert len(status["peers"]) == 3
    overlay.attach_all()
    addresses = [c.address for c in overlay.containers]
    assert len(addresses) == 30 and len(set(addresses)) == 30
    assert all(ipaddress.IPv4Address(a) in RANGE for a in addresses)
    assert sorted(all_addresses(overlay, [0, 1, 2])) == sorted(addresses)
    failed = pings(overlay, cross_host_pairs(overlay))
    assert not failed, f"{failed}\n{logs(overlay)}"


def test_a_restarted_router_keeps_its_containers_addresses(overlay: OverlayLab) -> None:
    before = ipam(overlay, 1)["allocations"]
    assert len(before) == 10
    assert overlay.stop_router(1) == 0
    overlay.start_router(1)
    overlay.wait_ready(timeout=60)
    assert wait_until(lambda: ready(overlay, 1), 30), overlay.log_tail(1)
    assert ipam(overlay, 1)["allocations"] == before
    extra = overlay.add_container(1, 10)
    overlay.attach(extra)
    assert extra.address not in all_addresses(overlay, [0, 2])
    assert extra.address not in before.values()
    again = overlay.attach(overlay.hosts[1].containers[0])  # attached already: the same
    assert again["ip"].split("/")[0] == overlay.hosts[1].containers[0].address
    # The containers attached before the restart are back on the (new) datapath.
    failed = pings(
        overlay,
        [
            (overlay.hosts[0].containers[0], extra),
            (extra, overlay.hosts[2].containers[3]),
            (overlay.hosts[1].containers[1], overlay.hosts[0].containers[1]),
        ],
    )
    assert not failed, f"{failed}\n{logs(overlay)}"


def allocate(overlay: OverlayLab, i: int, ident: str) -> str:
    client = ControlClient(overlay.hosts[i].control, timeout=20)
    return str(client.request("ipam_allocate", id=ident)["ip"]).split("/")[0]


def test_a_partition_keeps_allocating_on_both_sides_without_duplicates(overlay: OverlayLab) -> None:
    cut = overlay.lab.run(overlay.underlay, "ip", "link", "set", "u2", "down")
    assert cut.returncode == 0, cut.stderr
    try:
        side_a = [allocate(overlay, i % 2, f"part-a{i}") for i in range(8)]
        side_b = [allocate(overlay, 2, f"part-b{i}") for i in range(8)]
    finally:
        overlay.lab.run(overlay.underlay, "ip", "link", "set", "u2", "up")
    assert not set(side_a) & set(side_b)
    overlay.wait_ready(timeout=60)
    assert wait_until(lambda: owned(overlay, 0) == owned(overlay, 2), 30), logs(overlay)
    everything = all_addresses(overlay, [0, 1, 2])
    assert len(everything) == len(set(everything))


def test_rmpeer_of_a_killed_router(overlay: OverlayLab) -> None:
    host0 = overlay.hosts[0].ns

    def odpctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                host0,
                ODPCTL,
                *args,
                "--control",
                str(overlay.hosts[0].control),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    alive = odpctl("ipam", "rmpeer", "host2")
    assert alive.returncode != 0 and "alive" in alive.stderr, alive.stderr
    overlay.stop_router(2, sig=signal.SIGKILL)
    assert wait_until(
        lambda: (
            "host2"
            not in [
                c.get("nickname")
                for c in overlay.status(0)["router"]["connections"]
                if c.get("state") == "established"
            ]
        ),
        30,
    )
    assert wait_until(lambda: odpctl("ipam", "rmpeer", "host2").returncode == 0, 30), odpctl(
        "ipam", "rmpeer", "host2"
    ).stderr
    after = owned(overlay, 0)
    assert after.get("host2", 0) == 0
    assert sum(after.values()) == RANGE.num_addresses
    assert wait_until(lambda: owned(overlay, 1) == after, 15)
    text = odpctl("ipam", "status")
    assert text.returncode == 0 and "took the ranges of" in text.stdout, text.stdout


def test_a_router_leaving_for_good_hands_its_ranges_over(overlay: OverlayLab) -> None:
    host1 = overlay.hosts[1]
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host1.ns,
            ODPCTL,
            "router",
            "stop",
            "--shutdown",
            "--control",
            str(host1.control),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "handed" in out.stdout and "host0" in out.stdout, (
        out.stdout + out.stderr
    )
    proc = host1.router
    assert proc is not None and proc.wait(15) == 0
    host1.router = None
    assert wait_until(lambda: owned(overlay, 0).get("host1", 0) == 0, 15), owned(overlay, 0)
    assert owned(overlay, 0)["host0"] == RANGE.num_addresses

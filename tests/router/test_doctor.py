"""``odpctl doctor`` on a real overlay: two hosts on the userspace datapath.

One lab for the module (a router pair takes seconds to come up); each test
puts back what it broke, and the last one kills a router.  Needs root
(network namespaces) and nft.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from odpctl.cli import run
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

from .helpers import wait_until

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

BLOCK = [
    ("add", "table", "inet", "odpblock"),
    ("add", "chain", "inet", "odpblock", "in", "{ type filter hook input priority 0 ; }"),
    ("add", "rule", "inet", "odpblock", "in", "udp", "dport", "6784", "drop"),
]


@pytest.fixture(scope="module", name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpdr")
    try:
        built = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
        built.start_routers()
        built.wait_ready(timeout=60, overlay="fastdp")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


Doctor = Callable[[int], tuple[int, dict[str, Any]]]


@pytest.fixture(name="doctor")
def doctor_fixture(overlay: OverlayLab, capsys: pytest.CaptureFixture[str]) -> Doctor:
    def doctor(i: int) -> tuple[int, dict[str, Any]]:
        host = overlay.hosts[i]
        capsys.readouterr()
        code = run(
            [
                "--netns",
                host.ns,
                "doctor",
                "--control",
                str(host.control),
                "--interval",
                "0.3",
                "--json",
            ]
        )
        return code, json.loads(capsys.readouterr().out)

    return doctor


def problems(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["level"] == "problem"]


def test_healthy_exits_0(
    overlay: OverlayLab, doctor: Doctor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wait_until(lambda: doctor(0)[0] == 0, timeout=20), problems(doctor(0)[1])
    code, report = doctor(0)
    assert code == 0 and report["exit_code"] == 0
    checks = {(c["area"], c["name"]) for c in report["checks"]}
    assert {
        ("datapath", "dispatch"),
        ("router", "handlers"),
        ("peer", "tcp"),
        ("peer", "udp"),
        ("peer", "mtu"),
        ("peer", "clock"),
        ("port", "link"),
        ("host", "firewall"),
    } <= checks
    udp = next(c for c in report["checks"] if c["name"] == "udp")
    assert udp["subject"].startswith("host1 ") and "both ways" in udp["evidence"]
    # The text for people: one line a check, a summary at the end.
    host = overlay.hosts[0]
    assert (
        run(["--netns", host.ns, "doctor", "--control", str(host.control), "--interval", "0.3"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("odpctl doctor: host0 ") and out.rstrip().endswith("ok")


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables (nft)")
def test_udp_6784_blocked_on_one_host_is_named_with_the_fix(
    overlay: OverlayLab, doctor: Doctor
) -> None:
    blocked = overlay.hosts[1]
    try:
        for nft_args in BLOCK:
            done = overlay.lab.run(blocked.ns, "nft", *nft_args)
            assert done.returncode == 0, done.stderr

        def udp_problem(i: int) -> dict[str, Any] | None:
            return next((c for c in problems(doctor(i)[1]) if c["name"] == "udp"), None)

        # Seen from the other host: its heartbeats to host1 go unanswered.
        assert wait_until(lambda: udp_problem(0) is not None, timeout=20)
        code, report = doctor(0)
        assert code == 1
        (seen,) = [c for c in problems(report) if c["name"] == "udp"]
        assert seen["subject"].startswith("host1 ")
        assert "UDP 6784 from here to host1 (192.168.77.2)" in seen["evidence"]
        assert "allow UDP 6784 in on host1" in seen["fix"]

        # On the blocked host: the rule itself, and how to delete it.
        code, report = doctor(1)
        assert code == 1
        rule = next(c for c in problems(report) if c["name"] == "firewall")
        assert rule["subject"] == "udp 6784" and "table inet odpblock chain in" in rule["evidence"]
        assert rule["fix"].startswith("nft delete rule inet odpblock in handle ")
    finally:
        overlay.lab.run(blocked.ns, "nft", "delete", "table", "inet", "odpblock")
    assert wait_until(lambda: doctor(0)[0] == 0, timeout=20), problems(doctor(0)[1])


def test_a_container_mtu_above_the_overlay_mtu_is_named(
    overlay: OverlayLab, doctor: Doctor
) -> None:
    host, container = overlay.hosts[0], overlay.hosts[0].containers[0]
    overlay.lab.run(host.ns, "ip", "link", "set", container.iface, "mtu", "1500")
    try:
        code, report = doctor(0)
        assert code == 1
        (mtu,) = problems(report)
        assert (mtu["area"], mtu["name"]) == ("port", "mtu")
        assert mtu["subject"].startswith(f"{container.iface} (port ")
        assert "MTU 1500 above the overlay MTU 1376" in mtu["evidence"]
        assert f"ip link set {container.iface} mtu 1376" in mtu["fix"]
    finally:
        overlay.lab.run(
            host.ns, "ip", "link", "set", container.iface, "mtu", str(overlay.overlay_mtu)
        )


def test_a_veth_whose_container_end_is_down_is_named(overlay: OverlayLab, doctor: Doctor) -> None:
    container = overlay.hosts[0].containers[0]
    overlay.lab.run(container.ns, "ip", "link", "set", "eth0", "down")
    try:
        code, report = doctor(0)
        assert code == 1
        (link,) = problems(report)
        assert link["area"] == "port" and link["subject"].startswith(f"{container.iface} ")
        assert "veth whose peer is down or gone" in link["evidence"]
    finally:
        overlay.lab.run(container.ns, "ip", "link", "set", "eth0", "up")


def test_a_killed_router_is_named(overlay: OverlayLab, doctor: Doctor) -> None:
    overlay.stop_router(1, signal.SIGKILL)
    code, report = doctor(1)
    assert code == 1
    (router,) = [c for c in problems(report) if c["area"] == "router"]
    assert router["name"] == "running" and "the router died" in router["evidence"]
    assert "odpctl router start" in router["fix"]
    # Its peer sees the connection go.
    assert wait_until(lambda: any(c["name"] == "tcp" for c in problems(doctor(0)[1])))


def test_could_not_run_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--netns", "odpctl-no-such-netns", "doctor"]) == 2
    assert "could not run" in capsys.readouterr().err

"""`odpctl watch upcalls` on the kernel datapath: never stealing a live handler's upcalls.

The kernel lets a listener check who holds an upcall PID (/proc/net/netlink),
so here the tap refuses a live owner, naming it, takes PIDs whose socket is
gone, and handles per-CPU dispatch.  The tap tests of tests/watch/test_tap.py
run here too, on the kernel's ``hosted``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from router.mirror_check import container_mac, watch_while_pinging
from watch import scenarios
from watch.bed import ip
from watch.fixtures import Hosted, Result, kernel_hosted_fixture, odpctl_fixture
from watch.test_tap import (
    test_a_port_or_datapath_gone_meanwhile_is_no_error,
    test_misses_arrive_and_pids_are_given_back,
    test_pids_someone_else_set_meanwhile_are_left_alone,
    test_ports_added_meanwhile_are_borrowed_and_given_back,
)

from odpctl.cli import run
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import EXIT_REFUSED
from odpctl.odp.dpif import Dpif
from odpctl.odp.uapi import DpFeature, PacketCmd
from odpctl.odp.vport import Vport
from odpctl.watch.tap import UpcallTap

from .router_fixtures import overlay_fixture

__all__ = [  # fixtures and tests, known to pytest by their names
    "kernel_hosted_fixture",
    "odpctl_fixture",
    "overlay_fixture",
    "test_a_port_or_datapath_gone_meanwhile_is_no_error",
    "test_misses_arrive_and_pids_are_given_back",
    "test_pids_someone_else_set_meanwhile_are_left_alone",
    "test_ports_added_meanwhile_are_borrowed_and_given_back",
]


def test_upcalls(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.upcalls_tap_shows_misses_and_gives_back(hosted.bed, hosted.a, hosted.b, odpctl)


def test_a_live_handler_is_never_robbed(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    bed = hosted.bed
    port = bed.hosts[hosted.a]
    with bed.dpif.open_upcall_channel() as handler:
        bed.dpif.set_vport(bed.dp, port, upcall_pids=[handler.port_id])
        result = odpctl("watch", "upcalls", "--count", "1")
        assert result.code == EXIT_REFUSED
        assert f"port id {handler.port_id}: pid {os.getpid()} (" in result.err
        assert "would steal them from that handler" in result.err
        assert "upcall mirror" in result.err  # where to look instead
        assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (handler.port_id,)
        # ... and the handler still gets them.
        subprocess.run(
            ["ip", "netns", "exec", hosted.a, "ping", "-c", "1", "-W", "1", "10.0.0.2"],
            capture_output=True,
            timeout=20,
        )
        upcall = handler.receive(timeout=5)
        assert upcall is not None and upcall.key.in_port == port


def test_pids_of_a_dead_handler_are_taken_and_put_back(
    hosted: Hosted, odpctl: Callable[..., Result]
) -> None:
    bed = hosted.bed
    port = bed.hosts[hosted.a]
    with bed.dpif.open_upcall_channel() as handler:
        dead = handler.port_id
        bed.dpif.set_vport(bed.dp, port, upcall_pids=[dead])
    result = odpctl("watch", "upcalls", "--duration", "300ms")
    assert result.code == 0, result.err
    assert "pointed at sockets that are gone, so upcalls were being lost" in result.err
    assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (dead,)


def test_per_cpu_dispatch(netns: Callable[[], str]) -> None:
    ns, host = netns(), netns()
    ncpu = os.cpu_count() or 1
    with Dpif.open("kernel", netns=ns) as dpif:
        dp = dpif.create_datapath("dpc", per_cpu_pids=[0] * ncpu)
        assert dp.features & DpFeature.DISPATCH_UPCALL_PER_CPU
        ip("-n", ns, "link", "add", "pc0", "type", "veth", "peer", "name", "eth0", "netns", host)
        ip("-n", ns, "link", "set", "pc0", "up")
        ip("-n", host, "addr", "add", "10.0.0.1/24", "dev", "eth0")
        ip("-n", host, "link", "set", "eth0", "up")
        port = dpif.add_vport("dpc", Vport("pc0"))
        before = dpif.get_datapath("dpc").per_cpu_pids
        tap = UpcallTap(dpif, "dpc").open()
        try:
            assert tap.channel is not None and tap.borrowed.per_cpu == before
            assert set(dpif.get_datapath("dpc").per_cpu_pids) == {tap.channel.port_id}
            assert not tap.borrowed.ports  # per-CPU dispatch: the ports' PIDs are not used
            subprocess.run(
                ["ip", "netns", "exec", host, "ping", "-c", "1", "-W", "1", "10.0.0.2"],
                capture_output=True,
                timeout=20,
            )
            upcall = tap.receive(timeout=5)
            assert upcall is not None and upcall.cmd is PacketCmd.MISS
            assert upcall.key.in_port == port.port_no
        finally:
            assert tap.close() == []
        assert dpif.get_datapath("dpc").per_cpu_pids == before


def test_a_running_router_keeps_its_upcalls(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    host = overlay.hosts[0]
    assert host.router is not None

    # Copies from the router's upcall mirror; the router handles the misses meanwhile.
    event = watch_while_pinging(overlay, "--datapath", "kernel")
    assert event["type"] == "miss" and container_mac(overlay) in str(event["key"]), event

    # The tap, asked for by name, finds the router's handler sockets holding the
    # PIDs and refuses to steal them, naming the router.
    capsys.readouterr()
    code = run(
        [
            "--netns",
            host.ns,
            "--datapath",
            "kernel",
            "watch",
            "upcalls",
            "--source",
            "tap",
            "--count",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_REFUSED, err
    assert f"pid {host.router.pid} (" in err and "would steal them" in err
    a, b = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(a, b)

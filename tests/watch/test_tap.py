"""The upcall tap: borrowing a datapath's upcall PIDs and giving them back.

Written against the ``hosted`` fixture, so that tests/kernel/test_watch_upcalls.py
runs the same tests on the kernel datapath (force only matters to the
userspace datapath, whose PIDs cannot be checked; here they are all 0).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from odpctl.odp.uapi import PacketCmd
from odpctl.watch.tap import UpcallTap

from .bed import wait_for
from .fixtures import Hosted


def pids(hosted: Hosted) -> dict[int | None, tuple[int, ...]]:
    return {v.port_no: v.upcall_pids for v in hosted.bed.dpif.list_vports(hosted.bed.dp)}


def arp_from(_hosted: Hosted, ns: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "10.0.0.99"],
        capture_output=True,
        timeout=20,
    )


def test_misses_arrive_and_pids_are_given_back(hosted: Hosted) -> None:
    before = pids(hosted)
    tap = UpcallTap(hosted.bed.dpif, "dp0", force=True).open()
    try:
        assert tap.channel is not None
        ours = tap.channel.port_id
        assert set(pids(hosted).values()) == {(ours,)}
        arp_from(hosted, hosted.a)
        upcall = tap.receive(timeout=5)
        assert upcall is not None and upcall.cmd is PacketCmd.MISS
        assert upcall.key.in_port == hosted.bed.hosts[hosted.a]
    finally:
        assert tap.close() == []
    assert pids(hosted) == before


def test_ports_added_meanwhile_are_borrowed_and_given_back(
    hosted: Hosted, netns: Callable[[], str]
) -> None:
    bed = hosted.bed
    tap = UpcallTap(bed.dpif, "dp0", force=True).open()
    try:
        assert tap.channel is not None
        ours = tap.channel.port_id
        c = netns()
        port = bed.plug(c, "10.0.0.3")

        def borrowed() -> bool:
            tap.receive(timeout=0.1)  # the tap takes port events while it waits
            return bed.dpif.get_vport(bed.dp, port).upcall_pids == (ours,)

        wait_for(borrowed, what="the new port's PIDs to be borrowed")
        arp_from(hosted, c)
        for _ in range(20):
            upcall = tap.receive(timeout=1)
            if upcall is not None and upcall.key.in_port == port:
                break
        else:
            raise AssertionError("no miss from the new port")
    finally:
        assert tap.close() == []
    assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (0,)


def test_pids_someone_else_set_meanwhile_are_left_alone(hosted: Hosted) -> None:
    bed = hosted.bed
    port = bed.hosts[hosted.a]
    tap = UpcallTap(bed.dpif, "dp0", force=True).open()
    try:
        bed.dpif.set_vport(bed.dp, port, upcall_pids=[77])  # a router that started
    finally:
        assert tap.close() == []
    assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (77,)
    assert pids(hosted)[bed.hosts[hosted.b]] == (0,)


def test_a_port_or_datapath_gone_meanwhile_is_no_error(hosted: Hosted) -> None:
    bed = hosted.bed
    tap = UpcallTap(bed.dpif, "dp0", force=True).open()
    bed.dpif.delete_vport(bed.dp, bed.hosts[hosted.a])
    assert tap.close() == []
    tap = UpcallTap(bed.dpif, "dp0", force=True).open()
    bed.dpif.delete_datapath("dp0")
    assert tap.close() == []

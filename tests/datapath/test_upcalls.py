"""Upcalls: misses and userspace() actions reach the registered PIDs; losses count.

These need only ``dpif``, ``dp_ns`` and the ``host`` factory (see conftest.py).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import pytest

from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.actions import Output, Trunc, Userspace
from odpctl.odp.dpif import Dpif
from odpctl.odp.keys import FlowKey
from odpctl.odp.packet import Execute
from odpctl.odp.uapi import KeyAttr, PacketCmd
from odpctl.odp.vport import Vport

from .conftest import Host


def arp_request(src_mac: bytes, sip: str, tip: str) -> bytes:
    return (
        b"\xff" * 6
        + src_mac
        + b"\x08\x06"
        + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
        + src_mac
        + socket.inet_aton(sip)
        + b"\0" * 6
        + socket.inet_aton(tip)
    )


def send_frames(ns: str, ifname: str, frames: list[bytes]) -> None:
    """Send raw Ethernet frames out of ``ifname`` in namespace ``ns``."""
    with in_netns(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with s:
        s.bind((ifname, 0))
        for frame in frames:
            s.send(frame)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def test_miss_goes_to_the_port_pid(dpif: Dpif, host: Callable[[str], tuple[Host, str]]) -> None:
    dp = dpif.create_datapath("dpm")
    h, port_if = host("10.3.0.1/24")
    with dpif.open_upcall_channel() as channel:
        port = dpif.add_vport(dp, Vport(port_if, upcall_pids=(channel.port_id,)))
        frame = arp_request(mac_bytes(h.mac), "10.3.0.1", "10.3.0.2")
        send_frames(h.ns, h.ifname, [frame])
        upcall = channel.receive(timeout=5)
    assert upcall is not None
    assert upcall.cmd == PacketCmd.MISS
    assert upcall.dp_ifindex == dp.ifindex
    assert upcall.in_port == port.port_no
    assert upcall.packet == frame
    assert upcall.key[KeyAttr.ETHERTYPE] == 0x0806
    assert upcall.key[KeyAttr.ARP].sip == 0x0A030001
    assert upcall.key[KeyAttr.ETHERNET].src == mac_bytes(h.mac)
    stats = dpif.get_datapath(dp)
    assert (stats.missed, stats.lost, stats.hit) == (1, 0, 0)


def test_miss_without_a_pid_is_lost(dpif: Dpif, host: Callable[[str], tuple[Host, str]]) -> None:
    dp = dpif.create_datapath("dpl")
    h, port_if = host("10.3.1.1/24")
    dpif.add_vport(dp, Vport(port_if))  # upcall PID 0: nobody
    send_frames(h.ns, h.ifname, [arp_request(mac_bytes(h.mac), "10.3.1.1", "10.3.1.2")] * 3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and dpif.get_datapath(dp).lost < 3:
        time.sleep(0.05)
    stats = dpif.get_datapath(dp)
    assert (stats.missed, stats.lost) == (3, 3)


def test_userspace_action_upcall(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpa")
    frame = arp_request(b"\x02\0\0\0\0\x01", "10.0.0.1", "10.0.0.2")
    with dpif.open_upcall_channel() as channel:
        pid = channel.port_id
        dpif.execute(
            dp,
            Execute(
                frame,
                FlowKey({KeyAttr.IN_PORT: 0}),
                [
                    Trunc(20),
                    Userspace(pid, userdata=b"\x0a\x0b" + bytes(6)),
                    Userspace(pid, actions=True),
                ],
            ),
        )
        first = channel.receive(timeout=5)
        second = channel.receive(timeout=5)
    assert first is not None and second is not None
    assert first.cmd == second.cmd == PacketCmd.ACTION
    assert first.userdata == b"\x0a\x0b" + bytes(6)
    assert (first.packet, first.length) == (frame[:20], len(frame))
    assert second.packet == frame and second.length is None
    assert second.actions is not None and len(second.actions) == 3
    assert first.key[KeyAttr.ARP].tip == 0x0A000002


def test_losses_are_counted(dpif: Dpif) -> None:
    # Nobody reads the channel: what its socket cannot hold is lost, and counted.
    dp = dpif.create_datapath("dpz")
    frame = arp_request(b"\x02\0\0\0\0\x02", "10.0.0.1", "10.0.0.2") + bytes(1400)
    sent = 6000
    with dpif.open_upcall_channel(rcvbuf=1 << 20) as channel:
        request = Execute(frame, FlowKey({KeyAttr.IN_PORT: 0}), [Userspace(channel.port_id)])
        assert dpif.execute_many(dp, [request] * sent) == [None] * sent
        received = 0
        while channel.receive(timeout=0.5) is not None:
            received += 1
        lost = dpif.get_datapath(dp).lost
    assert lost > 0
    assert received + lost == sent


def test_upcall_to_a_pid_nobody_has_is_lost(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpy")
    frame = arp_request(b"\x02\0\0\0\0\x03", "10.0.0.1", "10.0.0.2")
    dpif.execute(dp, Execute(frame, FlowKey({KeyAttr.IN_PORT: 0}), [Userspace(3_000_000_000)]))
    assert dpif.get_datapath(dp).lost == 1


@pytest.mark.parametrize("flows", [False, True])
def test_hit_or_miss(dpif: Dpif, host: Callable[[str], tuple[Host, str]], flows: bool) -> None:
    dp = dpif.create_datapath("dph")
    h, port_if = host("10.3.2.1/24")
    with dpif.open_upcall_channel() as channel:
        port = dpif.add_vport(dp, Vport(port_if, upcall_pids=(channel.port_id,)))
        if flows:
            from odpctl.odp.flow import Flow
            from odpctl.odp.text.keys import parse_key

            key, mask = parse_key(f"in_port({port.port_no}),eth(),eth_type(0x0806),arp()")
            dpif.add_flow(dp, Flow(key, mask, [Output(0)]))
        send_frames(h.ns, h.ifname, [arp_request(mac_bytes(h.mac), "10.3.2.1", "10.3.2.9")] * 4)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stats = dpif.get_datapath(dp)
            if stats.hit + stats.missed >= 4:
                break
            time.sleep(0.05)
        got = 0
        while channel.receive(timeout=0.3 if flows else 2) is not None:
            got += 1
            if got == 4:
                break
    stats = dpif.get_datapath(dp)
    if flows:
        assert (stats.hit, stats.missed, got) == (4, 0, 0)
        (f,) = list(dpif.dump_flows(dp))
        assert f.packets == 4 and f.bytes == 4 * 42 and f.used > 0
    else:
        assert (stats.hit, stats.missed, got) == (0, 4, 4)

"""Netdev ports on packet sockets made ahead and closed behind (`PacketSockets`).

A port bound to a socket whose rings were set long before, in another
thread, must carry real frames both ways as one made on the spot did; a
deleted port's device stops being promiscuous with the reply, and its
sockets are really closed soon after; a server that stops leaves no packet
socket behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from odpctl.datapath.ports import PacketSockets
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport

from .conftest import Host, RunningServer
from .test_traffic import add, iperf, ping

HostFactory = Callable[[str], tuple[Host, str]]


def _sockets(server: RunningServer) -> PacketSockets:
    return server.server.registry.sockets


def _packet_socket_ifindexes(ns: str) -> list[int]:
    """The device each packet socket of ``ns`` is bound to (0: none)."""
    lines = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/packet"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[1:]
    return [int(line.split()[4]) for line in lines]


def _ifindex(ns: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "-n", ns, "-o", "link", "show", ifname], check=True, capture_output=True, text=True
    ).stdout
    return int(out.split(":")[0])


def _promiscuity(ns: str, ifname: str) -> int:
    words = subprocess.run(
        ["ip", "-n", ns, "-d", "link", "show", ifname], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(words[words.index("promiscuity") + 1])


def test_ports_on_sockets_made_ahead_carry_frames_both_ways(
    udpif: Dpif, dp_server: RunningServer, host: HostFactory
) -> None:
    dp = udpif.create_datapath("dps")
    sockets = _sockets(dp_server)
    a, a_if = host("10.9.0.1/24")
    b, b_if = host("10.9.0.2/24")
    ports = []
    for ifname in (a_if, b_if):
        assert sockets.wait_ready(), "no socket was made ahead"
        taken = sockets.taken_ready
        ports.append(udpif.add_vport(dp, Vport(ifname)).port_no or 0)
        assert sockets.taken_ready == taken + 1, "the port made its own socket"
    pa, pb = ports
    add(udpif, dp, f"in_port({pa}),eth()", str(pb))
    add(udpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip, count=5)
    # TCP: GSO super-packets, read whole past the RX ring's slots and sent
    # whole through the port's other socket, not the TX ring.
    assert iperf(a, b, 1) > 10e6
    stats = {p.port_no: p.stats for p in udpif.list_vports(dp)}
    for port in (pa, pb):
        s = stats[port]
        assert s is not None and s.rx_packets >= 5 and s.tx_packets >= 5
        assert s.rx_dropped == 0 and s.tx_errors == 0
    sent = stats[pa]
    assert sent is not None and sent.rx_bytes / sent.rx_packets > 1514, "no super-packets came"


def test_a_deleted_port_lets_go_of_its_device_at_once_and_its_sockets_soon(
    udpif: Dpif, dp_server: RunningServer, dp_ns: str, host: HostFactory
) -> None:
    dp = udpif.create_datapath("dpd")
    _a, a_if = host("10.9.1.1/24")
    ifindex = _ifindex(dp_ns, a_if)
    port = udpif.add_vport(dp, Vport(a_if)).port_no or 0
    assert _promiscuity(dp_ns, a_if) == 1
    assert ifindex in _packet_socket_ifindexes(dp_ns)
    udpif.delete_vport(dp, port)
    assert _promiscuity(dp_ns, a_if) == 0
    _sockets(dp_server).wait_ready()  # the worker is done with what came before
    assert ifindex not in _packet_socket_ifindexes(dp_ns)


def test_a_server_that_stops_leaves_no_packet_socket(
    udpif: Dpif, dp_server: RunningServer, dp_ns: str, host: HostFactory
) -> None:
    dp = udpif.create_datapath("dpz")
    _a, a_if = host("10.9.2.1/24")
    udpif.add_vport(dp, Vport(a_if))
    assert _sockets(dp_server).wait_ready()
    assert len(_packet_socket_ifindexes(dp_ns)) >= 3  # the port's two and one made ahead
    dp_server.stop()
    assert _packet_socket_ifindexes(dp_ns) == []

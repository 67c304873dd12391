"""The userspace datapath sends a burst's upcalls in batches: many per datagram.

A reader then takes a whole burst of misses in a few system calls, not one
per miss; and every upcall is still there, once, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from odpctl.netlink.message import decode_messages
from odpctl.netlink.transport import UnixTransport
from odpctl.odp.dpif import Dpif
from odpctl.odp.header import split_odp
from odpctl.odp.packet import decode_upcall
from odpctl.odp.vport import Vport

from .conftest import Host, RunningServer
from .test_accounting import MISSED_TYPE
from .test_upcalls import mac_bytes, send_frames

BURST = 1000


def test_a_burst_of_misses_comes_up_in_few_datagrams_every_one_once(
    udpif: Dpif, dp_server: RunningServer, host: Callable[[str], tuple[Host, str]]
) -> None:
    dp = udpif.create_datapath("dpbatch")
    h, port_if = host("10.3.7.1/24")
    reader = UnixTransport(dp_server.path)
    try:
        udpif.add_vport(dp, Vport(port_if, upcall_pids=(reader.port_id,)))
        dst = mac_bytes("02:00:00:00:00:01")
        frames = [
            dst + b"\x02\xab" + i.to_bytes(4, "big") + MISSED_TYPE.to_bytes(2, "big") + bytes(46)
            for i in range(BURST)
        ]
        send_frames(h.ns, h.ifname, frames)
        datagrams, packets = 0, list[bytes]()
        deadline = time.monotonic() + 20
        while len(packets) < BURST and time.monotonic() < deadline:
            data = reader.recv_nowait()
            if data is None:
                time.sleep(0.01)
                continue
            datagrams += 1
            for msg in decode_messages(data):
                cmd, dp_ifindex, attrs = split_odp(msg.payload)
                packets.append(decode_upcall(cmd, dp_ifindex, attrs).packet)
    finally:
        reader.close()
    assert packets == frames
    stats = udpif.get_datapath(dp)
    assert (stats.missed, stats.lost) == (BURST, 0)
    # One datagram per upcall was the old way; batches must do far better.
    assert datagrams <= BURST // 4, f"{BURST} upcalls came in {datagrams} datagrams"

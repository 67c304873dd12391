"""Every frame accounted for: a burst larger than every queue, counted exactly.

A frame that arrives on a port is matched by a flow (``hit``), or missed and
sent up (an upcall the reader gets), or counted where it was refused: the
datapath's ``lost`` (the upcall socket was full), the port's ``rx_dropped``
(the userspace datapath's receive ring overran).  The burst here is far
larger than the ring and than the upcall socket, and nobody reads during it,
so both overflow; the sum must still come out exact.  Runs on both
datapaths (``dpif``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import PacketCmd
from odpctl.odp.vport import Vport

from .conftest import Host
from .test_upcalls import mac_bytes

BURST = 12000  # past the ring (4,096 slots) and the upcall socket
MATCHED_TYPE, MISSED_TYPE = 0x88B5, 0x88B6


def burst(ns: str, ifname: str, dst: bytes, n: int) -> int:
    """Send ``n`` frames, every other one of the matched ethertype; how many went."""
    with in_netns(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sent = 0
    with s:
        s.bind((ifname, 0))
        for i in range(n):
            src = b"\x02\xac" + i.to_bytes(4, "big")
            ethertype = MATCHED_TYPE if i % 2 else MISSED_TYPE
            try:
                s.send(dst + src + ethertype.to_bytes(2, "big") + bytes(46))
            except BlockingIOError:  # the sender's own queue: never reached the port
                continue
            sent += 1
    return sent


def tx_dropped(ns: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{ifname}/statistics/tx_dropped"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out)


def test_a_burst_past_every_queue_is_counted_exactly(
    dpif: Dpif, host: Callable[[str], tuple[Host, str]], datapath_kind: str
) -> None:
    dp = dpif.create_datapath("dpacct")
    h, port_if = host("10.3.9.1/24")
    # A small upcall socket, not read during the burst: it overflows.
    with dpif.open_upcall_channel(rcvbuf=64 << 10) as channel:
        port = dpif.add_vport(dp, Vport(port_if, upcall_pids=(channel.port_id,)))
        key, mask = parse_key(f"in_port({port.port_no}),eth(),eth_type(0x{MATCHED_TYPE:04x})")
        dpif.add_flow(dp, Flow(key, mask, []))
        sent = burst(h.ns, h.ifname, mac_bytes("02:00:00:00:00:01"), BURST)

        def counted() -> tuple[int, int, int, int]:
            stats = dpif.get_datapath(dp)
            assert port.port_no is not None
            vport = dpif.get_vport(dp, port.port_no)
            assert vport.stats is not None
            return stats.hit, stats.missed, stats.lost, vport.stats.rx_dropped

        # Until the counters stand still (the datapath has caught up).
        last, still = counted(), 0
        deadline = time.monotonic() + 30
        while still < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = counted()
            still = still + 1 if now == last else 0
            last = now
        upcalled = 0
        while (upcall := channel.receive(timeout=0.5)) is not None:
            assert upcall.cmd == PacketCmd.MISS
            upcalled += 1
        hit, missed, lost, rx_dropped = counted()
    # The kernel's vport counters are the device's, where a frame the
    # receiving backlog refused is already in rx_dropped (and again in the
    # sender's tx_dropped); the userspace datapath's are its own.
    before_port = tx_dropped(h.ns, h.ifname) if datapath_kind == "userspace" else 0
    detail = (
        f"sent {sent}: hit {hit}, missed {missed} (upcalled {upcalled}, lost {lost}), "
        f"rx_dropped {rx_dropped}, dropped before the port {before_port}"
    )
    assert sent == hit + upcalled + lost + rx_dropped + before_port, detail
    assert missed == upcalled + lost, detail
    assert hit > 0 and upcalled > 0, detail
    assert lost + rx_dropped > 0, f"the burst overflowed nothing: {detail}"

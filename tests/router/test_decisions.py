"""The forwarder's decisions on misses, without a datapath: outcomes, reasons, the flow limit."""

from __future__ import annotations

from odpctl.mesh.names import PeerName
from odpctl.odp.keys import Eth, FlowKey
from odpctl.odp.packet import Upcall
from odpctl.odp.uapi import KeyAttr, PacketCmd
from odpctl.overlay.forwarder import DROPPED, FLOW, NO_FLOW, Forwarder, Ports
from odpctl.overlay.links import Links, Policy
from odpctl.overlay.maccache import Local, MacCache, Remote
from odpctl.overlay.view import MeshView

US, PEER = PeerName(0x010101010101), PeerName(0x020202020202)
REMOTE_MAC, LOCAL_MAC = b"\x02\0\0\0\0\x09", b"\x02\0\0\0\0\x07"


def forwarder(max_flows: int = 0) -> Forwarder:
    macs = MacCache()
    macs.learn(REMOTE_MAC, Remote(PEER))
    macs.learn(LOCAL_MAC, Local(2))
    f = Forwarder("dp", macs, 6784, Links(Policy(False), lambda: None), max_flows=max_flows)
    f.view = MeshView(
        US,
        1,
        short_ids={US: 1, PEER: 2},
        next_hops={PEER: PEER},
        neighbour_ips={PEER: "192.168.77.2"},
        by_short_id={1: US, 2: PEER},
    )
    f.ports = Ports(frozenset({2, 3}), 1)
    return f


def miss(in_port: int, src: bytes, dst: bytes) -> Upcall:
    key = FlowKey(
        {KeyAttr.IN_PORT: in_port, KeyAttr.ETHERNET: Eth(src, dst), KeyAttr.ETHERTYPE: 0x88B6}
    )
    return Upcall(PacketCmd.MISS, 5, key, dst + src + b"\x88\xb6" + bytes(46))


def test_a_known_destination_is_a_flow_and_an_execute() -> None:
    f = forwarder()
    decision = f.decide(miss(3, b"\x02\xbd\0\0\0\x01", REMOTE_MAC))
    assert decision.outcome == FLOW and decision.flow is not None
    assert decision.execute is not None and decision.execute.actions == decision.flow.actions
    assert not decision.flush and f.pending == 1
    f.settled(1, 1)
    assert (f.pending, f.flows, f.stats.flows_installed) == (0, 1, 1)


def test_drops_are_counted_by_reason() -> None:
    f = forwarder()
    assert f.decide(miss(2, b"\x02\xbd\0\0\0\x02", LOCAL_MAC)).outcome == DROPPED  # hairpin
    assert f.decide(miss(9, b"\x02\xbd\0\0\0\x03", REMOTE_MAC)).outcome == DROPPED
    assert f.drop_reasons.snapshot() == {"hairpin": 1, "from a port not attached": 1}
    assert (f.stats.misses, f.stats.dropped) == (2, 2)


def test_past_the_flow_limit_a_miss_goes_on_without_a_flow() -> None:
    f = forwarder(max_flows=2)
    f.recount(1, since=0)
    first = f.decide(miss(3, b"\x02\xbd\0\0\0\x04", REMOTE_MAC))
    second = f.decide(miss(3, b"\x02\xbd\0\0\0\x05", REMOTE_MAC))  # the first's is reserved
    assert (first.outcome, second.outcome) == (FLOW, NO_FLOW)
    assert second.flow is None and second.execute is not None
    assert f.stats.over_limit == 1
    f.settled(1, 0)  # the first's put failed: its place is free again
    assert f.decide(miss(3, b"\x02\xbd\0\0\0\x06", REMOTE_MAC)).outcome == FLOW


def test_a_mac_that_moved_asks_for_a_flush_before_its_flow() -> None:
    f = forwarder()
    decision = f.decide(miss(3, REMOTE_MAC, LOCAL_MAC))  # was behind PEER, now on port 3
    assert decision.outcome == FLOW and decision.flush and f.stats.mac_moves == 1

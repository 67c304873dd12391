"""Flows: the flow table's rules, identities, replies and refusals.

These need only ``dpif`` (see conftest.py): flows name ports by number and
no traffic flows, so no interfaces are needed.
"""

from __future__ import annotations

import pytest

from odpctl.errors import AlreadyExistsError, KernelRefusedError, NotFoundError, OdpError
from odpctl.odp.actions import Output, PushVlan, Userspace
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.keys import FlowKey, Ipv4
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import KeyAttr

EINVAL = 22
EOPNOTSUPP = 95


def flow(
    key_text: str, actions_text: str = "2", *, exact: bool = False, ufid: bytes | None = None
) -> Flow:
    key, mask = parse_key(key_text)
    return Flow(key, None if exact else mask, parse_actions(actions_text), ufid=ufid)


def test_add_dump_get_delete(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpf")
    f = flow("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.0.0/255.255.0.0)", "2")
    dpif.add_flow(dp, f)
    (dumped,) = list(dpif.dump_flows(dp))
    assert dumped.key.in_port == 1
    assert dumped.key[KeyAttr.IPV4].src == 0x0A010000
    assert dumped.mask is not None
    assert dumped.mask[KeyAttr.IPV4] == Ipv4(0xFFFF0000, 0, 0, 0, 0, 0)
    assert dumped.mask[KeyAttr.ETHERTYPE] == 0xFFFF
    assert dumped.actions == [Output(2)]
    assert (dumped.packets, dumped.bytes, dumped.used, dumped.tcp_flags) == (0, 0, 0, 0)
    assert dpif.get_flow(dp, f.key).actions == [Output(2)]
    assert dpif.get_datapath(dp).flows == 1
    gone = dpif.delete_flow(dp, f.key)
    assert gone.actions == [Output(2)]
    with pytest.raises(NotFoundError):
        dpif.get_flow(dp, f.key)
    assert list(dpif.dump_flows(dp)) == []


def test_in_port_and_ethertype_masks_are_always_exact(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpm")
    key, mask = parse_key("in_port(3),eth(),eth_type(0x0806),arp()")
    mask[KeyAttr.IN_PORT] = 0x1
    mask[KeyAttr.ETHERTYPE] = 0x0F00
    dpif.add_flow(dp, Flow(key, mask, [Output(1)]))
    (dumped,) = list(dpif.dump_flows(dp))
    assert dumped.mask is not None
    assert dumped.mask[KeyAttr.IN_PORT] == 0xFFFFFFFF
    assert dumped.mask[KeyAttr.ETHERTYPE] == 0xFFFF


def test_exact_match_flow(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpx")
    f = flow(
        "in_port(1),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)",
        exact=True,
    )
    dpif.add_flow(dp, f)
    got = dpif.get_flow(dp, f.key)
    assert got.mask is not None
    assert got.mask[KeyAttr.IPV4] == Ipv4(0xFFFFFFFF, 0xFFFFFFFF, 0xFF, 0xFF, 0xFF, 0xFF)
    assert got.mask[KeyAttr.ETHERNET].src == b"\xff" * 6


def test_overlapping_flows(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpo")
    general = flow("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.0.0/255.255.0.0)")
    specific = flow("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.1.2.3)")
    dpif.add_flow(dp, general)
    # An installed megaflow matches the new key: the flow "exists".
    with pytest.raises(AlreadyExistsError):
        dpif.add_flow(dp, specific)
    dpif.flush_flows(dp)
    # The other way round, the general key is not matched by the specific flow.
    dpif.add_flow(dp, specific)
    dpif.add_flow(dp, general)
    assert len(list(dpif.dump_flows(dp))) == 2
    # A flow on another port does not overlap.
    dpif.add_flow(dp, flow("in_port(2),eth(),eth_type(0x0800),ipv4(src=10.1.0.0/255.255.0.0)"))


def test_same_key_again(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpr")
    f = flow("in_port(1),eth(),eth_type(0x0806),arp()", "2")
    dpif.add_flow(dp, f)
    with pytest.raises(AlreadyExistsError):
        dpif.add_flow(dp, f)
    dpif.add_flow(dp, flow("in_port(1),eth(),eth_type(0x0806),arp()", "3"), replace=True)
    assert dpif.get_flow(dp, f.key).actions == [Output(3)]
    dpif.modify_flow(dp, flow("in_port(1),eth(),eth_type(0x0806),arp()", "4"))
    assert dpif.get_flow(dp, f.key).actions == [Output(4)]
    with pytest.raises(NotFoundError):
        dpif.modify_flow(dp, flow("in_port(9),eth(),eth_type(0x0806),arp()", "4"))


def test_ufid_flows(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpu")
    ufid = bytes(range(16))
    f = flow("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.2.0.0/255.255.0.0)", ufid=ufid)
    dpif.add_flow(dp, f)
    got = dpif.get_flow(dp, ufid=ufid)
    assert got.ufid == ufid
    assert got.key[KeyAttr.IPV4].dst == 0x0A020000
    (dumped,) = list(dpif.dump_flows(dp))
    assert dumped.ufid == ufid
    # A UFID flow is not found by its key.
    with pytest.raises(NotFoundError):
        dpif.get_flow(dp, f.key)
    dpif.delete_flow(dp, ufid=ufid)
    assert list(dpif.dump_flows(dp)) == []


def test_flush_and_unknown_datapath(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpq")
    for port in range(1, 6):
        dpif.add_flow(dp, flow(f"in_port({port}),eth(),eth_type(0x0806),arp()"))
    assert dpif.get_datapath(dp).flows == 5
    dpif.flush_flows(dp)
    assert dpif.get_datapath(dp).flows == 0
    with pytest.raises(NotFoundError):
        dpif.flush_flows(123456)


def test_many_flows_batched_and_dumped(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpb")
    flows = [
        flow(f"in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.{i >> 8}.{i & 255}.0/255.255.255.0)")
        for i in range(3000)
    ]
    assert all(r is None for r in dpif.add_flows(dp, flows))
    dumped = list(dpif.dump_flows(dp))
    assert len(dumped) == 3000
    assert {f.key[KeyAttr.IPV4].dst for f in dumped} == {f.key[KeyAttr.IPV4].dst for f in flows}
    stats = dpif.get_datapath(dp)
    assert (stats.flows, stats.masks) == (3000, 1)
    results = dpif.delete_flows(dp, flows[:10])
    assert results == [None] * 10


@pytest.mark.parametrize(
    ("key_text", "actions"),
    [
        # a key missing what its EtherType and protocol imply
        ("in_port(1),eth(),eth_type(0x0800)", "2"),
        ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp(dst=80)", "2"),
        # a mask on a field the key does not pin down
        ("in_port(1),eth(),eth_type(0x0800/0),ipv4(src=1.2.3.4)", "2"),
        # a tunnel match without a TTL, or without a destination
        ("tunnel(tun_id=0x2c,dst=10.0.0.1),in_port(1),eth(),eth_type(0x0800),ipv4()", "2"),
        ("tunnel(tun_id=0x2c,ttl=64),in_port(1),eth(),eth_type(0x0800),ipv4()", "2"),
        # set(tcp) on a flow that does not pin the protocol to TCP
        ("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0)", "set(tcp(src=5)),2"),
        # set(ipv4) on a flow that is not IPv4
        ("in_port(1),eth(),eth_type(0x0806),arp()", "set(ipv4(src=1.1.1.1/255.255.255.255)),2"),
        # userspace() without a PID, an output port out of range, a short trunc
        ("in_port(1),eth(),eth_type(0x0806),arp()", "userspace(pid=0)"),
        ("in_port(1),eth(),eth_type(0x0806),arp()", "70000"),
        ("in_port(1),eth(),eth_type(0x0806),arp()", "trunc(10),2"),
    ],
)
def test_refused_with_einval(dpif: Dpif, key_text: str, actions: str) -> None:
    dp = dpif.create_datapath("dpe")
    with pytest.raises(KernelRefusedError) as info:
        dpif.add_flow(dp, flow(key_text, actions))
    assert info.value.errno == EINVAL
    assert list(dpif.dump_flows(dp)) == []


def test_push_vlan_needs_the_cfi_bit(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpv")
    key, mask = parse_key("in_port(1),eth(),eth_type(0x0806),arp()")
    with pytest.raises(KernelRefusedError):
        dpif.add_flow(dp, Flow(key, mask, [PushVlan(0x8100, 0x0005), Output(2)]))
    dpif.add_flow(dp, Flow(key, mask, [PushVlan(0x8100, 0x1005), Output(2)]))


def test_echoed_actions_and_set_tunnel(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpt")
    f = flow(
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.9.0.0/255.255.0.0)",
        "set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),"
        "sample(sample=50.0%,actions(2)),clone(push_vlan(vid=3,pcp=1),2),"
        "userspace(pid=7,userdata(01020304)),3",
    )
    dpif.add_flow(dp, f)
    (dumped,) = list(dpif.dump_flows(dp))
    assert dumped.actions == f.actions


def test_userspace_action_needs_no_client(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpn")
    key, mask = parse_key("in_port(1),eth(),eth_type(0x0806),arp()")
    dpif.add_flow(dp, Flow(key, mask, [Userspace(pid=424242)]))


def test_unsupported_actions_are_refused_at_install_time(udpif: Dpif) -> None:
    # The kernel has conntrack and MPLS; the userspace datapath says so, clearly.
    dp = udpif.create_datapath("dps")
    cases = [
        ("in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0)", "ct(commit),2", "ct"),
        (
            "in_port(1),eth(),eth_type(0x0800),ipv4(src=11.0.0.0/255.0.0.0)",
            "push_mpls(label=10,tc=0,ttl=64,bos=1,eth_type=0x8847),2",
            "push_mpls",
        ),
        ("in_port(1),eth(),eth_type(0x0800),ipv4(src=12.0.0.0/255.0.0.0)", "meter(1),2", "meter"),
    ]
    for key_text, actions, name in cases:
        with pytest.raises(OdpError) as info:
            udpif.add_flow(dp, flow(key_text, actions))
        assert info.value.errno == EOPNOTSUPP
        assert "userspace datapath does not support" in str(info.value)
        assert name in str(info.value)
    assert list(udpif.dump_flows(dp)) == []


def test_flows_of_a_deleted_port_stay(dpif: Dpif) -> None:
    # The kernel keeps flows whose in_port no longer exists; so does this.
    dp = dpif.create_datapath("dpk")
    dpif.add_flow(dp, flow("in_port(9),eth(),eth_type(0x0806),arp()"))
    assert len(list(dpif.dump_flows(dp))) == 1


def test_get_flow_with_only_a_key_shape(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpg")
    with pytest.raises(KernelRefusedError):
        dpif.get_flow(dp, FlowKey({KeyAttr.IN_PORT: 1}))

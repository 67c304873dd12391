"""Golden byte vectors for the ODP families other than flow keys.

Datapath and vport replies, flow messages (``OVS_FLOW_ATTR_*``), upcalls and
execute requests (``OVS_PACKET_ATTR_*``), and the shared headers.  As in
test_golden_keys.py, every expected byte string is written by hand from the
kernel uAPI (include/uapi/linux/openvswitch.h, /work/ref/openvswitch.h), with
the struct it follows in a comment; host-order fields are spelled
little-endian, so the module is skipped on big-endian hosts.

``struct nlattr { __u16 nla_len; __u16 nla_type; }`` heads every attribute;
``nla_len`` counts the header, not the padding to 4 bytes that follows.
"""

from __future__ import annotations

import sys

import pytest

from odpctl.errors import DecodeError
from odpctl.netlink.message import decode_messages, encode_message
from odpctl.odp.actions import Action, Ct, Output, PushVlan, Set, SetMasked, Userspace
from odpctl.odp.datapath import Datapath, decode_datapath, encode_pids
from odpctl.odp.flow import Flow, decode_flow_attrs, encode_flow_attrs
from odpctl.odp.header import ODP_HEADER_SIZE, odp_payload, split_odp
from odpctl.odp.keys import Eth, FlowKey, Tunnel
from odpctl.odp.packet import Execute, Upcall, decode_upcall, encode_execute
from odpctl.odp.uapi import DpFeature, KeyAttr, PacketCmd, UfidFlag, VportType
from odpctl.odp.vport import Vport, VportStats, decode_vport, encode_vport_options

pytestmark = pytest.mark.skipif(
    sys.byteorder != "little", reason="vectors spell host-order fields little-endian"
)


def h(text: str) -> bytes:
    """Hex with free whitespace; ``|`` may separate fields for readability."""
    return bytes.fromhex(text.replace("|", " "))


# --- shared headers ----------------------------------------------------------


def test_odp_header_golden() -> None:
    # struct genlmsghdr { __u8 cmd; __u8 version; __u16 reserved; }
    # struct ovs_header { int dp_ifindex; }  (host order, signed)
    assert ODP_HEADER_SIZE == 8
    assert odp_payload(3, 2, 7, h("0400 0100")) == h("03 | 02 | 0000 | 07000000 | 0400 0100")
    assert split_odp(h("01 | 01 | 0000 | 2a000000 | 0800 0300 05000000")) == (
        1,
        42,
        h("0800 0300 05000000"),
    )
    # dp_ifindex is an int: all ones is -1, not 4294967295.
    assert split_odp(h("01 01 0000 ffffffff"))[1] == -1
    # The reserved field is ignored on decode.
    assert split_odp(h("02 01 beef 01000000")) == (2, 1, b"")


def test_odp_header_too_short() -> None:
    with pytest.raises(DecodeError):
        split_odp(h("01 01 0000 070000"))


def test_netlink_message_golden() -> None:
    # struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags;
    #                   __u32 nlmsg_seq; __u32 nlmsg_pid; }
    # nlmsg_len counts the header and the payload, not the trailing padding.
    payload = odp_payload(1, 1, 7, h("0500 0400 | 06 000000"))  # 8 + 8 bytes
    wire = encode_message(0x1B, 0x0005, 9, 0, payload)
    assert wire == h(
        "20000000 | 1b00 | 0500 | 09000000 | 00000000 | 01 01 0000 07000000 | 0500 0400 | 06 000000"
    )
    # A 3-byte payload: nlmsg_len 19, one pad byte so messages concatenate.
    assert encode_message(0x10, 0, 1, 2, h("aabbcc")) == h(
        "13000000 | 1000 | 0000 | 01000000 | 02000000 | aabbcc | 00"
    )
    (msg,) = decode_messages(wire)
    assert (msg.type, msg.flags, msg.seq, msg.pid) == (0x1B, 5, 9, 0)
    assert msg.payload == payload


# --- datapaths (ovs_datapath family) -----------------------------------------

DP_NAME = (  # OVS_DP_ATTR_NAME (1): NUL-terminated "ovs-system", 11 bytes + 1 pad
    "0f00 0100 | 6f76732d73797374656d00 | 00"
)
DP_STATS = (
    # OVS_DP_ATTR_STATS (3): struct ovs_dp_stats { __u64 n_hit, n_missed, n_lost,
    # n_flows; } in host order, 4-byte aligned only.
    "2400 0300 | e803000000000000 | 1400000000000000 | 0100000000000000 | 0500000000000000"
)
DP_MEGAFLOW = (
    # OVS_DP_ATTR_MEGAFLOW_STATS (4): struct ovs_dp_megaflow_stats { __u64 n_mask_hit;
    # __u32 n_masks; __u32 pad0; __u64 n_cache_hit; __u64 pad1; }  (32 bytes)
    "2400 0400 | b80b000000000000 | 02000000 | 00000000 | 8403000000000000 | 0000000000000000"
)
DP_FEATURES = (
    # OVS_DP_ATTR_USER_FEATURES (5): u32 of OVS_DP_F_*:
    # UNALIGNED 1<<0 | VPORT_PIDS 1<<1 | DISPATCH_UPCALL_PER_CPU 1<<3
    "0800 0500 | 0b000000"
)
DP_CACHE = "0800 0700 | 00010000"  # OVS_DP_ATTR_MASKS_CACHE_SIZE (7): u32 256
DP_PIDS = (  # OVS_DP_ATTR_PER_CPU_PIDS (8): array of u32 netlink port ids, one per CPU
    "0c00 0800 | 64000000 | c8000000"
)


def test_datapath_reply_golden() -> None:
    wire = h(" | ".join([DP_NAME, DP_STATS, DP_MEGAFLOW, DP_FEATURES, DP_CACHE, DP_PIDS]))
    dp = decode_datapath(7, wire)
    assert dp == Datapath(
        name="ovs-system",
        ifindex=7,
        hit=1000,
        missed=20,
        lost=1,
        flows=5,
        mask_hit=3000,
        masks=2,
        cache_hit=900,
        features=DpFeature.UNALIGNED | DpFeature.VPORT_PIDS | DpFeature.DISPATCH_UPCALL_PER_CPU,
        masks_cache_size=256,
        per_cpu_pids=(100, 200),
    )
    assert dp.lookups == 1021
    assert dp.masks_hit_per_packet == pytest.approx(3000 / 1020)  # as ovs-dpctl: lost left out
    assert dp.cache_hit_rate == pytest.approx(900 / 1020 * 100)


def test_datapath_reply_minimal_and_extras() -> None:
    # Name only (an old kernel) plus what decode_datapath passes over: an
    # OVS_DP_ATTR_PAD (6) before a 64-bit struct, OVS_DP_ATTR_IFINDEX (9),
    # and an attribute type from the future (0x30).
    wire = h(
        "0800 0100 | 64703000"  # NAME "dp0\0"
        " | 0400 0600"  # PAD
        " | 0800 0900 | 07000000"  # IFINDEX u32
        " | 0800 3000 | 01020304"  # unknown
        " | 0800 0200 | 39300000"  # OVS_DP_ATTR_UPCALL_PID (2): u32 12345
    )
    assert decode_datapath(3, wire) == Datapath("dp0", 3, upcall_pid=12345)


def test_datapath_megaflow_pads_ignored() -> None:
    # pad0 and pad1 are "for future expansion": their contents never leak into fields.
    mega = h(
        "2400 0400 | 0100000000000000 | 02000000 | ffffffff | 0300000000000000 | ffffffffffffffff"
    )
    dp = decode_datapath(1, h(DP_NAME) + mega)
    assert (dp.mask_hit, dp.masks, dp.cache_hit) == (1, 2, 3)


def test_datapath_unknown_feature_bits_kept() -> None:
    dp = decode_datapath(1, h(DP_NAME) + h("0800 0500 | 01000080"))
    assert int(dp.features) == 0x80000001


@pytest.mark.parametrize(
    "bad",
    [
        h(DP_STATS),  # no name
        h(DP_NAME) + h("2000 0300") + bytes(28),  # ovs_dp_stats cut to 28 bytes
        h(DP_NAME) + h("2800 0400") + bytes(36),  # megaflow stats of 36 bytes
        h(DP_NAME) + h("0600 0500 | 0100 0000"),  # u16 user features
        h(DP_NAME) + h("0a00 0800 | 01000000 0200 0000"),  # 6-byte pid array
    ],
)
def test_datapath_reply_malformed(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_datapath(1, bad)


def test_encode_pids_golden() -> None:
    # OVS_DP_ATTR_PER_CPU_PIDS / OVS_VPORT_ATTR_UPCALL_PID payload: __u32[] host order.
    assert encode_pids([1, 0x01020304]) == h("01000000 | 04030201")
    assert encode_pids(()) == b""


# --- vports (ovs_vport family) -----------------------------------------------

VP_PORT_NO = "0800 0100 | 03000000"  # OVS_VPORT_ATTR_PORT_NO (1): u32 3
VP_TYPE = "0800 0200 | 04000000"  # OVS_VPORT_ATTR_TYPE (2): u32 OVS_VPORT_TYPE_VXLAN (4)
VP_NAME = (  # OVS_VPORT_ATTR_NAME (3): "vxlan_sys_4789\0", 15 bytes + 1 pad
    "1300 0300 | 7678 6c61 6e5f 7379 735f 3437 3839 00 | 00"
)
VP_OPTIONS = (
    # OVS_VPORT_ATTR_OPTIONS (4) nesting OVS_TUNNEL_ATTR_DST_PORT (1): u16 in host
    # order (the kernel's nla_put_u16(..., ntohs(dst_port))), 2 pad bytes.
    "0c00 0400 | 0600 0100 | b512 | 0000"
)
VP_PIDS = "0c00 0500 | 34120000 | 78560000"  # OVS_VPORT_ATTR_UPCALL_PID (5): __u32[]
VP_STATS = (
    # OVS_VPORT_ATTR_STATS (6): struct ovs_vport_stats { __u64 rx_packets, tx_packets,
    # rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped; }  (64 bytes)
    "4400 0600"
    " | 0a00000000000000 | 1400000000000000 | e803000000000000 | d007000000000000"
    " | 0100000000000000 | 0200000000000000 | 0300000000000000 | 0400000000000000"
)
VP_IFINDEX = "0800 0800 | 0c000000"  # OVS_VPORT_ATTR_IFINDEX (8): u32 12
VP_NETNSID = "0800 0900 | ffffffff"  # OVS_VPORT_ATTR_NETNSID (9): s32 -1 (NETNSA_NSID_NOT_ASSIGNED)
VP_UPCALL_STATS = (
    # OVS_VPORT_ATTR_UPCALL_STATS (10) nesting OVS_VPORT_UPCALL_ATTR_SUCCESS (0) and
    # OVS_VPORT_UPCALL_ATTR_FAIL (1), each a u64 in host order.
    "1c00 0a00 | 0c00 0000 | 6400000000000000 | 0c00 0100 | 0200000000000000"
)


def test_vport_reply_golden() -> None:
    wire = h(
        " | ".join(
            [
                VP_PORT_NO,
                VP_TYPE,
                VP_NAME,
                VP_OPTIONS,
                VP_PIDS,
                VP_STATS,
                VP_IFINDEX,
                VP_NETNSID,
                VP_UPCALL_STATS,
            ]
        )
    )
    vport = decode_vport(7, wire)
    assert vport == Vport(
        name="vxlan_sys_4789",
        type=VportType.VXLAN,
        port_no=3,
        dp_ifindex=7,
        dst_port=4789,
        upcall_pids=(0x1234, 0x5678),
        stats=VportStats(10, 20, 1000, 2000, 1, 2, 3, 4),
        ifindex=12,
        netnsid=-1,
        upcall_success=100,
        upcall_fail=2,
    )
    assert type(vport.stats) is VportStats
    assert vport.options() == {"dst_port": "4789"}


def test_vport_reply_vxlan_gbp() -> None:
    # OPTIONS { DST_PORT 4789, OVS_TUNNEL_ATTR_EXTENSION (2) { OVS_VXLAN_EXT_GBP (1) flag } }
    options = h("1400 0400 | 0600 0100 | b512 0000 | 0800 0200 | 0400 0100")
    vport = decode_vport(1, h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + options)
    assert (vport.dst_port, vport.vxlan_gbp) == (4789, True)
    assert vport.options() == {"dst_port": "4789", "exts": "gbp"}


def test_vport_reply_netdev_minimal() -> None:
    wire = h(
        "0800 0100 | 00000000"  # PORT_NO 0 (the local port)
        " | 0800 0200 | 02000000"  # TYPE OVS_VPORT_TYPE_INTERNAL (2)
        " | 0800 0300 | 64703000"  # NAME "dp0"
    )
    assert decode_vport(5, wire) == Vport("dp0", VportType.INTERNAL, 0, 5)


@pytest.mark.parametrize(
    "bad",
    [
        h(VP_TYPE) + h(VP_NAME),  # no port number
        h(VP_PORT_NO) + h(VP_NAME),  # no type
        h(VP_PORT_NO) + h(VP_TYPE),  # no name
        h(VP_PORT_NO) + h("0800 0200 | 63000000") + h(VP_NAME),  # type 99
        h(VP_PORT_NO) + h("0600 0200 | 0400 0000") + h(VP_NAME),  # u16 type
        h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + h("0800 0400 | 0500 0100"),  # DST_PORT lies
        h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + h("0c00 0400 | 0800 0100 | b5120000"),
        h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + h("0a00 0500 | 01000000 0200 0000"),
        h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + h("0c00 0600") + bytes(8),  # short stats
        h(VP_PORT_NO) + h(VP_TYPE) + h(VP_NAME) + h("0c00 0a00 | 0800 0000 | 01000000"),
    ],
)
def test_vport_reply_malformed(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_vport(1, bad)


def test_vport_options_golden() -> None:
    # VXLAN: OPTIONS { DST_PORT u16 host order } defaulting to 4789 (0x12b5).
    assert encode_vport_options(Vport("v", VportType.VXLAN)) == h(
        "0c00 0400 | 0600 0100 | b512 | 0000"
    )
    # Geneve defaults to 6081 (0x17c1).
    assert encode_vport_options(Vport("g", VportType.GENEVE)) == h(
        "0c00 0400 | 0600 0100 | c117 | 0000"
    )
    # VXLAN with GBP: EXTENSION (2) nesting the OVS_VXLAN_EXT_GBP (1) flag.
    assert encode_vport_options(Vport("v", VportType.VXLAN, dst_port=8472, vxlan_gbp=True)) == h(
        "1400 0400 | 0600 0100 | 1821 | 0000 | 0800 0200 | 0400 0100"
    )
    # Netdev and internal vports take no options.
    assert encode_vport_options(Vport("e", VportType.NETDEV)) is None
    assert encode_vport_options(Vport("i", VportType.INTERNAL)) is None


# --- flows (ovs_flow family) ------------------------------------------------------
#
# enum ovs_flow_attr: KEY 1 (nested OVS_KEY_ATTR_*), ACTIONS 2 (nested
# OVS_ACTION_ATTR_*), STATS 3 (struct ovs_flow_stats { __u64 n_packets;
# __u64 n_bytes; }), TCP_FLAGS 4 (u8), USED 5 (u64 msecs), CLEAR 6 (flag),
# MASK 7 (nested OVS_KEY_ATTR_*), PROBE 8, UFID 9 (1-16 octets), UFID_FLAGS 10
# (u32 of OVS_UFID_F_*), PAD 11.

UFID = bytes(range(0xA0, 0xB0))
UFID_ATTR = "1400 0900 | a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  # OVS_FLOW_ATTR_UFID, 16 octets

WEAVE_KEY = FlowKey(
    {
        KeyAttr.TUNNEL: Tunnel(
            tun_id=0x00802001, ipv4_src=0xC0000201, ipv4_dst=0xC6336402, ttl=64, df=True
        ),
        KeyAttr.IN_PORT: 1,
        KeyAttr.ETHERNET: Eth(bytes.fromhex("001122334455"), bytes.fromhex("66778899aabb")),
    }
)
WEAVE_KEY_ATTRS = (
    "2c00 1000"  # OVS_KEY_ATTR_TUNNEL, 4 + 40
    "   | 0c00 0000 | 0000000000802001"  # OVS_TUNNEL_KEY_ATTR_ID be64
    "   | 0800 0100 | c0000201"  # IPV4_SRC be32 192.0.2.1
    "   | 0800 0200 | c6336402"  # IPV4_DST be32 198.51.100.2
    "   | 0500 0400 | 40 000000"  # TTL u8 64
    "   | 0400 0500"  # DONT_FRAGMENT
    " | 0800 0300 | 01000000"  # OVS_KEY_ATTR_IN_PORT u32
    " | 1000 0400 | 001122334455 | 66778899aabb"  # struct ovs_key_ethernet
)
WEAVE_MASK = FlowKey(
    {
        KeyAttr.TUNNEL: Tunnel(
            tun_id=2**64 - 1, ipv4_src=2**32 - 1, ipv4_dst=2**32 - 1, ttl=0xFF, df=True
        ),
        KeyAttr.IN_PORT: 0xFFFFFFFF,
        KeyAttr.ETHERNET: Eth(b"\xff" * 6, b"\xff" * 6),
    }
)
WEAVE_MASK_ATTRS = (
    "2c00 1000 | 0c00 0000 | ffffffffffffffff | 0800 0100 | ffffffff | 0800 0200 | ffffffff"
    "   | 0500 0400 | ff 000000 | 0400 0500"
    " | 0800 0300 | ffffffff"
    " | 1000 0400 | ffffffffffff | ffffffffffff"
)
WEAVE_ACTIONS: list[Action] = [
    Set(KeyAttr.TUNNEL, Tunnel(tun_id=0x00201802, ipv4_dst=0xC6336403, ttl=64, df=True)),
    Output(3),
]
WEAVE_ACTION_ATTRS = (
    "2800 0300"  # OVS_ACTION_ATTR_SET: one nested key attribute
    "   | 2400 1000"  # OVS_KEY_ATTR_TUNNEL
    "     | 0c00 0000 | 0000000000201802"  # ID
    "     | 0800 0200 | c6336403"  # IPV4_DST
    "     | 0500 0400 | 40 000000"  # TTL
    "     | 0400 0500"  # DONT_FRAGMENT
    " | 0800 0100 | 03000000"  # OVS_ACTION_ATTR_OUTPUT: u32 port
)


def test_flow_request_golden() -> None:
    flow = Flow(WEAVE_KEY, WEAVE_MASK, list(WEAVE_ACTIONS), ufid=UFID)
    # Order: UFID, KEY, MASK, ACTIONS (as Open vSwitch's dpif-netlink sends them).
    assert encode_flow_attrs(flow) == h(
        UFID_ATTR
        + " | 4800 0100 | "
        + WEAVE_KEY_ATTRS  # OVS_FLOW_ATTR_KEY: 4 + 44 + 8 + 16
        + " | 4800 0700 | "
        + WEAVE_MASK_ATTRS  # OVS_FLOW_ATTR_MASK
        + " | 3400 0200 | "
        + WEAVE_ACTION_ATTRS  # OVS_FLOW_ATTR_ACTIONS: 4 + 40 + 8
    )


def test_flow_request_flags_and_clear() -> None:
    flow = Flow(FlowKey({KeyAttr.IN_PORT: 2}), None, [], ufid=UFID)
    assert encode_flow_attrs(
        flow, ufid_flags=UfidFlag.OMIT_KEY | UfidFlag.OMIT_ACTIONS, clear=True
    ) == h(
        UFID_ATTR
        + " | 0800 0a00 | 05000000"  # OVS_FLOW_ATTR_UFID_FLAGS: OMIT_KEY | OMIT_ACTIONS
        + " | 0c00 0100 | 0800 0300 | 02000000"  # KEY: in_port(2); no MASK: exact match
        + " | 0400 0200"  # ACTIONS with no action: drop
        + " | 0400 0600"  # OVS_FLOW_ATTR_CLEAR
    )


def test_flow_selectors_golden() -> None:
    # A get/del by UFID alone carries no key; without a UFID an empty key is
    # still sent (a flush names no key at all, and is a different request).
    assert encode_flow_attrs(Flow(FlowKey(), ufid=UFID), actions=False) == h(UFID_ATTR)
    assert encode_flow_attrs(Flow(FlowKey()), actions=False) == h("0400 0100")
    assert encode_flow_attrs(Flow(FlowKey({KeyAttr.IN_PORT: 1})), actions=False) == h(
        "0c00 0100 | 0800 0300 | 01000000"
    )


DUMP_ENTRY = (
    # One flow as ovs_flow_cmd_fill_info() writes it: identifier, key, mask,
    # then stats (USED before STATS, then TCP_FLAGS), then actions.
    UFID_ATTR
    + " | 4800 0100 | "
    + WEAVE_KEY_ATTRS
    + " | 4800 0700 | "
    + WEAVE_MASK_ATTRS
    + " | 0c00 0500 | 15cd5b0700000000"  # OVS_FLOW_ATTR_USED: u64 123456789 ms
    + " | 1400 0300 | 2a00000000000000 | 10a4000000000000"  # ovs_flow_stats: 42 pkts, 42000 B
    + " | 0500 0400 | 12 000000"  # OVS_FLOW_ATTR_TCP_FLAGS: u8 SYN|ACK
    + " | 3400 0200 | "
    + WEAVE_ACTION_ATTRS
)


def _weave_dump_flow() -> Flow:
    return Flow(
        WEAVE_KEY,
        WEAVE_MASK,
        list(WEAVE_ACTIONS),
        ufid=UFID,
        packets=42,
        bytes=42000,
        used=123456789,
        tcp_flags=0x12,
    )


def test_flow_dump_entry_golden() -> None:
    flow = decode_flow_attrs(h(DUMP_ENTRY))
    assert flow == _weave_dump_flow()
    assert list(flow.key) == list(WEAVE_KEY)
    assert type(flow.actions[0]) is Set and type(flow.actions[1]) is Output


def test_flow_dump_message_golden() -> None:
    # The whole datagram of a dump: nlmsghdr (NLM_F_MULTI) + genlmsghdr
    # (OVS_FLOW_CMD_GET, OVS_FLOW_VERSION 1) + ovs_header + the entry above.
    # nlmsg_len = 16 + 8 + 256 (UFID 20, KEY 72, MASK 72, USED 12, STATS 20,
    # TCP_FLAGS 8, ACTIONS 52) = 280.
    wire = (
        h("18010000 | 1b00 | 0200 | 05000000 | 39300000")  # type 0x1b, NLM_F_MULTI, seq 5
        + h("03 | 01 | 0000 | 07000000")  # genlmsghdr cmd 3 version 1; dp_ifindex 7
        + h(DUMP_ENTRY)
    )
    (msg,) = decode_messages(wire)
    cmd, dp_ifindex, payload = split_odp(msg.payload)
    assert (msg.type, msg.flags, msg.seq, msg.pid, cmd, dp_ifindex) == (0x1B, 2, 5, 12345, 3, 7)
    assert decode_flow_attrs(payload) == _weave_dump_flow()


def test_flow_dump_entry_pads_and_unknowns() -> None:
    # OVS_FLOW_ATTR_PAD (11) where nla_put_64bit aligns a u64, a PROBE flag and
    # an attribute from the future are all passed over; no MASK means exact match.
    wire = h(
        "0c00 0100 | 0800 0300 | 01000000"
        " | 0400 0b00"  # PAD
        " | 0c00 0500 | 0100000000000000"  # USED 1
        " | 0400 0800"  # PROBE
        " | 0800 3f00 | 00000000"  # type 63
        " | 0400 0200"  # ACTIONS: none
    )
    assert decode_flow_attrs(wire) == Flow(FlowKey({KeyAttr.IN_PORT: 1}), used=1)


def test_flow_omitted_key() -> None:
    # With OVS_UFID_F_OMIT_KEY the kernel sends the UFID and no key.
    flow = decode_flow_attrs(h(UFID_ATTR))
    assert flow == Flow(FlowKey(), ufid=UFID)


@pytest.mark.parametrize(
    "bad",
    [
        h("1000 0300") + bytes(12),  # ovs_flow_stats cut to 12 bytes
        h("0800 0500 | 01000000"),  # USED as a u32
        h("0600 0400 | 1200 0000"),  # TCP_FLAGS as a u16
        h("0800 0100 | 0800 0300"),  # KEY holding a truncated attribute
        h("0c00 0700 | 0800 0300 | 0100"),  # MASK whose nla_len runs past the end
        h("0800 0200 | 0800 0100"),  # ACTIONS holding a truncated output
    ],
)
def test_flow_malformed(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_flow_attrs(bad)


HEAVY_ACTIONS: list[Action] = [
    Ct(commit=True, zone=5),
    SetMasked(
        KeyAttr.ETHERNET,
        Eth(bytes.fromhex("020000000001"), bytes.fromhex("020000000002")),
        Eth(b"\xff" * 6, b"\xff" * 6),
    ),
    PushVlan(0x8100, 0x100A),
    Output(2),
    Userspace(1234, userdata=bytes.fromhex("0102030405060708")),
]
HEAVY_ACTION_ATTRS = (
    "1000 0c00"  # OVS_ACTION_ATTR_CT
    "   | 0400 0100"  # OVS_CT_ATTR_COMMIT
    "   | 0600 0200 | 0500 0000"  # OVS_CT_ATTR_ZONE: u16 host order
    " | 2000 0b00"  # OVS_ACTION_ATTR_SET_MASKED: one key attribute, value then mask
    "   | 1c00 0400 | 020000000001 020000000002 | ffffffffffff ffffffffffff"
    " | 0800 0400 | 8100 | 100a"  # struct ovs_action_push_vlan { __be16 tpid, tci; }
    " | 0800 0100 | 02000000"  # OUTPUT
    " | 1800 0200"  # OVS_ACTION_ATTR_USERSPACE
    "   | 0800 0100 | d2040000"  # OVS_USERSPACE_ATTR_PID u32 1234
    "   | 0c00 0200 | 0102030405060708"  # OVS_USERSPACE_ATTR_USERDATA
)


def test_heavy_actions_golden() -> None:
    # ACTIONS: 4 + CT 16 + SET_MASKED 32 + PUSH_VLAN 8 + OUTPUT 8 + USERSPACE 24 = 92
    flow = Flow(FlowKey({KeyAttr.RECIRC_ID: 0}), None, list(HEAVY_ACTIONS))
    wire = h("0c00 0100 | 0800 1400 | 00000000 | 5c00 0200 | " + HEAVY_ACTION_ATTRS)
    assert encode_flow_attrs(flow) == wire
    assert decode_flow_attrs(wire) == flow


# --- packets (ovs_packet family) --------------------------------------------------
#
# enum ovs_packet_attr: PACKET 1, KEY 2, ACTIONS 3, USERDATA 4, EGRESS_TUN_KEY 5
# (nested OVS_TUNNEL_KEY_ATTR_*), PROBE 8, MRU 9 (u16), LEN 10 (u32), HASH 11
# (u64), UPCALL_PID 12.

FRAME = bytes.fromhex("66778899aabb 001122334455 0800")  # a 14-byte Ethernet header
FRAME_ATTR = "1200 0100 | 66778899aabb 001122334455 0800 | 0000"  # 14 bytes + 2 pad
UPCALL_KEY_ATTR = (
    "1c00 0200"  # OVS_PACKET_ATTR_KEY
    "   | 0800 0300 | 01000000"  # in_port 1
    "   | 1000 0400 | 001122334455 66778899aabb"  # eth
)
UPCALL_KEY = FlowKey(
    {
        KeyAttr.IN_PORT: 1,
        KeyAttr.ETHERNET: Eth(bytes.fromhex("001122334455"), bytes.fromhex("66778899aabb")),
    }
)


def test_miss_upcall_golden() -> None:
    hash_attr = " | 0c00 0b00 | efbeadde00000000"  # OVS_PACKET_ATTR_HASH: u64
    upcall = decode_upcall(PacketCmd.MISS, 7, h(FRAME_ATTR + " | " + UPCALL_KEY_ATTR + hash_attr))
    assert upcall == Upcall(PacketCmd.MISS, 7, UPCALL_KEY, FRAME, hash=0xDEADBEEF)
    assert upcall.in_port == 1


def test_action_upcall_golden() -> None:
    wire = h(
        FRAME_ATTR
        + " | "
        + UPCALL_KEY_ATTR
        + " | 0c00 0400 | 0102030405060708"  # USERDATA, verbatim from the action
        + " | 1000 0500 | 0c00 0000 | 0000000000000064"  # EGRESS_TUN_KEY { ID be64 100 }
        + " | 0c00 0300 | 0800 0100 | 02000000"  # ACTIONS: output(2)
        + " | 0600 0900 | dc05 0000"  # MRU u16 1500
        + " | 0800 0a00 | 28230000"  # LEN u32 9000
    )
    assert decode_upcall(PacketCmd.ACTION, 3, wire) == Upcall(
        PacketCmd.ACTION,
        3,
        UPCALL_KEY,
        FRAME,
        userdata=bytes.fromhex("0102030405060708"),
        egress_tun_key=Tunnel(tun_id=100),
        actions=[Output(2)],
        mru=1500,
        length=9000,
    )


@pytest.mark.parametrize(
    ("cmd", "bad"),
    [
        (PacketCmd.MISS, h(UPCALL_KEY_ATTR)),  # no packet
        (PacketCmd.MISS, h(FRAME_ATTR)),  # no key
        (0, h(FRAME_ATTR + UPCALL_KEY_ATTR)),  # OVS_PACKET_CMD_UNSPEC
        (9, h(FRAME_ATTR + UPCALL_KEY_ATTR)),  # no such command
        (PacketCmd.MISS, h(FRAME_ATTR + UPCALL_KEY_ATTR + "0800 0b00 | 01000000")),  # u32 hash
        (PacketCmd.MISS, h(FRAME_ATTR + UPCALL_KEY_ATTR + "0800 0900 | dc050000")),  # u32 mru
        (PacketCmd.MISS, h(FRAME_ATTR + UPCALL_KEY_ATTR + "0600 0a00 | 2823 0000")),  # u16 len
        (PacketCmd.MISS, h(FRAME_ATTR + UPCALL_KEY_ATTR + "0800 0500 | 0800 0000")),  # tun key
    ],
)
def test_upcall_malformed(cmd: int, bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_upcall(cmd, 1, bad)


def test_execute_golden() -> None:
    request = Execute(
        FRAME,
        FlowKey({KeyAttr.IN_PORT: 1}),
        [Output(2)],
        mru=1500,
        hash=0x0102030405060708,
        probe=True,
    )
    assert encode_execute(request) == h(
        FRAME_ATTR  # PACKET
        + " | 0c00 0200 | 0800 0300 | 01000000"  # KEY: in_port(1)
        + " | 0c00 0300 | 0800 0100 | 02000000"  # ACTIONS: output(2)
        + " | 0600 0900 | dc05 | 0000"  # MRU u16
        + " | 0c00 0b00 | 0807060504030201"  # HASH u64
        + " | 0400 0800"  # PROBE flag
    )
    # The minimal execute: no actions at all is still an (empty) ACTIONS attribute.
    assert encode_execute(Execute(b"", FlowKey())) == h("0400 0100 | 0400 0200 | 0400 0300")

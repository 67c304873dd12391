"""Golden byte vectors and the binary codec of flow actions (``OVS_ACTION_ATTR_*``).

Each expected byte string is written out by hand from the uAPI struct or
attribute named in the comment next to it (``include/uapi/linux/
openvswitch.h``; OVS's copy is /work/ref/openvswitch.h), never computed with
the codec or with ``struct``.

Reading the vectors: every attribute is ``struct nlattr { __u16 nla_len;
__u16 nla_type; }`` in host order (little-endian here: the module is skipped
on big-endian hosts), ``nla_len`` counts the 4-byte header but not the zero
padding that follows the payload up to a 4-byte boundary.  ``__be*`` fields
are network order; ``__u16``/``__u32`` without ``be`` are host order.

For each vector: ``encode_actions([action]) == bytes`` and
``decode_actions(bytes) == [action]``.
"""

from __future__ import annotations

import contextlib
import random
import struct
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.odp.actions import (
    MAX_NESTING,
    Action,
    AddMpls,
    CheckPktLen,
    Clone,
    ControllerCookie,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    FlowSampleCookie,
    Hash,
    IpfixCookie,
    LbOutput,
    Meter,
    Nat,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    SampleDirection,
    Set,
    SetMasked,
    SflowCookie,
    SlowPathCookie,
    Trunc,
    TunnelPop,
    TunnelPush,
    UnknownAction,
    Userspace,
    decode_actions,
    decode_user_action_cookie,
    encode_actions,
    encode_user_action_cookie,
)
from odpctl.odp.keys import Ipv4, Nsh, NshBase, Tunnel
from odpctl.odp.uapi import ActionAttr, HashAlg, KeyAttr

from .strategies_actions import binary_actions

pytestmark = pytest.mark.skipif(
    sys.byteorder != "little", reason="vectors spell host-order fields little-endian"
)


def h(text: str) -> bytes:
    """Hex with free whitespace; ``|`` may separate fields for readability."""
    return bytes.fromhex(text.replace("|", " "))


MAC_A = bytes.fromhex("001122334455")
MAC_B = bytes.fromhex("66778899aabb")
LABEL_V = bytes(range(1, 17))
LABEL_M = b"\xff" * 8 + b"\x0f" * 8

VECTORS: list[tuple[str, Action, bytes]] = [
    # OVS_ACTION_ATTR_OUTPUT (1): u32 port number
    ("output", Output(1), h("0800 0100 | 01000000")),
    ("output-big", Output(0xFFFFFFFE), h("0800 0100 | feffffff")),
    # OVS_ACTION_ATTR_USERSPACE (2), nested OVS_USERSPACE_ATTR_*:
    #   PID (1) u32, USERDATA (2) bytes, EGRESS_TUN_PORT (3) u32, ACTIONS (4) flag
    (
        "userspace",
        Userspace(6633, h("01020304 00000000"), 10, True),
        h(
            "2400 0200"
            "| 0800 0100 | e9190000"  # pid 6633 = 0x19e9
            "| 0c00 0200 | 01020304 00000000"  # userdata
            "| 0800 0300 | 0a000000"  # egress tunnel port 10
            "| 0400 0400"  # actions flag
        ),
    ),
    ("userspace-pid-only", Userspace(1), h("0c00 0200 | 0800 0100 | 01000000")),
    (
        "userspace-odd-userdata",
        Userspace(1, h("aabbcc")),
        # userdata of 3 bytes: nla_len 7, one byte of padding
        h("1400 0200 | 0800 0100 | 01000000 | 0700 0200 | aabbcc 00"),
    ),
    # OVS_ACTION_ATTR_SET (3): exactly one nested OVS_KEY_ATTR_*
    #   in_port: OVS_KEY_ATTR_IN_PORT (3), u32
    ("set-in-port", Set(KeyAttr.IN_PORT, 2), h("0c00 0300 | 0800 0300 | 02000000")),
    (
        "set-tunnel",
        Set(KeyAttr.TUNNEL, Tunnel(tun_id=0x1C7, ipv4_dst=0x0A000002, ttl=64, df=True)),
        h(
            "2800 0300"
            "| 2400 1000"  # OVS_KEY_ATTR_TUNNEL (16), nested OVS_TUNNEL_KEY_ATTR_*
            "| 0c00 0000 | 00000000 000001c7"  # ID (0): __be64 tun_id
            "| 0800 0200 | 0a000002"  # IPV4_DST (2): __be32
            "| 0500 0400 | 40 000000"  # TTL (4): u8, 3 bytes padding
            "| 0400 0500"  # DONT_FRAGMENT (5): flag
        ),
    ),
    # OVS_ACTION_ATTR_SET_MASKED (11): one OVS_KEY_ATTR_* holding value then mask
    #   struct ovs_key_ipv4 { __be32 src, dst; __u8 proto, tos, ttl, frag; }
    (
        "set-masked-ipv4-ttl",
        SetMasked(KeyAttr.IPV4, Ipv4(0, 0, 0, 0, 63, 0), Ipv4(0, 0, 0, 0, 0xFF, 0)),
        h(
            "2000 0b00"
            "| 1c00 0700"  # OVS_KEY_ATTR_IPV4 (7), 24 bytes: value, mask
            "| 00000000 00000000 00 00 3f 00"
            "| 00000000 00000000 00 00 ff 00"
        ),
    ),
    #   NSH is nested: each OVS_NSH_KEY_ATTR_* holds its value then its mask
    #   struct ovs_nsh_key_base { __u8 flags, ttl, mdtype, np; __be32 path_hdr; }
    #   struct ovs_nsh_key_md1 { __be32 context[4]; }
    (
        "set-masked-nsh",
        SetMasked(
            KeyAttr.NSH,
            Nsh(base=NshBase(1, 2, 1, 3, 0x000100FF), md1=(5, 0, 0, 0)),
            Nsh(base=NshBase(0xFF, 0xFF, 0, 0, 0xFFFFFFFF), md1=(0xFF, 0, 0, 0)),
        ),
        h(
            "4000 0b00"
            "| 3c00 1c00"  # OVS_KEY_ATTR_NSH (28)
            "| 1400 0100 | 01 02 01 03 000100ff | ff ff 00 00 ffffffff"  # BASE (1)
            "| 2400 0200 | 00000005 00000000 00000000 00000000"  # MD1 (2) value
            "|           | 000000ff 00000000 00000000 00000000"  # ... mask
        ),
    ),
    # OVS_ACTION_ATTR_PUSH_VLAN (4): struct ovs_action_push_vlan
    #   { __be16 vlan_tpid; __be16 vlan_tci; }
    ("push-vlan", PushVlan(0x8100, 0x100C), h("0800 0400 | 8100 100c")),
    ("push-vlan-qinq", PushVlan(0x88A8, 0xB00D), h("0800 0400 | 88a8 b00d")),
    # OVS_ACTION_ATTR_POP_VLAN (5): no argument
    ("pop-vlan", PopVlan(), h("0400 0500")),
    # OVS_ACTION_ATTR_SAMPLE (6), nested OVS_SAMPLE_ATTR_*:
    #   PROBABILITY (1) u32, ACTIONS (2) nested actions
    (
        "sample",
        Sample(0x80000000, (Output(2),)),
        h("1800 0600 | 0800 0100 | 00000080 | 0c00 0200 | 0800 0100 02000000"),
    ),
    ("sample-empty", Sample(0), h("1000 0600 | 0800 0100 | 00000000 | 0400 0200")),
    # OVS_ACTION_ATTR_RECIRC (7): u32 recirc_id
    ("recirc", Recirc(0x1234), h("0800 0700 | 34120000")),
    # OVS_ACTION_ATTR_HASH (8): struct ovs_action_hash { __u32 hash_alg; __u32 hash_basis; }
    ("hash", Hash(HashAlg.SYM_L4, 0x01020304), h("0c00 0800 | 01000000 | 04030201")),
    # OVS_ACTION_ATTR_PUSH_MPLS (9): struct ovs_action_push_mpls
    #   { __be32 mpls_lse; __be16 mpls_ethertype; } -- sizeof 8, 2 bytes of tail padding
    #   lse: label 100 << 12 | tc 0 << 9 | bos 1 << 8 | ttl 64 = 0x00064140
    ("push-mpls", PushMpls(0x00064140, 0x8847), h("0c00 0900 | 00064140 8847 0000")),
    # OVS_ACTION_ATTR_POP_MPLS (10): __be16 ethertype
    ("pop-mpls", PopMpls(0x0800), h("0600 0a00 | 0800 0000")),
    # OVS_ACTION_ATTR_CT (12), nested OVS_CT_ATTR_*
    (
        "ct",
        Ct(
            commit=True,
            zone=5,
            mark=(0xA0A0A0A0, 0xFEFEFEFE),
            labels=(LABEL_V, LABEL_M),
            helper="ftp",
            nat=Nat(
                src=True,
                ip_min=h("0a0000f0"),
                proto_min=32768,
                proto_max=65535,
                proto_random=True,
            ),
        ),
        h(
            "6c00 0c00"
            "| 0400 0100"  # COMMIT (1): flag
            "| 0600 0200 | 0500 0000"  # ZONE (2): u16, 2 bytes padding
            "| 0c00 0300 | a0a0a0a0 fefefefe"  # MARK (3): u32 value, u32 mask
            "| 2400 0400"  # LABELS (4): struct ovs_key_ct_labels value, then mask
            "|   0102030405060708090a0b0c0d0e0f10 ffffffffffffffff0f0f0f0f0f0f0f0f"
            "| 0800 0500 | 667470 00"  # HELPER (5): "ftp" NUL-terminated
            "| 2400 0600"  # NAT (6), nested OVS_NAT_ATTR_*
            "|   0400 0100"  # SRC (1): flag
            "|   0800 0300 | 0a0000f0"  # IP_MIN (3): the address, network order
            "|   0600 0500 | 0080 0000"  # PROTO_MIN (5): u16 32768
            "|   0600 0600 | ffff 0000"  # PROTO_MAX (6): u16 65535
            "|   0400 0900"  # PROTO_RANDOM (9): flag
        ),
    ),
    (
        "ct-force-eventmask-timeout",
        Ct(force_commit=True, eventmask=0x1F, timeout="tp1", nat=Nat()),
        h(
            "1c00 0c00"
            "| 0400 0700"  # FORCE_COMMIT (7): flag
            "| 0800 0800 | 1f000000"  # EVENTMASK (8): u32
            "| 0800 0900 | 747031 00"  # TIMEOUT (9): "tp1" NUL-terminated
            "| 0400 0600"  # NAT (6), empty
        ),
    ),
    (
        "ct-nat-ipv6-range",
        Ct(
            nat=Nat(
                dst=True,
                ip_min=h("fe800000000000000000000000000001"),
                ip_max=h("fe800000000000000000000000000009"),
                persistent=True,
                proto_hash=True,
            )
        ),
        h(
            "3c00 0c00"
            "| 3800 0600"
            "|   0400 0200"  # DST (2): flag
            "|   1400 0300 | fe800000000000000000000000000001"  # IP_MIN (3): in6_addr
            "|   1400 0400 | fe800000000000000000000000000009"  # IP_MAX (4): in6_addr
            "|   0400 0700"  # PERSISTENT (7)
            "|   0400 0800"  # PROTO_HASH (8)
        ),
    ),
    ("ct-bare", Ct(), h("0400 0c00")),
    # OVS_ACTION_ATTR_TRUNC (13): struct ovs_action_trunc { uint32_t max_len; }
    ("trunc", Trunc(100), h("0800 0d00 | 64000000")),
    # OVS_ACTION_ATTR_PUSH_ETH (14): struct ovs_action_push_eth
    #   { struct ovs_key_ethernet { __u8 eth_src[6]; __u8 eth_dst[6]; } }
    ("push-eth", PushEth(MAC_A, MAC_B), h("1000 0e00 | 001122334455 | 66778899aabb")),
    # OVS_ACTION_ATTR_POP_ETH (15): no argument
    ("pop-eth", PopEth(), h("0400 0f00")),
    # OVS_ACTION_ATTR_CT_CLEAR (16): no argument
    ("ct-clear", CtClear(), h("0400 1000")),
    # OVS_ACTION_ATTR_PUSH_NSH (17): one nested OVS_KEY_ATTR_NSH
    (
        "push-nsh",
        PushNsh(Nsh(base=NshBase(0, 63, 1, 3, 0x000001FF), md1=(1, 2, 3, 4))),
        h(
            "2800 1100"
            "| 2400 1c00"  # OVS_KEY_ATTR_NSH (28)
            "| 0c00 0100 | 00 3f 01 03 000001ff"  # BASE: flags, ttl, mdtype, np, path_hdr
            "| 1400 0200 | 00000001 00000002 00000003 00000004"  # MD1: __be32 context[4]
        ),
    ),
    (
        "push-nsh-md2",
        PushNsh(Nsh(base=NshBase(0, 63, 2, 3, 0x000001FF), md2=h("01020304"))),
        h("1c00 1100 | 1800 1c00 | 0c00 0100 | 00 3f 02 03 000001ff | 0800 0300 | 01020304"),
    ),
    # OVS_ACTION_ATTR_POP_NSH (18): no argument
    ("pop-nsh", PopNsh(), h("0400 1200")),
    # OVS_ACTION_ATTR_METER (19): u32 meter id
    ("meter", Meter(7), h("0800 1300 | 07000000")),
    # OVS_ACTION_ATTR_CLONE (20): nested actions
    ("clone", Clone((Output(1),)), h("0c00 1400 | 0800 0100 01000000")),
    ("clone-empty", Clone(), h("0400 1400")),
    # OVS_ACTION_ATTR_CHECK_PKT_LEN (21), nested OVS_CHECK_PKT_LEN_ATTR_*:
    #   PKT_LEN (1) u16, ACTIONS_IF_GREATER (2), ACTIONS_IF_LESS_EQUAL (3)
    (
        "check-pkt-len",
        CheckPktLen(200, (Output(4),), ()),
        h(
            "1c00 1500"
            "| 0600 0100 | c800 0000"  # PKT_LEN: u16 200
            "| 0c00 0200 | 0800 0100 04000000"  # greater: output(4)
            "| 0400 0300"  # less or equal: none
        ),
    ),
    # OVS_ACTION_ATTR_ADD_MPLS (22): struct ovs_action_add_mpls
    #   { __be32 mpls_lse; __be16 mpls_ethertype; __u16 tun_flags; }
    ("add-mpls", AddMpls(0x000C8F40, 0x8847, 1), h("0c00 1600 | 000c8f40 | 8847 | 0100")),
    # OVS_ACTION_ATTR_DEC_TTL (23), nested OVS_DEC_TTL_ATTR_ACTION (1): nested actions
    ("dec-ttl", DecTtl((Output(1),)), h("1000 1700 | 0c00 0100 | 0800 0100 01000000")),
    # OVS_ACTION_ATTR_DROP (24): u32 xlate_error
    ("drop", Drop(0), h("0800 1800 | 00000000")),
    ("drop-reason", Drop(5), h("0800 1800 | 05000000")),
    # OVS_ACTION_ATTR_PSAMPLE (25), nested OVS_PSAMPLE_ATTR_*: GROUP (1) u32,
    #   COOKIE (2) bytes; Open vSwitch sets NLA_F_NESTED (0x8000) on this one
    (
        "psample",
        Psample(12, h("f1020304")),
        h("1400 1980 | 0800 0100 | 0c000000 | 0800 0200 | f1020304"),
    ),
    ("psample-no-cookie", Psample(12), h("0c00 1980 | 0800 0100 | 0c000000")),
    # OVS_ACTION_ATTR_TUNNEL_PUSH (26): struct ovs_action_push_tnl { odp_port_t
    #   tnl_port; odp_port_t out_port; uint32_t header_len; uint32_t tnl_type;
    #   header bytes } (header_len bytes of header are sent, not the whole 512)
    (
        "tunnel-push",
        TunnelPush(4, 1, 3, h("deadbeef")),
        h("1800 1a00 | 04000000 | 01000000 | 04000000 | 03000000 | deadbeef"),
    ),
    # OVS_ACTION_ATTR_TUNNEL_POP (27): u32 port
    ("tunnel-pop", TunnelPop(4), h("0800 1b00 | 04000000")),
    # OVS_ACTION_ATTR_LB_OUTPUT (28): u32 bond id
    ("lb-output", LbOutput(1), h("0800 1c00 | 01000000")),
    # A type this codec does not know: kept raw
    ("unknown", UnknownAction(99, h("010203")), h("0700 6300 | 010203 00")),
    ("unknown-empty", UnknownAction(0x3FFF, b""), h("0400 ff3f")),
]


@pytest.mark.parametrize(
    ("action", "wire"), [(a, w) for _, a, w in VECTORS], ids=[i for i, _, _ in VECTORS]
)
def test_encode_golden(action: Action, wire: bytes) -> None:
    assert encode_actions([action]) == wire


@pytest.mark.parametrize(
    ("action", "wire"), [(a, w) for _, a, w in VECTORS], ids=[i for i, _, _ in VECTORS]
)
def test_decode_golden(action: Action, wire: bytes) -> None:
    assert decode_actions(wire) == [action]


def test_every_action_type_has_a_vector() -> None:
    covered = {type(a) for _, a, _ in VECTORS}
    from odpctl.odp.actions import ACTION_TYPES

    assert covered == set(ACTION_TYPES)
    kinds = {struct.unpack_from("=H", w, 2)[0] & 0x3FFF for _, _, w in VECTORS}
    assert {int(k) for k in ActionAttr} <= kinds


def test_list_of_actions_concatenates() -> None:
    wire = encode_actions([Output(1), Output(2), Output(3)])
    assert wire == h("0800 0100 01000000 | 0800 0100 02000000 | 0800 0100 03000000")
    assert decode_actions(wire) == [Output(1), Output(2), Output(3)]
    assert encode_actions([]) == b""
    assert decode_actions(b"") == []


def test_decode_tolerates_kernel_forms() -> None:
    # The kernel dumps check_pkt_len with less-or-equal first, omits the last
    # attribute's padding, and the nested flag may be set or not.
    wire = h("1c00 1500 | 0600 0100 | c800 0000 | 0400 0300 | 0c00 0200 | 0800 0100 04000000")
    assert decode_actions(wire) == [CheckPktLen(200, (Output(4),), ())]
    assert decode_actions(h("0600 0a00 | 0800")) == [PopMpls(0x0800)]
    assert decode_actions(h("0c00 1900 | 0800 0100 | 0c000000")) == [Psample(12)]
    assert decode_actions(h("0c00 1480 | 0800 0100 01000000")) == [Clone((Output(1),))]
    # Unknown nested attributes are skipped, not fatal.
    assert decode_actions(h("1000 0200 | 0800 0100 | 01000000 | 0400 0900")) == [Userspace(1)]


# --- user_action_cookie -------------------------------------------------------------
#
# struct user_action_cookie (lib/odp-util.h), 48 bytes, host order:
#   uint16_t type; [2 bytes padding] ofp_port_t ofp_in_port (u32);
#   struct uuid ofproto_uuid (16 bytes); union { ... } (24 bytes)

_COOKIE_HEAD = "| 0000 | ffff0000 | 00000000000000000000000000000000"

COOKIES = [
    (
        # sflow { ovs_be16 vlan_tci; [2] uint32_t output; }
        SflowCookie(0xF009, 10),
        h("0100 0000 | ffff0000 | " + "00" * 16 + "| f009 0000 | 0a000000 |" + "00" * 16),
    ),
    (
        # slow_path { uint16_t unused; [2] uint32_t reason; }
        SlowPathCookie(1),
        h("0200 0000 | ffff0000 | " + "00" * 16 + "| 0000 0000 | 01000000 |" + "00" * 16),
    ),
    (
        # flow_sample { uint16_t probability; [2] uint32_t collector_set_id,
        # obs_domain_id, obs_point_id; odp_port_t output_odp_port; enum direction; }
        FlowSampleCookie(123, 1234, 2345, 3456, 10, SampleDirection.EGRESS),
        h(
            "0300 0000 | ffff0000 | " + "00" * 16 + "| 7b00 0000 | d2040000 | 29090000"
            "| 800d0000 | 0a000000 | 02000000"
        ),
    ),
    (
        # ipfix { odp_port_t output_odp_port; }
        IpfixCookie(10),
        h("0400 0000 | ffff0000 | " + "00" * 16 + "| 0a000000 |" + "00" * 20),
    ),
    (
        # controller { uint8_t dont_send, continuation; uint16_t reason;
        # uint32_t recirc_id; ovs_32aligned_be64 rule_cookie; uint16_t
        # controller_id, max_len; [4] }
        ControllerCookie(0, 1, 1, 4444, 0x5555, 0, 65535),
        h(
            "0500 0000 | ffff0000 | " + "00" * 16 + "| 00 01 0100 | 5c110000"
            "| 0000000000005555 | 0000 ffff | 00000000"
        ),
    ),
]


@pytest.mark.parametrize(("cookie", "wire"), COOKIES, ids=lambda c: type(c).__name__)
def test_user_action_cookie_layout(cookie: object, wire: bytes) -> None:
    assert len(wire) == 48
    assert encode_user_action_cookie(cookie) == wire  # type: ignore[arg-type]
    assert decode_user_action_cookie(wire) == cookie


def test_user_action_cookie_needs_size_and_type() -> None:
    assert decode_user_action_cookie(bytes(47)) is None
    assert decode_user_action_cookie(bytes(48)) is None  # USER_ACTION_COOKIE_UNSPEC
    assert decode_user_action_cookie(b"\x09" + bytes(47)) is None
    with pytest.raises(ValueError, match="bad user action cookie SflowCookie"):
        encode_user_action_cookie(SflowCookie(0x10000, 1))


# --- malformed input ------------------------------------------------------------------

MALFORMED = [
    ("output-short", h("0700 0100 | 010000 00")),
    ("output-long", h("0c00 0100 | 01000000 00000000")),
    ("pop-vlan-with-payload", h("0800 0500 | 00000000")),
    ("push-vlan-short", h("0600 0400 | 8100 0000")),
    ("hash-short", h("0800 0800 | 00000000")),
    ("set-empty", h("0400 0300")),
    ("set-two-keys", h("1400 0300 | 0800 0300 02000000 | 0800 0f00 01000000")),
    ("set-key-overruns", h("0c00 0300 | 0c00 0300 02000000")),
    ("set-masked-odd", h("0c00 0b00 | 0700 0f00 010203 00")),
    ("set-bad-key-length", h("0c00 0300 | 0700 0300 020000 00")),
    ("userspace-no-pid", h("0c00 0200 | 0800 0300 | 0a000000")),
    ("userspace-pid-short", h("0c00 0200 | 0600 0100 | 0100 0000")),
    ("sample-no-probability", h("0800 0600 | 0400 0200")),
    ("sample-bad-nested", h("1000 0600 | 0800 0100 00000000 | 0400 0200 | 0300 0100")),
    ("ct-helper-no-nul", h("0c00 0c00 | 0700 0500 | 667470 00")),
    ("ct-labels-short", h("0c00 0c00 | 0800 0400 | 00000000")),
    ("ct-mark-short", h("0c00 0c00 | 0800 0300 | 00000000")),
    ("nat-address-long", h("1c00 0c00 | 1800 0600 | 1400 0300 | " + "00" * 16) + h("ffff")),
    ("nat-address-short", h("0c00 0c00 | 0800 0600 | 0600 0300 | 0a00 0000")),
    ("push-nsh-not-nsh", h("0c00 1100 | 0800 0300 | 02000000")),
    ("check-pkt-len-no-length", h("0800 1500 | 0400 0200")),
    ("psample-no-group", h("0c00 1980 | 0800 0200 | 01020304")),
    ("tunnel-push-short", h("0c00 1a00 | 04000000 01000000")),
    ("tunnel-push-len-lies", h("1800 1a00 | 04000000 01000000 05000000 03000000 | deadbeef")),
    ("attr-len-below-header", h("0200 0100")),
    ("attr-len-past-end", h("0c00 0100 | 01000000")),
    ("stray-bytes", h("0800 0100 | 01000000 | 0100")),
]


@pytest.mark.parametrize("wire", [w for _, w in MALFORMED], ids=[i for i, _ in MALFORMED])
def test_malformed_raises_decode_error(wire: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_actions(wire)


def _clone_chain(depth: int) -> bytes:
    wire = b""
    for _ in range(depth):
        wire = struct.pack("=HH", 4 + len(wire), ActionAttr.CLONE) + wire
    return wire


def test_nesting_limit() -> None:
    assert decode_actions(_clone_chain(MAX_NESTING))  # the limit itself is fine
    with pytest.raises(DecodeError, match="nested"):
        decode_actions(_clone_chain(MAX_NESTING + 1))
    # Deeper than the recursion limit would allow: still only DecodeError.
    deep = b""
    for _ in range(5000):
        deep = struct.pack("=HH", (4 + len(deep)) & 0xFFFF, ActionAttr.CLONE) + deep
    with pytest.raises(DecodeError):
        decode_actions(deep)


def _all_golden() -> bytes:
    return b"".join(w for _, _, w in VECTORS)


def test_truncated_at_every_length() -> None:
    wire = _all_golden()
    for cut in range(len(wire)):
        with contextlib.suppress(DecodeError):
            decode_actions(wire[:cut])


def test_seeded_mutations() -> None:
    rnd = random.Random(20240601)
    seeds = [w for _, _, w in VECTORS] + [_all_golden()]
    for _ in range(20000):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            if not data:
                break
            at = rnd.randrange(len(data))
            op = rnd.randrange(4)
            if op == 0:
                data[at] = rnd.randrange(256)
            elif op == 1:
                del data[at : at + rnd.randint(1, 8)]
            elif op == 2:
                data[at:at] = rnd.randbytes(rnd.randint(1, 8))
            elif at + 2 <= len(data):  # a lying length field
                struct.pack_into("=H", data, at & ~3, rnd.choice([0, 1, 3, 4, 5, 0xFFFF]))
        with contextlib.suppress(DecodeError):
            decode_actions(bytes(data))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_actions(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(binary_actions())
def test_binary_round_trip(actions: list[Action]) -> None:
    wire = encode_actions(actions)
    assert decode_actions(wire) == actions
    # Encoding is a function of the model: a second trip gives the same bytes.
    assert encode_actions(decode_actions(wire)) == wire


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(binary_actions(), st.data())
def test_binary_truncation_only_decode_error(actions: list[Action], data: st.DataObject) -> None:
    wire = encode_actions(actions)
    cut = data.draw(st.integers(0, len(wire)))
    with contextlib.suppress(DecodeError):
        decode_actions(wire[:cut])


# --- encoding refuses what does not fit ------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        Output(-1),
        Output(1 << 32),
        PushVlan(0x10000, 0),
        PushEth(b"\x00" * 5, MAC_B),
        Ct(labels=(b"\x00" * 15, b"\xff" * 16)),
        Psample(1, b"\x00" * 17),
        SetMasked(KeyAttr.IPV4, Ipv4(0, 0, 0, 0, 0, 0), (1, 2)),
    ],
    ids=repr,
)
def test_encode_refuses_bad_values(action: Action) -> None:
    # each case says what is wrong in its own words: the type is the contract
    with pytest.raises(ValueError):  # noqa: PT011
        encode_actions([action])


def test_encode_refuses_non_actions() -> None:
    with pytest.raises(ValueError, match="not an action"):
        encode_actions([1])  # type: ignore[list-item]

"""Golden byte vectors for every flow key attribute (``OVS_KEY_ATTR_*``).

Each expected byte string is written out by hand from the kernel uAPI
(``include/uapi/linux/openvswitch.h``; OVS's copy is /work/ref/openvswitch.h),
never computed with the codec or with ``struct``: the struct layout in the
comment next to each vector is what the bytes were derived from.

Reading the vectors: every attribute starts with ``struct nlattr { __u16
nla_len; __u16 nla_type; }`` in host order (little-endian here: the module is
skipped on big-endian hosts), ``nla_len`` counts the 4-byte header but not the
zero padding that follows the payload up to a 4-byte boundary.  ``__be*``
fields are network order; ``__u16``/``__u32`` without ``be`` are host order.

For each vector: ``encode_key(value) == bytes`` and ``decode_key(bytes) ==
value`` with the same Python types and the same attribute order.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from odpctl.errors import DecodeError
from odpctl.odp.keys import (
    _CODECS,
    Arp,
    CtTupleIpv4,
    CtTupleIpv6,
    Eth,
    FlowKey,
    Icmp,
    Ipv4,
    Ipv6,
    Nd,
    NdExtensions,
    Nsh,
    NshBase,
    Ports,
    Tunnel,
    Unknown,
    decode_key,
    decode_tunnel,
    encode_key,
    encode_key_attr,
)
from odpctl.odp.uapi import KeyAttr, TunnelKeyAttr

pytestmark = pytest.mark.skipif(
    sys.byteorder != "little", reason="vectors spell host-order fields little-endian"
)


def h(text: str) -> bytes:
    """Hex with free whitespace; ``|`` may separate fields for readability."""
    return bytes.fromhex(text.replace("|", " "))


MAC_A = bytes.fromhex("001122334455")  # 00:11:22:33:44:55
MAC_B = bytes.fromhex("66778899aabb")  # 66:77:88:99:aa:bb
V6_A = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
V6_B = bytes.fromhex("fe800000000000000000000000000002")  # fe80::2
IP_A = 0xC0000201  # 192.0.2.1
IP_B = 0xC6336402  # 198.51.100.2


# (id, key, golden bytes).  Keys have a single attribute unless the id says
# otherwise, so a failure names the attribute.
KEY_VECTORS: list[tuple[str, FlowKey, bytes]] = [
    # OVS_KEY_ATTR_PRIORITY (2): u32 skb->priority, host order.
    ("priority", FlowKey({KeyAttr.PRIORITY: 0x01020304}), h("0800 0200 | 04030201")),
    # OVS_KEY_ATTR_IN_PORT (3): u32 OVS dp port number, host order.
    ("in_port", FlowKey({KeyAttr.IN_PORT: 5}), h("0800 0300 | 05000000")),
    # OVS_KEY_ATTR_ETHERNET (4):
    # struct ovs_key_ethernet { __u8 eth_src[ETH_ALEN]; __u8 eth_dst[ETH_ALEN]; }
    (
        "ethernet",
        FlowKey({KeyAttr.ETHERNET: Eth(MAC_A, MAC_B)}),
        h("1000 0400 | 001122334455 | 66778899aabb"),
    ),
    # OVS_KEY_ATTR_VLAN (5): be16 VLAN TCI (VLAN_CFI 0x1000 | vid 100), 2 pad bytes.
    ("vlan", FlowKey({KeyAttr.VLAN: 0x1064}), h("0600 0500 | 1064 | 0000")),
    # OVS_KEY_ATTR_ETHERTYPE (6): be16 Ethernet type, 2 pad bytes.
    ("ethertype", FlowKey({KeyAttr.ETHERTYPE: 0x0800}), h("0600 0600 | 0800 | 0000")),
    # OVS_KEY_ATTR_IPV4 (7):
    # struct ovs_key_ipv4 { __be32 ipv4_src, ipv4_dst; __u8 ipv4_proto, ipv4_tos,
    #                       ipv4_ttl, ipv4_frag; }
    (
        "ipv4",
        FlowKey({KeyAttr.IPV4: Ipv4(0x0A000001, 0x0A000002, 6, 0x10, 64, 0)}),
        h("1000 0700 | 0a000001 | 0a000002 | 06 | 10 | 40 | 00"),
    ),
    # OVS_KEY_ATTR_IPV6 (8):
    # struct ovs_key_ipv6 { __be32 ipv6_src[4], ipv6_dst[4]; __be32 ipv6_label;
    #                       __u8 ipv6_proto, ipv6_tclass, ipv6_hlimit, ipv6_frag; }
    (
        "ipv6",
        FlowKey({KeyAttr.IPV6: Ipv6(V6_A, V6_B, 0x12345, 58, 0xB8, 255, 1)}),
        h(
            "2c00 0800 | 20010db8000000000000000000000001 | fe800000000000000000000000000002"
            " | 00012345 | 3a | b8 | ff | 01"
        ),
    ),
    # OVS_KEY_ATTR_TCP (9): struct ovs_key_tcp { __be16 tcp_src, tcp_dst; }
    ("tcp", FlowKey({KeyAttr.TCP: Ports(49152, 80)}), h("0800 0900 | c000 | 0050")),
    # OVS_KEY_ATTR_UDP (10): struct ovs_key_udp { __be16 udp_src, udp_dst; }
    ("udp", FlowKey({KeyAttr.UDP: Ports(4789, 53)}), h("0800 0a00 | 12b5 | 0035")),
    # OVS_KEY_ATTR_ICMP (11): struct ovs_key_icmp { __u8 icmp_type, icmp_code; } + 2 pad
    ("icmp", FlowKey({KeyAttr.ICMP: Icmp(8, 0)}), h("0600 0b00 | 08 | 00 | 0000")),
    # OVS_KEY_ATTR_ICMPV6 (12): struct ovs_key_icmpv6 { __u8 icmpv6_type, icmpv6_code; }
    ("icmpv6", FlowKey({KeyAttr.ICMPV6: Icmp(135, 0)}), h("0600 0c00 | 87 | 00 | 0000")),
    # OVS_KEY_ATTR_ARP (13):
    # struct ovs_key_arp { __be32 arp_sip, arp_tip; __be16 arp_op;
    #                      __u8 arp_sha[ETH_ALEN], arp_tha[ETH_ALEN]; }
    #   22 bytes of fields, sizeof 24 (2 tail pad, 4-byte aligned for the __be32s):
    #   nla_len is 4 + 24, as the kernel's ovs_key_lens[] demands.
    (
        "arp",
        FlowKey({KeyAttr.ARP: Arp(0x0A000001, 0x0A000002, 1, MAC_A, MAC_B)}),
        h("1c00 0d00 | 0a000001 | 0a000002 | 0001 | 001122334455 | 66778899aabb | 0000"),
    ),
    # OVS_KEY_ATTR_ND (14):
    # struct ovs_key_nd { __be32 nd_target[4]; __u8 nd_sll[ETH_ALEN], nd_tll[ETH_ALEN]; }
    (
        "nd",
        FlowKey({KeyAttr.ND: Nd(V6_A, MAC_A, MAC_B)}),
        h("2000 0e00 | 20010db8000000000000000000000001 | 001122334455 | 66778899aabb"),
    ),
    # OVS_KEY_ATTR_SKB_MARK (15): u32 skb mark, host order.
    ("skb_mark", FlowKey({KeyAttr.SKB_MARK: 0xDEADBEEF}), h("0800 0f00 | efbeadde")),
    # OVS_KEY_ATTR_SCTP (17): struct ovs_key_sctp { __be16 sctp_src, sctp_dst; }
    ("sctp", FlowKey({KeyAttr.SCTP: Ports(38412, 2905)}), h("0800 1100 | 960c | 0b59")),
    # OVS_KEY_ATTR_TCP_FLAGS (18): be16 TCP flags (SYN|ACK), 2 pad bytes.
    ("tcp_flags", FlowKey({KeyAttr.TCP_FLAGS: 0x012}), h("0600 1200 | 0012 | 0000")),
    # OVS_KEY_ATTR_DP_HASH (19): u32 hash value, host order.
    ("dp_hash", FlowKey({KeyAttr.DP_HASH: 0x0000ABCD}), h("0800 1300 | cdab0000")),
    # OVS_KEY_ATTR_RECIRC_ID (20): u32 recirc id, host order.
    ("recirc_id", FlowKey({KeyAttr.RECIRC_ID: 7}), h("0800 1400 | 07000000")),
    # OVS_KEY_ATTR_MPLS (21): array of struct ovs_key_mpls { __be32 mpls_lse; }
    # lse = label << 12 | tc << 9 | bos << 8 | ttl: label 100, bos, ttl 64.
    ("mpls_one", FlowKey({KeyAttr.MPLS: (0x00064140,)}), h("0800 1500 | 00064140")),
    # A stack of three LSEs: label 16 tc 5 ttl 255; label 17 ttl 1; label 0xfffff bos ttl 64.
    (
        "mpls_stack",
        FlowKey({KeyAttr.MPLS: (0x00010AFF, 0x00011001, 0xFFFFF140)}),
        h("1000 1500 | 00010aff | 00011001 | fffff140"),
    ),
    # OVS_KEY_ATTR_CT_STATE (22): u32 bitmask of OVS_CS_F_* (TRACKED|ESTABLISHED), host order.
    ("ct_state", FlowKey({KeyAttr.CT_STATE: 0x22}), h("0800 1600 | 22000000")),
    # OVS_KEY_ATTR_CT_ZONE (23): u16 connection tracking zone, host order, 2 pad bytes.
    ("ct_zone", FlowKey({KeyAttr.CT_ZONE: 0x1234}), h("0600 1700 | 3412 | 0000")),
    # OVS_KEY_ATTR_CT_MARK (24): u32 connection tracking mark, host order.
    ("ct_mark", FlowKey({KeyAttr.CT_MARK: 0x01}), h("0800 1800 | 01000000")),
    # OVS_KEY_ATTR_CT_LABELS (25):
    # struct ovs_key_ct_labels { union { __u8 ct_labels[16]; __u32 ct_labels_32[4]; }; }
    (
        "ct_labels",
        FlowKey({KeyAttr.CT_LABELS: bytes(range(16))}),
        h("1400 1900 | 000102030405060708090a0b0c0d0e0f"),
    ),
    # OVS_KEY_ATTR_CT_ORIG_TUPLE_IPV4 (26):
    # struct ovs_key_ct_tuple_ipv4 { __be32 ipv4_src, ipv4_dst; __be16 src_port, dst_port;
    #                                __u8 ipv4_proto; }  13 bytes, sizeof 16 (3 tail pad)
    (
        "ct_orig_tuple_ipv4",
        FlowKey({KeyAttr.CT_ORIG_TUPLE_IPV4: CtTupleIpv4(IP_A, IP_B, 1024, 443, 6)}),
        h("1400 1a00 | c0000201 | c6336402 | 0400 | 01bb | 06 | 000000"),
    ),
    # OVS_KEY_ATTR_CT_ORIG_TUPLE_IPV6 (27):
    # struct ovs_key_ct_tuple_ipv6 { __be32 ipv6_src[4], ipv6_dst[4];
    #                                __be16 src_port, dst_port; __u8 ipv6_proto; }
    #   37 bytes, sizeof 40 (3 tail pad)
    (
        "ct_orig_tuple_ipv6",
        FlowKey({KeyAttr.CT_ORIG_TUPLE_IPV6: CtTupleIpv6(V6_A, V6_B, 5353, 53, 17)}),
        h(
            "2c00 1b00 | 20010db8000000000000000000000001 | fe800000000000000000000000000002"
            " | 14e9 | 0035 | 11 | 000000"
        ),
    ),
    # OVS_KEY_ATTR_PACKET_TYPE (29): be32 packet type = namespace << 16 | ns_type
    # (OFPHTN_ETHERTYPE 1, 0x0800: an IPv4 packet with no Ethernet header).
    ("packet_type", FlowKey({KeyAttr.PACKET_TYPE: 0x00010800}), h("0800 1d00 | 00010800")),
    # OVS_KEY_ATTR_ND_EXTENSIONS (30):
    # struct ovs_key_nd_extensions { __be32 nd_reserved; __u8 nd_options_type; }
    #   5 bytes, sizeof 8 (3 tail pad)
    (
        "nd_extensions",
        FlowKey({KeyAttr.ND_EXTENSIONS: NdExtensions(0x20000000, 2)}),
        h("0c00 1e00 | 20000000 | 02 | 000000"),
    ),
    # OVS_KEY_ATTR_IPV6_EXTHDRS (32): struct ovs_key_ipv6_exthdrs { __u16 hdrs; }
    # host order (OFPIEH12_* bits: NONEXT 1<<0 | HOP 1<<3 | UNREP 1<<8), 2 pad bytes.
    ("ipv6_exthdrs", FlowKey({KeyAttr.IPV6_EXTHDRS: 0x0109}), h("0600 2000 | 0901 | 0000")),
    # OVS_KEY_ATTR_ENCAP (1): nested OVS_KEY_ATTR_* of the frame inside a VLAN tag:
    # eth_type(0x8100), vlan(vid=10,pcp=0), encap(eth_type(0x0800), ipv4(...))
    (
        "encap",
        FlowKey(
            {
                KeyAttr.ETHERTYPE: 0x8100,
                KeyAttr.VLAN: 0x100A,
                KeyAttr.ENCAP: FlowKey(
                    {
                        KeyAttr.ETHERTYPE: 0x0800,
                        KeyAttr.IPV4: Ipv4(0x0A000001, 0x0A000002, 17, 0, 64, 0),
                    }
                ),
            }
        ),
        h(
            "0600 0600 | 8100 | 0000"
            " | 0600 0500 | 100a | 0000"
            " | 1c00 0100"  # encap: 4 + 8 + 16 = 28
            "   | 0600 0600 | 0800 | 0000"
            "   | 1000 0700 | 0a000001 | 0a000002 | 11 | 00 | 40 | 00"
        ),
    ),
    # QinQ: encap inside encap (802.1ad outer tag, 802.1Q inner tag).
    (
        "encap_qinq",
        FlowKey(
            {
                KeyAttr.ETHERTYPE: 0x88A8,
                KeyAttr.VLAN: 0x1001,
                KeyAttr.ENCAP: FlowKey(
                    {
                        KeyAttr.ETHERTYPE: 0x8100,
                        KeyAttr.VLAN: 0x1002,
                        KeyAttr.ENCAP: FlowKey({KeyAttr.ETHERTYPE: 0x86DD}),
                    }
                ),
            }
        ),
        h(
            "0600 0600 | 88a8 | 0000 | 0600 0500 | 1001 | 0000"
            " | 2000 0100"  # outer encap: 4 + 8 + 8 + 12 = 32
            "   | 0600 0600 | 8100 | 0000 | 0600 0500 | 1002 | 0000"
            "   | 0c00 0100 | 0600 0600 | 86dd | 0000"
        ),
    ),
    # An empty encap() (the kernel's key for a VLAN frame cut short).
    ("encap_empty", FlowKey({KeyAttr.ENCAP: FlowKey()}), h("0400 0100")),
    # An attribute type the codec does not know: kept raw, padded on the wire.
    ("unknown_type", FlowKey({0x50: Unknown(h("aabbcc"))}), h("0700 5000 | aabbcc | 00")),
    # OVS_KEY_ATTR_TUNNEL_INFO (31) is kernel-internal: never parsed, kept raw.
    ("unknown_tunnel_info", FlowKey({31: Unknown(h("01020304"))}), h("0800 1f00 | 01020304")),
    # An empty unknown attribute.
    ("unknown_empty", FlowKey({0x3FFF: Unknown(b"")}), h("0400 ff3f")),
    # A known attribute type may be wrapped in Unknown to send raw bytes (here
    # a 2-byte in_port the kernel would refuse).  Decoding types it again.
]

# --- OVS_KEY_ATTR_TUNNEL (16): nested enum ovs_tunnel_key_attr ---------------
#
#   OVS_TUNNEL_KEY_ATTR_ID (0)               be64 Tunnel ID
#   OVS_TUNNEL_KEY_ATTR_IPV4_SRC (1)         be32 src IP address
#   OVS_TUNNEL_KEY_ATTR_IPV4_DST (2)         be32 dst IP address
#   OVS_TUNNEL_KEY_ATTR_TOS (3)              u8 Tunnel IP ToS
#   OVS_TUNNEL_KEY_ATTR_TTL (4)              u8 Tunnel IP TTL
#   OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT (5)    no argument
#   OVS_TUNNEL_KEY_ATTR_CSUM (6)             no argument
#   OVS_TUNNEL_KEY_ATTR_OAM (7)              no argument
#   OVS_TUNNEL_KEY_ATTR_GENEVE_OPTS (8)      array of Geneve options
#   OVS_TUNNEL_KEY_ATTR_TP_SRC (9)           be16 src transport port
#   OVS_TUNNEL_KEY_ATTR_TP_DST (10)          be16 dst transport port
#   OVS_TUNNEL_KEY_ATTR_VXLAN_OPTS (11)      nested OVS_VXLAN_EXT_* (GBP = 1: u32)
#   OVS_TUNNEL_KEY_ATTR_IPV6_SRC (12)        struct in6_addr
#   OVS_TUNNEL_KEY_ATTR_IPV6_DST (13)        struct in6_addr
#   OVS_TUNNEL_KEY_ATTR_PAD (14)
#   OVS_TUNNEL_KEY_ATTR_ERSPAN_OPTS (15)     struct erspan_metadata
#   OVS_TUNNEL_KEY_ATTR_IPV4_INFO_BRIDGE (16) no argument (kernel uAPI)
#
# Encoding order is Open vSwitch's tun_key_to_attr(): ID, IPV4_SRC, IPV4_DST,
# IPV6_SRC, IPV6_DST, TOS, TTL, DF, CSUM, TP_SRC, TP_DST, OAM, VXLAN_OPTS,
# GENEVE_OPTS, ERSPAN_OPTS, then IPV4_INFO_BRIDGE and unknown attributes.

TUNNEL_VECTORS: list[tuple[str, Tunnel, bytes]] = [
    # Weave's fast datapath: tun_id (VNI), ipv4 src/dst, ttl, df.
    (
        "weave",
        Tunnel(tun_id=0x00ABC123, ipv4_src=IP_A, ipv4_dst=IP_B, ttl=64, df=True),
        h(
            "0c00 0000 | 0000000000abc123"  # ID: be64
            " | 0800 0100 | c0000201"  # IPV4_SRC: be32
            " | 0800 0200 | c6336402"  # IPV4_DST: be32
            " | 0500 0400 | 40 | 000000"  # TTL: u8 + 3 pad
            " | 0400 0500"  # DONT_FRAGMENT: flag
        ),
    ),
    # Every IPv4-side attribute, with Geneve options (class 0x0102, type 0x80,
    # length 1 word: struct geneve_opt { __be16 opt_class; u8 type; u8 r:3,len:5; data }).
    (
        "ipv4_full",
        Tunnel(
            tun_id=0xFFFFFFFFFFFFFFFF,
            ipv4_src=IP_A,
            ipv4_dst=IP_B,
            tos=0xB8,
            ttl=255,
            df=True,
            csum=True,
            tp_src=49152,
            tp_dst=6081,
            oam=True,
            geneve=h("0102 80 01 01020304"),
            ipv4_info_bridge=True,
        ),
        h(
            "0c00 0000 | ffffffffffffffff"  # ID
            " | 0800 0100 | c0000201"  # IPV4_SRC
            " | 0800 0200 | c6336402"  # IPV4_DST
            " | 0500 0300 | b8 | 000000"  # TOS
            " | 0500 0400 | ff | 000000"  # TTL
            " | 0400 0500"  # DONT_FRAGMENT
            " | 0400 0600"  # CSUM
            " | 0600 0900 | c000 | 0000"  # TP_SRC: be16 + 2 pad
            " | 0600 0a00 | 17c1 | 0000"  # TP_DST: be16 6081
            " | 0400 0700"  # OAM
            " | 0c00 0800 | 0102 80 01 01020304"  # GENEVE_OPTS
            " | 0400 1000"  # IPV4_INFO_BRIDGE
        ),
    ),
    # IPv6 underlay with the VXLAN Group Based Policy extension:
    # VXLAN_OPTS nests OVS_VXLAN_EXT_GBP (1), a u32 in host order.
    (
        "ipv6_vxlan_gbp",
        Tunnel(tun_id=100, ipv6_src=V6_A, ipv6_dst=V6_B, ttl=64, tp_dst=4789, vxlan_gbp=0x00FF00),
        h(
            "0c00 0000 | 0000000000000064"  # ID
            " | 1400 0c00 | 20010db8000000000000000000000001"  # IPV6_SRC: in6_addr
            " | 1400 0d00 | fe800000000000000000000000000002"  # IPV6_DST: in6_addr
            " | 0500 0400 | 40 | 000000"  # TTL
            " | 0600 0a00 | 12b5 | 0000"  # TP_DST 4789
            " | 0c00 0b00 | 0800 0100 | 00ff0000"  # VXLAN_OPTS { GBP: u32 0xff00 }
        ),
    ),
    # ERSPAN: struct erspan_metadata { int version; union { __be32 index;
    # struct erspan_md2 md2; } u; } = 12 bytes; version 1 (host int), index 7.
    (
        "erspan",
        Tunnel(ipv4_dst=IP_B, erspan=h("01000000 00000007 00000000")),
        h(
            "0800 0200 | c6336402"  # IPV4_DST
            " | 1000 0f00 | 01000000 | 00000007 | 00000000"  # ERSPAN_OPTS
        ),
    ),
    # Attribute types the codec does not know come back in order after the rest.
    (
        "unknown",
        Tunnel(tun_id=1, unknown=((0x63, h("aabbcc")), (0x64, b""))),
        h(
            "0c00 0000 | 0000000000000001"
            " | 0700 6300 | aabbcc | 00"  # type 99, 3 bytes + 1 pad
            " | 0400 6400"  # type 100, empty
        ),
    ),
    # A mask for the weave flow: all bits of id, addresses and ttl; df matched.
    (
        "weave_mask",
        Tunnel(tun_id=2**64 - 1, ipv4_src=2**32 - 1, ipv4_dst=2**32 - 1, ttl=0xFF, df=True),
        h(
            "0c00 0000 | ffffffffffffffff | 0800 0100 | ffffffff | 0800 0200 | ffffffff"
            " | 0500 0400 | ff | 000000 | 0400 0500"
        ),
    ),
    # An empty tunnel() (matches no tunnel metadata at all).
    ("empty", Tunnel(), b""),
]

# --- OVS_KEY_ATTR_NSH (28): nested enum ovs_nsh_key_attr ---------------------
#
#   OVS_NSH_KEY_ATTR_BASE (1)  struct ovs_nsh_key_base { __u8 flags, ttl, mdtype, np;
#                                                        __be32 path_hdr; }
#   OVS_NSH_KEY_ATTR_MD1 (2)   struct ovs_nsh_key_md1 { __be32 context[4]; }
#   OVS_NSH_KEY_ATTR_MD2 (3)   variable-length octets (MD type 2 TLVs)

NSH_VECTORS: list[tuple[str, Nsh, bytes]] = [
    # base + md1: flags 0, ttl 63, mdtype 1, np 3 (Ethernet), spi 0x123456 si 255.
    (
        "md1",
        Nsh(base=NshBase(0, 63, 1, 3, 0x123456FF), md1=(1, 2, 3, 0xFFFFFFFF)),
        h(
            "0c00 0100 | 00 | 3f | 01 | 03 | 123456ff"
            " | 1400 0200 | 00000001 | 00000002 | 00000003 | ffffffff"
        ),
    ),
    # base + md2: one MD2 TLV (class 0x0001, type 0x02, len 4, 4 bytes of value).
    (
        "md2",
        Nsh(base=NshBase(2, 1, 2, 1, 0x00000AFE), md2=h("0001 02 04 deadbeef")),
        h("0c00 0100 | 02 | 01 | 02 | 01 | 00000afe | 0c00 0300 | 0001 02 04 deadbeef"),
    ),
    # md2 of 3 bytes (padded) and an unknown NSH attribute kept raw.
    (
        "md2_odd_unknown",
        Nsh(md2=h("010203"), unknown=((9, h("ff")),)),
        h("0700 0300 | 010203 | 00 | 0500 0900 | ff | 000000"),
    ),
]


def _check_types(got: Any, want: Any) -> None:
    """Same Python types all the way down (a NamedTuple equals a plain tuple)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want), "attribute order"
        for k in want:
            _check_types(got[k], want[k])
    elif isinstance(want, tuple):
        for g, w in zip(got, want, strict=True):
            _check_types(g, w)


@pytest.mark.parametrize(
    ("value", "wire"), [(v, w) for _, v, w in KEY_VECTORS], ids=[i for i, _, _ in KEY_VECTORS]
)
def test_key_encode_golden(value: FlowKey, wire: bytes) -> None:
    assert encode_key(value) == wire


@pytest.mark.parametrize(
    ("value", "wire"), [(v, w) for _, v, w in KEY_VECTORS], ids=[i for i, _, _ in KEY_VECTORS]
)
def test_key_decode_golden(value: FlowKey, wire: bytes) -> None:
    got = decode_key(wire)
    assert got == value
    _check_types(got, value)


def _tunnel_attr(payload: bytes) -> bytes:
    # OVS_KEY_ATTR_TUNNEL header: nla_len = 4 + payload, type 16.
    size = 4 + len(payload)
    return bytes([size & 0xFF, size >> 8, 0x10, 0x00]) + payload


@pytest.mark.parametrize(
    ("value", "wire"), [(v, w) for _, v, w in TUNNEL_VECTORS], ids=[i for i, _, _ in TUNNEL_VECTORS]
)
def test_tunnel_golden(value: Tunnel, wire: bytes) -> None:
    # Every tunnel payload above is a whole number of 4-byte words.
    assert len(wire) % 4 == 0
    assert encode_key(FlowKey({KeyAttr.TUNNEL: value})) == _tunnel_attr(wire)
    assert decode_key(_tunnel_attr(wire)) == FlowKey({KeyAttr.TUNNEL: value})
    # The same nested attributes on their own: an upcall's OVS_PACKET_ATTR_EGRESS_TUN_KEY.
    assert decode_tunnel(wire) == value


def _nsh_attr(payload: bytes) -> bytes:
    size = 4 + len(payload)
    return bytes([size & 0xFF, size >> 8, 0x1C, 0x00]) + payload


@pytest.mark.parametrize(
    ("value", "wire"), [(v, w) for _, v, w in NSH_VECTORS], ids=[i for i, _, _ in NSH_VECTORS]
)
def test_nsh_golden(value: Nsh, wire: bytes) -> None:
    got = decode_key(_nsh_attr(wire))[KeyAttr.NSH]
    assert got == value
    if value.base is not None:
        assert type(got.base) is NshBase
    assert encode_key(FlowKey({KeyAttr.NSH: value})) == _nsh_attr(wire)


def test_every_codec_has_a_golden_vector() -> None:
    """A new attribute in _CODECS must come with a vector here."""
    covered = {k for _, key, _ in KEY_VECTORS for k in _walk(key)}
    covered |= {KeyAttr.TUNNEL, KeyAttr.NSH}
    missing = set(_CODECS) - covered
    assert not missing, f"no golden vector for {sorted(KeyAttr(k).name for k in missing)}"
    assert KeyAttr.ENCAP in covered
    assert any(isinstance(v, Unknown) for _, key, _ in KEY_VECTORS for v in key.values())


def _walk(key: FlowKey) -> set[int]:
    out = set(key)
    for v in key.values():
        if isinstance(v, FlowKey):
            out |= _walk(v)
    return out


def test_every_tunnel_attribute_has_a_golden_vector() -> None:
    seen: set[int] = set()
    for _, _, wire in TUNNEL_VECTORS:
        off = 0
        while off < len(wire):
            size = wire[off] | wire[off + 1] << 8
            seen.add(wire[off + 2] | wire[off + 3] << 8)
            off += (size + 3) & ~3
    # PAD is decode-only (test_tunnel_pad_skipped); GTPU_OPTS is userspace-only.
    wanted = set(TunnelKeyAttr) - {TunnelKeyAttr.PAD, TunnelKeyAttr.GTPU_OPTS}
    assert wanted <= seen, sorted(TunnelKeyAttr(t).name for t in wanted - seen)


# --- decode-only vectors: what the kernel may send that we never do ----------


def test_nested_flag_is_ignored() -> None:
    # NLA_F_NESTED (0x8000) set on OVS_KEY_ATTR_TUNNEL and on VXLAN_OPTS.
    wire = h("1400 1080 | 0c00 0000 | 0000000000000005 | 0400 0500")
    assert decode_key(wire) == FlowKey({KeyAttr.TUNNEL: Tunnel(tun_id=5, df=True)})
    wire = h("0c00 0b80 | 0800 0100 | 01000000")
    assert decode_tunnel(wire) == Tunnel(vxlan_gbp=1)


def test_net_byteorder_flag_is_ignored() -> None:
    # NLA_F_NET_BYTEORDER (0x4000) on OVS_KEY_ATTR_ETHERTYPE.
    assert decode_key(h("0600 0640 | 86dd 0000")) == FlowKey({KeyAttr.ETHERTYPE: 0x86DD})


def test_tunnel_pad_skipped() -> None:
    # OVS_TUNNEL_KEY_ATTR_PAD (14) carries nothing: the kernel uses it to align be64s.
    wire = h("0400 0e00 | 0c00 0000 | 0000000000000009")
    assert decode_tunnel(wire) == Tunnel(tun_id=9)


def test_last_attribute_unpadded() -> None:
    # The final attribute's padding may be missing (nla_len says 6, no pad follows).
    wire = h("0800 0300 | 01000000 | 0600 0600 | 0800")
    assert decode_key(wire) == FlowKey({KeyAttr.IN_PORT: 1, KeyAttr.ETHERTYPE: 0x0800})


def test_vxlan_opts_unknown_extension_kept_raw() -> None:
    # VXLAN_OPTS holding OVS_VXLAN_EXT_GPE (8) as well as GBP: not representable
    # as vxlan_gbp, so the whole nest is kept raw and encodes back unchanged.
    nest = h("0800 0100 | 01000000 | 0400 0800")
    wire = h("1000 0b00") + nest
    got = decode_tunnel(wire)
    assert got.vxlan_gbp is None
    assert got.unknown == ((TunnelKeyAttr.VXLAN_OPTS, nest),)
    assert encode_key(FlowKey({KeyAttr.TUNNEL: got})) == _tunnel_attr(wire)


def test_known_type_wrapped_in_unknown_is_sent_raw() -> None:
    # Unknown lets a caller send bytes the kernel would refuse (a 2-byte
    # in_port); decoding such bytes is an error, not a silent guess.
    wire = h("0600 0300 | 0100 | 0000")
    assert encode_key(FlowKey({KeyAttr.IN_PORT: Unknown(h("0100"))})) == wire
    with pytest.raises(DecodeError):
        decode_key(wire)


def test_encode_key_attr() -> None:
    # As nested in a set() action: one attribute, same bytes as in a key.
    assert encode_key_attr(KeyAttr.IN_PORT, 5) == h("0800 0300 | 05000000")
    assert encode_key_attr(KeyAttr.TUNNEL, Tunnel(tun_id=1)) == h(
        "1000 1000 | 0c00 0000 | 0000000000000001"
    )


def test_full_flow_key_in_kernel_order() -> None:
    """A whole key as the kernel emits one for a TCP packet (ovs_nla_put_key order)."""
    key = FlowKey(
        {
            KeyAttr.RECIRC_ID: 0,
            KeyAttr.DP_HASH: 0,
            KeyAttr.PRIORITY: 0,
            KeyAttr.IN_PORT: 2,
            KeyAttr.SKB_MARK: 0,
            KeyAttr.CT_STATE: 0,
            KeyAttr.CT_ZONE: 0,
            KeyAttr.CT_MARK: 0,
            KeyAttr.CT_LABELS: bytes(16),
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
            KeyAttr.ETHERTYPE: 0x0800,
            KeyAttr.IPV4: Ipv4(IP_A, IP_B, 6, 0, 64, 0),
            KeyAttr.TCP: Ports(40000, 22),
            KeyAttr.TCP_FLAGS: 0x002,
        }
    )
    wire = h(
        "0800 1400 | 00000000"  # recirc_id
        " | 0800 1300 | 00000000"  # dp_hash
        " | 0800 0200 | 00000000"  # priority
        " | 0800 0300 | 02000000"  # in_port
        " | 0800 0f00 | 00000000"  # skb_mark
        " | 0800 1600 | 00000000"  # ct_state
        " | 0600 1700 | 0000 0000"  # ct_zone
        " | 0800 1800 | 00000000"  # ct_mark
        " | 1400 1900 | 00000000000000000000000000000000"  # ct_labels
        " | 1000 0400 | 001122334455 66778899aabb"  # eth
        " | 0600 0600 | 0800 0000"  # eth_type
        " | 1000 0700 | c0000201 c6336402 06 00 40 00"  # ipv4
        " | 0800 0900 | 9c40 0016"  # tcp
        " | 0600 1200 | 0002 0000"  # tcp_flags
    )
    assert encode_key(key) == wire
    got = decode_key(wire)
    assert got == key
    _check_types(got, key)


# --- encoding refuses what struct would silently pad or cut --------------------


@pytest.mark.parametrize(
    "key",
    [
        FlowKey({KeyAttr.ETHERNET: Eth(MAC_A[:5], MAC_B)}),  # 5-byte MAC
        FlowKey({KeyAttr.ETHERNET: Eth(MAC_A, MAC_B + b"\0")}),  # 7-byte MAC
        FlowKey({KeyAttr.ETHERNET: (MAC_A,)}),  # a tuple one field short
        FlowKey({KeyAttr.IPV6: Ipv6(V6_A[:4], V6_B, 0, 0, 0, 0, 0)}),
        FlowKey({KeyAttr.ARP: Arp(1, 2, 1, MAC_A, b"")}),
        FlowKey({KeyAttr.ND: Nd(V6_A, MAC_A, MAC_B * 2)}),
        FlowKey({KeyAttr.CT_ORIG_TUPLE_IPV6: CtTupleIpv6(V6_A, V6_B[1:], 1, 2, 6)}),
        FlowKey({KeyAttr.CT_LABELS: bytes(15)}),
        FlowKey({KeyAttr.TUNNEL: Tunnel(ipv6_src=bytes(4))}),
        FlowKey({KeyAttr.TUNNEL: Tunnel(ipv6_dst=bytes(17))}),
        FlowKey({KeyAttr.IN_PORT: 2**32}),  # out of u32 range
        FlowKey({KeyAttr.VLAN: -1}),
        FlowKey({KeyAttr.TUNNEL: Tunnel(ttl=256)}),
        FlowKey({KeyAttr.MPLS: (2**32,)}),
        FlowKey({KeyAttr.TUNNEL_INFO: 5}),  # no codec: must be wrapped in Unknown
    ],
)
def test_encode_rejects_wrong_shapes(key: FlowKey) -> None:
    # each case says what is wrong in its own words: the type is the contract
    with pytest.raises(ValueError):  # noqa: PT011
        encode_key(key)

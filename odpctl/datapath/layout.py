"""The userspace datapath's flow key: one flat, fixed byte layout.

The kernel matches packets against megaflows by AND-ing a ``struct
sw_flow_key`` with each mask and hashing the result.  This is the same idea
shaped for Python: a key is one ``bytes`` object of `KEY_SIZE` bytes in the
layout below (big-endian, no padding), so that a masked lookup is one
``int.from_bytes`` and one ``&`` of two ints, whatever the fields are.

Tunnel options (Geneve TLVs, the VXLAN GBP word) vary in length; they are
kept apart and, when a key becomes an int, placed above the fixed part.
Ending them at the fixed part's first byte is what the kernel does too
(``TUN_METADATA_OFFSET``): options of different lengths stay told apart by
``tun_opts_len``, which is in the fixed part.

Fields the kernel unions (ARP and ND addresses) share slots here as well;
IPv4 and IPv6 addresses have slots of their own, which only costs bytes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Port number meaning "no input port" (the kernel's DP_MAX_PORTS); in_port is
# 16 bits wide in the key, as in the kernel's sw_flow_key.
DP_MAX_PORTS = 0xFFFF

# Tunnel flag bits of the ``tun_flags`` field (internal; the kernel's
# TUNNEL_* bits differ, only which exist matters).
TUN_KEY = 0x01
TUN_DF = 0x02
TUN_CSUM = 0x04
TUN_OAM = 0x08
TUN_GENEVE_OPT = 0x10
TUN_VXLAN_OPT = 0x20
TUN_OPTIONS_PRESENT = TUN_GENEVE_OPT | TUN_VXLAN_OPT

# tun_proto values: the address family of the outer header.
AF_INET = 2
AF_INET6 = 10

ETH_P_802_2 = 0x0005
ETH_P_802_3_MIN = 0x0600

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136


class Key(NamedTuple):
    """The fields of a flat key, in layout order (see `KEY_STRUCT`)."""

    recirc_id: int
    dp_hash: int
    priority: int
    skb_mark: int
    in_port: int
    ct_state: int
    ct_mark: int
    ct_labels: bytes
    tun_id: int
    tun_ipv4_src: int
    tun_ipv4_dst: int
    tun_ipv6_src: bytes
    tun_ipv6_dst: bytes
    tun_tos: int
    tun_ttl: int
    tun_flags: int
    tun_tp_src: int
    tun_tp_dst: int
    tun_proto: int
    tun_opts_len: int
    eth_src: bytes
    eth_dst: bytes
    vlan_tpid: int
    vlan_tci: int
    cvlan_tpid: int
    cvlan_tci: int
    eth_type: int
    ip_proto: int  # for ARP: the low 8 bits of the opcode, as in the kernel
    ip_tos: int
    ip_ttl: int
    ip_frag: int
    ipv4_src: int  # also ARP's sender IP
    ipv4_dst: int  # also ARP's target IP
    ipv6_src: bytes
    ipv6_dst: bytes
    ipv6_label: int
    ipv6_exthdrs: int
    arp_sha: bytes  # also ND's source link-layer address
    arp_tha: bytes  # also ND's target link-layer address
    nd_target: bytes
    mpls_lse: int
    tp_src: int  # for ICMP: the type
    tp_dst: int  # for ICMP: the code
    tcp_flags: int


_FORMATS: dict[str, str] = {
    "recirc_id": "I",
    "dp_hash": "I",
    "priority": "I",
    "skb_mark": "I",
    "in_port": "H",
    "ct_state": "I",
    "ct_mark": "I",
    "ct_labels": "16s",
    "tun_id": "Q",
    "tun_ipv4_src": "I",
    "tun_ipv4_dst": "I",
    "tun_ipv6_src": "16s",
    "tun_ipv6_dst": "16s",
    "tun_tos": "B",
    "tun_ttl": "B",
    "tun_flags": "H",
    "tun_tp_src": "H",
    "tun_tp_dst": "H",
    "tun_proto": "B",
    "tun_opts_len": "B",
    "eth_src": "6s",
    "eth_dst": "6s",
    "vlan_tpid": "H",
    "vlan_tci": "H",
    "cvlan_tpid": "H",
    "cvlan_tci": "H",
    "eth_type": "H",
    "ip_proto": "B",
    "ip_tos": "B",
    "ip_ttl": "B",
    "ip_frag": "B",
    "ipv4_src": "I",
    "ipv4_dst": "I",
    "ipv6_src": "16s",
    "ipv6_dst": "16s",
    "ipv6_label": "I",
    "ipv6_exthdrs": "H",
    "arp_sha": "6s",
    "arp_tha": "6s",
    "nd_target": "16s",
    "mpls_lse": "I",
    "tp_src": "H",
    "tp_dst": "H",
    "tcp_flags": "H",
}
assert tuple(_FORMATS) == Key._fields

KEY_STRUCT = struct.Struct("!" + "".join(_FORMATS.values()))
KEY_SIZE = KEY_STRUCT.size


def _offsets() -> dict[str, int]:
    out: dict[str, int] = {}
    fmt = "!"
    for name, code in _FORMATS.items():
        out[name] = struct.calcsize(fmt)
        fmt += code
    return out


OFFSET: dict[str, int] = _offsets()
# One Struct per field, to read or write a single field in place.
FIELD: dict[str, struct.Struct] = {
    name: struct.Struct("!" + code) for name, code in _FORMATS.items()
}

ZERO_KEY = bytes(KEY_SIZE)
ZERO6 = bytes(6)
ZERO16 = bytes(16)


def unpack(key: bytes) -> Key:
    return Key._make(KEY_STRUCT.unpack(key))


def pack(key: Key) -> bytes:
    return KEY_STRUCT.pack(*key)


def to_int(key: bytes, opts: bytes = b"") -> int:
    """The key as one int for masked lookups: options above the fixed part."""
    return int.from_bytes(opts + key if opts else key, "big")


# A key is a metadata part (what the datapath knows about a packet: port,
# tunnel, recirculation) followed by a packet part (what its bytes say).
# Ports precompute the first; extraction packs the second in one call.
META_SIZE = OFFSET["eth_src"]
_NAMES = tuple(_FORMATS)
_FIRST_PACKET_FIELD = _NAMES.index("eth_src")
META_STRUCT = struct.Struct("!" + "".join(list(_FORMATS.values())[:_FIRST_PACKET_FIELD]))
PACKET_STRUCT = struct.Struct("!" + "".join(list(_FORMATS.values())[_FIRST_PACKET_FIELD:]))
assert META_STRUCT.size == META_SIZE and META_SIZE + PACKET_STRUCT.size == KEY_SIZE


def port_meta(in_port: int) -> bytes:
    """The metadata part of the key of a packet just received on ``in_port``."""
    return (
        ZERO_KEY[: OFFSET["in_port"]]
        + FIELD["in_port"].pack(in_port)
        + ZERO_KEY[OFFSET["in_port"] + 2 : META_SIZE]
    )

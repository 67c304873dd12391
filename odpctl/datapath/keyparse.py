"""Netlink flow keys and masks into flat keys, with the kernel's rules.

`parse_match` follows ``ovs_nla_get_match`` of the Linux datapath
(``net/openvswitch/flow_netlink.c``) step by step, so that a key or mask the
kernel refuses is refused here with the same errno: strict attribute
lengths, no duplicates, in_port and EtherType masks forced exact, all-zero
mask attributes ignored, the VLAN encapsulation rules, and
``match_validate``'s list of which attributes a key must and a mask may
carry.  What the kernel datapath supports and this one does not (conntrack
tuples, NSH, layer-3 packets, ERSPAN) is refused with EOPNOTSUPP and a
reason, rather than accepted and never matched.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from odpctl.datapath.errors import RequestError
from odpctl.datapath.layout import (
    AF_INET,
    AF_INET6,
    DP_MAX_PORTS,
    ETH_P_802_2,
    ETH_P_802_3_MIN,
    FIELD,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    KEY_SIZE,
    ND_NEIGHBOR_ADVERT,
    ND_NEIGHBOR_SOLICIT,
    OFFSET,
    TUN_CSUM,
    TUN_DF,
    TUN_GENEVE_OPT,
    TUN_KEY,
    TUN_OAM,
    TUN_VXLAN_OPT,
    to_int,
)
from odpctl.netlink.attrs import NLA_TYPE_MASK
from odpctl.odp.keyspec import BLOB, FIXED, KEY_SPECS, TUNNEL_OPTS
from odpctl.odp.keyspec import NESTED as NESTED_LAYOUT
from odpctl.odp.keyspec import VARIABLE as VARIABLE_LAYOUT
from odpctl.odp.uapi import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_RARP,
    VLAN_CFI,
    KeyAttr,
    TunnelKeyAttr,
    VxlanExt,
)

_HDR = struct.Struct("=HH")
_U8 = struct.Struct("B")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_BE64 = struct.Struct("!Q")
_IPV4 = struct.Struct(KEY_SPECS[KeyAttr.IPV4].fmt)
_IPV6 = struct.Struct(KEY_SPECS[KeyAttr.IPV6].fmt)
_PORTS = struct.Struct(KEY_SPECS[KeyAttr.TCP].fmt)  # UDP and SCTP alike
_ARP = struct.Struct(KEY_SPECS[KeyAttr.ARP].fmt)
_ND = struct.Struct(KEY_SPECS[KeyAttr.ND].fmt)

# Highest OVS_KEY_ATTR_* the kernel knows (6.1: OVS_KEY_ATTR_IPV6_EXTHDRS).
KEY_ATTR_MAX = KeyAttr.IPV6_EXTHDRS
TUNNEL_ATTR_MAX = TunnelKeyAttr.IPV4_INFO_BRIDGE

NESTED = -1
VARIABLE = -2

# Payload length of each key attribute, as the kernel's ovs_key_lens (from the
# spec).  A type missing here has length 0 there, which lets an empty attribute
# through to the "unknown key attribute" check.
_LENS = {FIXED: 0, NESTED_LAYOUT: NESTED, VARIABLE_LAYOUT: VARIABLE}
KEY_LENS: dict[int, int] = {
    kind: spec.size if spec.layout == FIXED else _LENS[spec.layout]
    for kind, spec in KEY_SPECS.items()
    if spec.kernel
}

# ... and of each tunnel attribute the kernel knows (ovs_tunnel_key_lens).
TUNNEL_LENS: dict[int, int] = {
    int(o.kind): NESTED if o.nested is not None else VARIABLE if o.fmt == BLOB else o.size
    for o in TUNNEL_OPTS
    if o.kernel
}

# The conntrack states the kernel can match (OVS_CS_F_NEW .. OVS_CS_F_DST_NAT).
CT_SUPPORTED_MASK = 0xFF
GENEVE_OPTS_MAX = 255
MPLS_LABEL_DEPTH = 3


def bit(kind: int) -> int:
    return 1 << kind


# The bits of the key attributes tested most, computed once.
_B_ARP = 1 << KeyAttr.ARP
_B_CT_LABELS = 1 << KeyAttr.CT_LABELS
_B_CT_MARK = 1 << KeyAttr.CT_MARK
_B_CT_ORIG_TUPLE_IPV4 = 1 << KeyAttr.CT_ORIG_TUPLE_IPV4
_B_CT_ORIG_TUPLE_IPV6 = 1 << KeyAttr.CT_ORIG_TUPLE_IPV6
_B_CT_STATE = 1 << KeyAttr.CT_STATE
_B_DP_HASH = 1 << KeyAttr.DP_HASH
_B_ENCAP = 1 << KeyAttr.ENCAP
_B_ETHERNET = 1 << KeyAttr.ETHERNET
_B_ETHERTYPE = 1 << KeyAttr.ETHERTYPE
_B_ICMP = 1 << KeyAttr.ICMP
_B_ICMPV6 = 1 << KeyAttr.ICMPV6
_B_IN_PORT = 1 << KeyAttr.IN_PORT
_B_IPV4 = 1 << KeyAttr.IPV4
_B_IPV6 = 1 << KeyAttr.IPV6
_B_IPV6_EXTHDRS = 1 << KeyAttr.IPV6_EXTHDRS
_B_MPLS = 1 << KeyAttr.MPLS
_B_ND = 1 << KeyAttr.ND
_B_NSH = 1 << KeyAttr.NSH
_B_PACKET_TYPE = 1 << KeyAttr.PACKET_TYPE
_B_PRIORITY = 1 << KeyAttr.PRIORITY
_B_RECIRC_ID = 1 << KeyAttr.RECIRC_ID
_B_SCTP = 1 << KeyAttr.SCTP
_B_SKB_MARK = 1 << KeyAttr.SKB_MARK
_B_TCP = 1 << KeyAttr.TCP
_B_TCP_FLAGS = 1 << KeyAttr.TCP_FLAGS
_B_TUNNEL = 1 << KeyAttr.TUNNEL
_B_UDP = 1 << KeyAttr.UDP
_B_VLAN = 1 << KeyAttr.VLAN


def einval(reason: str) -> RequestError:
    return RequestError(errno.EINVAL, reason)


def unsupported(reason: str) -> RequestError:
    return RequestError(errno.EOPNOTSUPP, f"the userspace datapath does not support {reason}")


def is_vlan_type(eth_type: int) -> bool:
    return eth_type in (ETH_P_8021Q, ETH_P_8021AD)


def is_mpls_type(eth_type: int) -> bool:
    return eth_type in (ETH_P_MPLS_UC, ETH_P_MPLS_MC)


def iter_nested(data: bytes, what: str) -> list[tuple[int, bytes]]:
    """The attributes of a nested payload; leftover bytes are EINVAL, as in the kernel."""
    out: list[tuple[int, bytes]] = []
    off, end = 0, len(data)
    while end - off >= 4:
        nla_len, nla_type = _HDR.unpack_from(data, off)
        if nla_len < 4 or nla_len > end - off:
            break
        out.append((nla_type & NLA_TYPE_MASK, data[off + 4 : off + nla_len]))
        off += (nla_len + 3) & ~3
    if off != end:
        raise einval(f"{what} has {end - off} unknown bytes")
    return out


def _all_zero(payload: bytes) -> bool:
    return not any(payload)


def parse_key_attrs(data: bytes, attrs: dict[int, bytes], bits: int, *, nz: bool) -> int:
    """Collect the attributes of a key (or, with ``nz``, a mask) into ``attrs``.

    Returns the updated bit set of attribute types seen.  ``nz`` drops
    attributes whose payload is all zero, as the kernel does for masks.
    """
    for kind, payload in iter_nested(data, "flow key"):
        if kind > KEY_ATTR_MAX:
            raise einval(f"key attribute type {kind} is out of range (max {KEY_ATTR_MAX})")
        if bits & bit(kind):
            raise einval(f"duplicate key attribute (type {kind})")
        want = KEY_LENS.get(kind, 0)
        if want >= 0 and len(payload) != want:
            raise einval(f"key attribute {kind} has length {len(payload)}, expected {want}")
        if nz and want >= 0 and _all_zero(payload):
            continue
        bits |= bit(kind)
        attrs[kind] = payload
    return bits


@dataclass(slots=True)
class Match:
    """A parsed key and mask, flat (see `odpctl.datapath.layout`)."""

    key: bytes
    mask: bytes
    key_opts: bytes = b""
    mask_opts: bytes = b""

    def masked_key(self) -> bytes:
        return (to_int(self.key) & to_int(self.mask)).to_bytes(KEY_SIZE, "big")

    def masked_opts(self) -> bytes:
        if not self.key_opts:
            return b""
        n = len(self.key_opts)
        mask = self.mask_opts.rjust(n, b"\0")[-n:]
        return (int.from_bytes(self.key_opts, "big") & int.from_bytes(mask, "big")).to_bytes(
            n, "big"
        )

    def key_int(self) -> int:
        return to_int(self.key, self.key_opts)

    def mask_int(self) -> int:
        return to_int(self.mask, self.mask_opts)


_SETTERS = {name: (FIELD[name].pack_into, OFFSET[name]) for name in FIELD}
_GETTERS = {name: (FIELD[name].unpack_from, OFFSET[name]) for name in FIELD}


class _Builder:
    """The key and mask being filled in, like the kernel's sw_flow_match."""

    def __init__(self) -> None:
        self.bufs = (bytearray(KEY_SIZE), bytearray(KEY_SIZE))
        self.opts = [b"", b""]

    def put(self, is_mask: bool, name: str, value: object) -> None:
        pack_into, offset = _SETTERS[name]
        pack_into(self.bufs[is_mask], offset, value)

    def get(self, is_mask: bool, name: str) -> int:
        unpack_from, offset = _GETTERS[name]
        value: int = unpack_from(self.bufs[is_mask], offset)[0]
        return value

    def fill(self, is_mask: bool, name: str, byte: int) -> None:
        size = FIELD[name].size
        off = OFFSET[name]
        self.bufs[is_mask][off : off + size] = bytes([byte]) * size


# --- tunnel --------------------------------------------------------------------


def parse_tunnel(data: bytes, m: _Builder, is_mask: bool) -> int:
    """OVS_KEY_ATTR_TUNNEL into ``m``; returns the options attribute type (0: none).

    As the kernel's ip_tun_from_nlattr, also for the tunnel of a set() action.
    """
    ttl = ipv4 = ipv6 = False
    flags = 0
    opts_type = 0
    for kind, payload in iter_nested(data, "tunnel attribute"):
        if kind > TUNNEL_ATTR_MAX:
            raise einval(f"tunnel attribute {kind} out of range (max {TUNNEL_ATTR_MAX})")
        want = TUNNEL_LENS.get(kind, 0)
        if want >= 0 and len(payload) != want:
            raise einval(f"tunnel attribute {kind} has length {len(payload)}, expected {want}")
        if kind == TunnelKeyAttr.ID:
            m.put(is_mask, "tun_id", _BE64.unpack(payload)[0])
            flags |= TUN_KEY
        elif kind == TunnelKeyAttr.IPV4_SRC:
            m.put(is_mask, "tun_ipv4_src", _BE32.unpack(payload)[0])
            ipv4 = True
        elif kind == TunnelKeyAttr.IPV4_DST:
            m.put(is_mask, "tun_ipv4_dst", _BE32.unpack(payload)[0])
            ipv4 = True
        elif kind == TunnelKeyAttr.IPV6_SRC:
            m.put(is_mask, "tun_ipv6_src", payload)
            ipv6 = True
        elif kind == TunnelKeyAttr.IPV6_DST:
            m.put(is_mask, "tun_ipv6_dst", payload)
            ipv6 = True
        elif kind == TunnelKeyAttr.TOS:
            m.put(is_mask, "tun_tos", payload[0])
        elif kind == TunnelKeyAttr.TTL:
            m.put(is_mask, "tun_ttl", payload[0])
            ttl = True
        elif kind == TunnelKeyAttr.DONT_FRAGMENT:
            flags |= TUN_DF
        elif kind == TunnelKeyAttr.CSUM:
            flags |= TUN_CSUM
        elif kind == TunnelKeyAttr.TP_SRC:
            m.put(is_mask, "tun_tp_src", _BE16.unpack(payload)[0])
        elif kind == TunnelKeyAttr.TP_DST:
            m.put(is_mask, "tun_tp_dst", _BE16.unpack(payload)[0])
        elif kind == TunnelKeyAttr.OAM:
            flags |= TUN_OAM
        elif kind == TunnelKeyAttr.GENEVE_OPTS:
            if opts_type:
                raise einval("multiple tunnel metadata blocks")
            _geneve_opts(payload, m, is_mask)
            flags |= TUN_GENEVE_OPT
            opts_type = kind
        elif kind == TunnelKeyAttr.VXLAN_OPTS:
            if opts_type:
                raise einval("multiple tunnel metadata blocks")
            _vxlan_opts(payload, m, is_mask)
            flags |= TUN_VXLAN_OPT
            opts_type = kind
        elif kind == TunnelKeyAttr.PAD:
            pass
        elif kind == TunnelKeyAttr.ERSPAN_OPTS:
            raise unsupported("ERSPAN tunnel options")
        elif kind == TunnelKeyAttr.IPV4_INFO_BRIDGE:
            raise unsupported("bridge-mode tunnel info")
        else:
            raise einval(f"unknown tunnel attribute {kind}")
    m.put(is_mask, "tun_flags", flags)
    if is_mask:
        m.put(True, "tun_proto", 0xFF)
    else:
        m.put(False, "tun_proto", AF_INET6 if ipv6 else AF_INET)
    if ipv4 and ipv6:
        raise einval("mixed IPv4 and IPv6 tunnel attributes")
    if not is_mask:
        if not ipv4 and not ipv6:
            raise einval("IP tunnel dst address not specified")
        if ipv4 and not m.get(False, "tun_ipv4_dst"):
            raise einval("IPv4 tunnel dst address is zero")
        if ipv6 and not any(m.bufs[0][OFFSET["tun_ipv6_dst"] : OFFSET["tun_ipv6_dst"] + 16]):
            raise einval("IPv6 tunnel dst address is zero")
        if not ttl:
            raise einval("IP tunnel TTL not specified")
    return opts_type


def _geneve_opts(payload: bytes, m: _Builder, is_mask: bool) -> None:
    if len(payload) > GENEVE_OPTS_MAX:
        raise einval(f"Geneve options of {len(payload)} bytes (max {GENEVE_OPTS_MAX})")
    if len(payload) % 4:
        raise einval(f"Geneve options length {len(payload)} is not a multiple of 4")
    if not is_mask:
        m.put(False, "tun_opts_len", len(payload))
    else:
        if m.get(False, "tun_opts_len") != len(payload):
            raise einval(
                f"Geneve option length {m.get(False, 'tun_opts_len')} != mask length {len(payload)}"
            )
        m.put(True, "tun_opts_len", 0xFF)
    m.opts[is_mask] = bytes(payload)


def _vxlan_opts(payload: bytes, m: _Builder, is_mask: bool) -> None:
    gbp = 0
    for kind, value in iter_nested(payload, "VXLAN extension attribute"):
        if kind > VxlanExt.GBP:
            raise einval(f"VXLAN extension {kind} out of range")
        if len(value) != 4:
            raise einval(f"VXLAN extension {kind} has length {len(value)}, expected 4")
        gbp = _U32.unpack(value)[0]
    m.put(is_mask, "tun_opts_len", 0xFF if is_mask else 4)
    m.opts[is_mask] = _BE32.pack(gbp)


# --- the key attributes --------------------------------------------------------------


def _parse_vlan(m: _Builder, bits: int, attrs: dict[int, bytes], is_mask: bool, nz: bool) -> int:
    """Unwrap up to two VLAN encapsulations, as parse_vlan_from_nlattrs."""
    bits, done = _one_vlan(m, bits, attrs, is_mask, nz, inner=False)
    if done and m.get(False, "vlan_tci") & VLAN_CFI:
        bits, _ = _one_vlan(m, bits, attrs, is_mask, nz, inner=True)
    return bits


def _one_vlan(
    m: _Builder, bits: int, attrs: dict[int, bytes], is_mask: bool, nz: bool, inner: bool
) -> tuple[int, bool]:
    which = "C-VLAN" if inner else "VLAN"
    prefix = "cvlan" if inner else "vlan"
    if not is_mask:
        if not (
            bits & _B_ETHERNET
            and bits & _B_ETHERTYPE
            and is_vlan_type(_BE16.unpack(attrs[KeyAttr.ETHERTYPE])[0])
        ):
            return bits, False
        if not (bits & _B_VLAN and bits & _B_ENCAP):
            raise einval(f"invalid {which} frame")
        tci = _BE16.unpack(attrs[KeyAttr.VLAN])[0]
        if not tci & VLAN_CFI:
            if tci:
                raise einval(f"{which} TCI does not have the VLAN_CFI bit set")
            if attrs[KeyAttr.ENCAP]:
                raise einval(f"truncated {which} header has a non-empty encap attribute")
    else:
        if not bits & _B_ENCAP:
            return bits, False
        key_tci = m.get(False, "cvlan_tci" if inner else "vlan_tci")
        if not key_tci & VLAN_CFI:
            raise einval(f"encap mask attribute is set for a non-{which} frame")
        tpid = _BE16.unpack(attrs[KeyAttr.ETHERTYPE])[0] if bits & _B_ETHERTYPE else 0
        tci = _BE16.unpack(attrs[KeyAttr.VLAN])[0] if bits & _B_VLAN else 0
        if tpid != 0xFFFF:
            raise einval(f"must have an exact match on the {which} TPID (mask={tpid:#x})")
        if not tci & VLAN_CFI:
            raise einval(f"{which} TCI mask does not exactly match the VLAN_CFI bit")
    tci = _BE16.unpack(attrs[KeyAttr.VLAN])[0] if bits & _B_VLAN else 0
    tpid = _BE16.unpack(attrs[KeyAttr.ETHERTYPE])[0] if bits & _B_ETHERTYPE else 0
    m.put(is_mask, f"{prefix}_tpid", tpid)
    m.put(is_mask, f"{prefix}_tci", tci)
    encap = attrs.pop(KeyAttr.ENCAP)
    attrs.pop(KeyAttr.VLAN, None)
    attrs.pop(KeyAttr.ETHERTYPE, None)
    bits &= ~(_B_ENCAP | _B_VLAN | _B_ETHERTYPE)
    bits = parse_key_attrs(encap, attrs, bits, nz=nz)
    return bits, True


def parse_metadata(m: _Builder, bits: int, attrs: dict[int, bytes], is_mask: bool) -> int:
    """The attributes a packet cannot carry (metadata_from_nlattrs); returns the bits left."""
    if bits & _B_DP_HASH:
        m.put(is_mask, "dp_hash", _U32.unpack(attrs[KeyAttr.DP_HASH])[0])
        bits &= ~_B_DP_HASH
    if bits & _B_RECIRC_ID:
        m.put(is_mask, "recirc_id", _U32.unpack(attrs[KeyAttr.RECIRC_ID])[0])
        bits &= ~_B_RECIRC_ID
    if bits & _B_PRIORITY:
        m.put(is_mask, "priority", _U32.unpack(attrs[KeyAttr.PRIORITY])[0])
        bits &= ~_B_PRIORITY
    if bits & _B_IN_PORT:
        in_port = _U32.unpack(attrs[KeyAttr.IN_PORT])[0]
        if is_mask:
            in_port = 0xFFFF  # always an exact match
        elif in_port >= DP_MAX_PORTS:
            raise einval(f"port {in_port} exceeds the maximum {DP_MAX_PORTS}")
        m.put(is_mask, "in_port", in_port)
        bits &= ~_B_IN_PORT
    elif not is_mask:
        m.put(False, "in_port", DP_MAX_PORTS)
    if bits & _B_SKB_MARK:
        m.put(is_mask, "skb_mark", _U32.unpack(attrs[KeyAttr.SKB_MARK])[0])
        bits &= ~_B_SKB_MARK
    if bits & _B_TUNNEL:
        parse_tunnel(attrs[KeyAttr.TUNNEL], m, is_mask)
        bits &= ~_B_TUNNEL
    if bits & _B_CT_STATE:
        state = _U32.unpack(attrs[KeyAttr.CT_STATE])[0]
        if state & ~CT_SUPPORTED_MASK:
            raise einval(f"ct_state flags {state:08x} unsupported")
        m.put(is_mask, "ct_state", state)
        bits &= ~_B_CT_STATE
    if bits & _B_CT_MARK:
        m.put(is_mask, "ct_mark", _U32.unpack(attrs[KeyAttr.CT_MARK])[0])
        bits &= ~_B_CT_MARK
    if bits & _B_CT_LABELS:
        m.put(is_mask, "ct_labels", attrs[KeyAttr.CT_LABELS])
        bits &= ~_B_CT_LABELS
    if bits & (_B_CT_ORIG_TUPLE_IPV4 | _B_CT_ORIG_TUPLE_IPV6):
        raise unsupported("conntrack original-direction tuples (it has no conntrack)")
    return bits


def _parse_fields(m: _Builder, bits: int, attrs: dict[int, bytes], is_mask: bool) -> None:
    """ovs_key_from_nlattrs: every attribute into the key or the mask."""
    bits = parse_metadata(m, bits, attrs, is_mask)
    if bits & _B_PACKET_TYPE:
        raise unsupported("packet_type() matches (it has Ethernet ports only)")
    if bits & _B_NSH:
        raise unsupported("NSH")
    if bits & _B_ETHERNET:
        eth = attrs[KeyAttr.ETHERNET]
        m.put(is_mask, "eth_src", eth[:6])
        m.put(is_mask, "eth_dst", eth[6:])
        bits &= ~_B_ETHERNET
    elif not is_mask:
        if bits & _B_ETHERTYPE:
            raise unsupported("flows without an Ethernet header (layer-3 packets)")
        raise einval("either an Ethernet header or an EtherType is required")
    if bits & _B_VLAN:
        raise einval("VLAN attribute unexpected")
    if bits & _B_ETHERTYPE:
        eth_type = _BE16.unpack(attrs[KeyAttr.ETHERTYPE])[0]
        if is_mask:
            eth_type = 0xFFFF  # always an exact match
        elif eth_type < ETH_P_802_3_MIN:
            raise einval(f"EtherType {eth_type:#x} is less than the minimum {ETH_P_802_3_MIN:#x}")
        m.put(is_mask, "eth_type", eth_type)
        bits &= ~_B_ETHERTYPE
    elif not is_mask:
        m.put(False, "eth_type", ETH_P_802_2)
    if bits & _B_IPV4:
        src, dst, proto, tos, ttl, frag = _IPV4.unpack(attrs[KeyAttr.IPV4])
        if not is_mask and frag > 2:
            raise einval(f"IPv4 frag type {frag} is out of range (max 2)")
        _put_ip(m, is_mask, proto, tos, ttl, frag)
        m.put(is_mask, "ipv4_src", src)
        m.put(is_mask, "ipv4_dst", dst)
        bits &= ~_B_IPV4
    if bits & _B_IPV6:
        src6, dst6, label, proto, tclass, hlimit, frag = _IPV6.unpack(attrs[KeyAttr.IPV6])
        if not is_mask and frag > 2:
            raise einval(f"IPv6 frag type {frag} is out of range (max 2)")
        if not is_mask and label & 0xFFF00000:
            raise einval(f"IPv6 flow label {label:#x} is out of range (max 0xfffff)")
        m.put(is_mask, "ipv6_label", label)
        _put_ip(m, is_mask, proto, tclass, hlimit, frag)
        m.put(is_mask, "ipv6_src", src6)
        m.put(is_mask, "ipv6_dst", dst6)
        bits &= ~_B_IPV6
    if bits & _B_IPV6_EXTHDRS:
        m.put(is_mask, "ipv6_exthdrs", _U16.unpack(attrs[KeyAttr.IPV6_EXTHDRS])[0])
        bits &= ~_B_IPV6_EXTHDRS
    if bits & _B_ARP:
        sip, tip, op, sha, tha = _ARP.unpack(attrs[KeyAttr.ARP])
        if not is_mask and op & 0xFF00:
            raise einval(f"unknown ARP opcode {op}")
        m.put(is_mask, "ipv4_src", sip)
        m.put(is_mask, "ipv4_dst", tip)
        m.put(is_mask, "ip_proto", op & 0xFF)
        m.put(is_mask, "arp_sha", sha)
        m.put(is_mask, "arp_tha", tha)
        bits &= ~_B_ARP
    if bits & _B_MPLS:
        lses = attrs[KeyAttr.MPLS]
        if not lses or len(lses) % 4 or len(lses) > 4 * MPLS_LABEL_DEPTH:
            raise einval(f"MPLS key of {len(lses)} bytes")
        if len(lses) > 4:
            raise unsupported("matching more than one MPLS label")
        m.put(is_mask, "mpls_lse", _BE32.unpack(lses)[0])
        bits &= ~_B_MPLS
    for kind in (KeyAttr.TCP, KeyAttr.UDP, KeyAttr.SCTP):
        if bits & bit(kind):
            src_port, dst_port = _PORTS.unpack(attrs[kind])
            m.put(is_mask, "tp_src", src_port)
            m.put(is_mask, "tp_dst", dst_port)
            bits &= ~bit(kind)
    if bits & _B_TCP_FLAGS:
        m.put(is_mask, "tcp_flags", _BE16.unpack(attrs[KeyAttr.TCP_FLAGS])[0])
        bits &= ~_B_TCP_FLAGS
    for kind in (KeyAttr.ICMP, KeyAttr.ICMPV6):
        if bits & bit(kind):
            icmp = attrs[kind]
            m.put(is_mask, "tp_src", icmp[0])
            m.put(is_mask, "tp_dst", icmp[1])
            bits &= ~bit(kind)
    if bits & _B_ND:
        target, sll, tll = _ND.unpack(attrs[KeyAttr.ND])
        m.put(is_mask, "nd_target", target)
        m.put(is_mask, "arp_sha", sll)
        m.put(is_mask, "arp_tha", tll)
        bits &= ~_B_ND
    if bits:
        kinds = [k for k in range(KEY_ATTR_MAX + 1) if bits & bit(k)]
        raise einval(f"unknown key attributes {kinds}")


def _put_ip(m: _Builder, is_mask: bool, proto: int, tos: int, ttl: int, frag: int) -> None:
    m.put(is_mask, "ip_proto", proto)
    m.put(is_mask, "ip_tos", tos)
    m.put(is_mask, "ip_ttl", ttl)
    m.put(is_mask, "ip_frag", frag)


# --- the whole match ---------------------------------------------------------------

_L3_L4 = (
    _B_IPV4
    | _B_IPV6
    | _B_IPV6_EXTHDRS
    | _B_TCP
    | _B_TCP_FLAGS
    | _B_UDP
    | _B_SCTP
    | _B_ICMP
    | _B_ICMPV6
    | _B_ARP
    | _B_ND
    | _B_MPLS
)


def _validate(m: _Builder, key_bits: int, mask_bits: int) -> None:
    """match_validate: what a key must carry and what a mask may."""
    expected = _B_ETHERNET
    allowed = (key_bits & ~_L3_L4) | _B_TUNNEL | _B_IN_PORT | _B_ETHERTYPE
    eth_type = m.get(False, "eth_type")
    type_exact = m.get(True, "eth_type") == 0xFFFF
    proto_exact = m.get(True, "ip_proto") == 0xFF

    def need(kind: int, allow: bool) -> None:
        nonlocal expected, allowed
        expected |= bit(kind)
        if allow:
            allowed |= bit(kind)

    if eth_type in (ETH_P_ARP, ETH_P_RARP):
        need(KeyAttr.ARP, type_exact)
    if is_mpls_type(eth_type):
        need(KeyAttr.MPLS, type_exact)
    if eth_type in (ETH_P_IP, ETH_P_IPV6):
        ipv6 = eth_type == ETH_P_IPV6
        need(KeyAttr.IPV6 if ipv6 else KeyAttr.IPV4, type_exact)
        if ipv6 and type_exact:
            allowed |= _B_IPV6_EXTHDRS
        if m.get(False, "ip_frag") != 2:  # not a later fragment
            proto = m.get(False, "ip_proto")
            if proto == IPPROTO_UDP:
                need(KeyAttr.UDP, proto_exact)
            elif proto == IPPROTO_SCTP:
                need(KeyAttr.SCTP, proto_exact)
            elif proto == IPPROTO_TCP:
                need(KeyAttr.TCP, proto_exact)
                need(KeyAttr.TCP_FLAGS, proto_exact)
            elif proto == IPPROTO_ICMP and not ipv6:
                need(KeyAttr.ICMP, proto_exact)
            elif proto == IPPROTO_ICMPV6 and ipv6:
                need(KeyAttr.ICMPV6, proto_exact)
                if m.get(False, "tp_src") in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT):
                    need(KeyAttr.ND, m.get(True, "tp_src") == 0xFF)
    if key_bits & expected != expected:
        missing = [k for k in range(KEY_ATTR_MAX + 1) if expected & ~key_bits & bit(k)]
        raise einval(f"missing key attributes {missing}")
    if mask_bits & allowed != mask_bits:
        extra = [k for k in range(KEY_ATTR_MAX + 1) if mask_bits & ~allowed & bit(k)]
        raise einval(f"unexpected mask attributes {extra}")


# Which attributes nest others, per level, for building an exact mask.
_NESTS: dict[str, dict[int, str]] = {
    "key": {KeyAttr.ENCAP: "key", KeyAttr.TUNNEL: "tunnel", KeyAttr.NSH: "flat"},
    "tunnel": {TunnelKeyAttr.VXLAN_OPTS: "flat"},
    "flat": {},
}


def _exact_mask(data: bytes, level: str = "key") -> bytes:
    """A copy of key attributes with every payload byte set to 0xff (mask_set_nlattr)."""
    out = []
    nests = _NESTS[level]
    for kind, payload in iter_nested(data, "flow key"):
        inner = nests.get(kind)
        if inner is not None:
            value = _exact_mask(payload, inner)
        elif level == "key" and kind == KeyAttr.CT_STATE:
            value = _U32.pack(CT_SUPPORTED_MASK)
        else:
            value = b"\xff" * len(payload)
        size = 4 + len(value)
        out.append(_HDR.pack(size, kind) + value + b"\0" * (-size & 3))
    return b"".join(out)


_TUNNEL_FIELDS = (
    "tun_id",
    "tun_ipv4_src",
    "tun_ipv4_dst",
    "tun_ipv6_src",
    "tun_ipv6_dst",
    "tun_tos",
    "tun_ttl",
    "tun_flags",
    "tun_tp_src",
    "tun_tp_dst",
)


def parse_key_only(key_data: bytes) -> Match:
    """A flow key alone, to name an installed flow (its mask is left all zero)."""
    m = _Builder()
    key_bits = _parse_key(m, key_data)
    _validate(m, key_bits, 0)
    return Match(bytes(m.bufs[0]), bytes(m.bufs[1]), m.opts[0], m.opts[1])


def _parse_key(m: _Builder, key_data: bytes) -> int:
    attrs: dict[int, bytes] = {}
    key_bits = parse_key_attrs(key_data, attrs, 0, nz=False)
    key_bits = _parse_vlan(m, key_bits, attrs, False, nz=False)
    _parse_fields(m, key_bits, dict(attrs), False)
    return key_bits


def parse_match(key_data: bytes, mask_data: bytes | None) -> Match:
    """A flow's key and mask from their attributes; None for ``mask_data``: exact match."""
    m = _Builder()
    key_bits = _parse_key(m, key_data)
    if mask_data is None:
        mask_data = _exact_mask(key_data)
        if m.get(False, "tun_proto"):
            for name in _TUNNEL_FIELDS:
                m.fill(True, name, 0xFF)
        mask_bits = _parse_mask(m, mask_data)
    else:
        mask_bits = _remembered_mask(m, mask_data)
    _validate(m, key_bits, mask_bits)
    return Match(bytes(m.bufs[0]), bytes(m.bufs[1]), m.opts[0], m.opts[1])


def _parse_mask(m: _Builder, mask_data: bytes) -> int:
    """The mask's attributes into ``m``, whose key is parsed already; the mask's bits."""
    mask_attrs: dict[int, bytes] = {}
    mask_bits = parse_key_attrs(mask_data, mask_attrs, 0, nz=True)
    # Always match on the TCIs, whatever the mask says about VLANs.
    m.put(True, "vlan_tci", 0xFFFF)
    m.put(True, "cvlan_tci", 0xFFFF)
    mask_bits = _parse_vlan(m, mask_bits, mask_attrs, True, nz=True)
    _parse_fields(m, mask_bits, dict(mask_attrs), True)
    return mask_bits


# Parsed masks by their attributes and what their parsing reads of the key
# (its VLAN TCIs and tunnel options' length): a router's flows share a few.
_MASKS: dict[tuple[bytes, int, int, int], tuple[bytes, bytes, int]] = {}
_MASKS_MAX = 4096


def _remembered_mask(m: _Builder, mask_data: bytes) -> int:
    """`_parse_mask`, once per mask and key shape; a refused mask is parsed (and refused) again."""
    index = (
        bytes(mask_data),
        m.get(False, "vlan_tci"),
        m.get(False, "cvlan_tci"),
        m.get(False, "tun_opts_len"),
    )
    known = _MASKS.get(index)
    if known is None:
        mask_bits = _parse_mask(m, mask_data)
        if len(_MASKS) >= _MASKS_MAX:
            _MASKS.clear()
        _MASKS[index] = (bytes(m.bufs[1]), m.opts[1], mask_bits)
        return mask_bits
    m.bufs[1][:], m.opts[1], mask_bits = known
    return mask_bits


# Parsed execute keys: a router executes every miss's packet with the same
# few (its input port, and nothing else).
_METADATA_KEYS: dict[bytes, tuple[bytes, bytes]] = {}
_METADATA_KEYS_MAX = 4096


def parse_metadata_key(key_data: bytes) -> tuple[bytes, bytes]:
    """The metadata of a packet to execute (ovs_nla_get_flow_metadata).

    Returns a flat key with only the metadata fields set, and the tunnel
    options.  The rest of the attributes is length-checked and ignored: the
    packet itself says what it is.  Parsed once per encoding (a refused one
    each time).
    """
    known = _METADATA_KEYS.get(key_data)
    if known is None:
        if len(_METADATA_KEYS) >= _METADATA_KEYS_MAX:
            _METADATA_KEYS.clear()
        known = _METADATA_KEYS[bytes(key_data)] = _parse_metadata_key(key_data)
    return known


def _parse_metadata_key(key_data: bytes) -> tuple[bytes, bytes]:
    m = _Builder()
    attrs: dict[int, bytes] = {}
    bits = parse_key_attrs(key_data, attrs, 0, nz=False)
    m.put(False, "in_port", DP_MAX_PORTS)
    parse_metadata(m, bits, attrs, False)
    return bytes(m.bufs[0]), m.opts[0]

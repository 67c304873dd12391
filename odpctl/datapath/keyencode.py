"""Flat keys back into netlink attributes, in the kernel's order and shape.

`put_key` follows ``__ovs_nla_put_key`` of the Linux datapath: every metadata
attribute is always present (recirc_id, dp_hash, priority, skb_mark and the
conntrack fields, zero or not), the structure (VLAN nesting, which layer-3
and layer-4 attributes appear) comes from one key (``sw``) and the values
from another (``out``), so that a mask is written in the shape of its flow's
masked key.  What goes out is what the kernel would send, attribute for
attribute, as checked against the kernel in the user-mode-linux test bed.
"""

from __future__ import annotations

import struct

from odpctl.datapath.layout import (
    AF_INET,
    AF_INET6,
    DP_MAX_PORTS,
    ETH_P_802_2,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    META_SIZE,
    ND_NEIGHBOR_ADVERT,
    ND_NEIGHBOR_SOLICIT,
    TUN_CSUM,
    TUN_DF,
    TUN_GENEVE_OPT,
    TUN_KEY,
    TUN_OAM,
    TUN_VXLAN_OPT,
    ZERO16,
    Key,
    unpack,
)
from odpctl.netlink.attrs import attr, attr_be16, attr_be32, attr_be64, attr_u16, attr_u32
from odpctl.odp.keyspec import KEY_SPECS
from odpctl.odp.uapi import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_RARP,
    KeyAttr,
    TunnelKeyAttr,
    VxlanExt,
)

_U8 = struct.Struct("B")
_U32 = struct.Struct("=I")
_BE32 = struct.Struct("!I")
_IPV4 = struct.Struct(KEY_SPECS[KeyAttr.IPV4].fmt)
_IPV6 = struct.Struct(KEY_SPECS[KeyAttr.IPV6].fmt)
_PORTS = struct.Struct(KEY_SPECS[KeyAttr.TCP].fmt)  # UDP and SCTP alike
_ARP = struct.Struct(KEY_SPECS[KeyAttr.ARP].fmt)
_ICMP = struct.Struct(KEY_SPECS[KeyAttr.ICMP].fmt)

_VLAN_TYPES = (ETH_P_8021Q, ETH_P_8021AD)
_FRAG_LATER = 2


def put_tunnel(t: Key, opts: bytes, opts_len: int, proto: int) -> bytes:
    """The nested OVS_TUNNEL_KEY_ATTR_* of ``t``'s tunnel fields (ip_tun_to_nlattr).

    ``opts_len`` and ``proto`` come from the key that gives the shape.
    """
    flags = t.tun_flags
    out = []
    if flags & TUN_KEY:
        out.append(attr_be64(TunnelKeyAttr.ID, t.tun_id))
    if proto == AF_INET:
        if t.tun_ipv4_src:
            out.append(attr_be32(TunnelKeyAttr.IPV4_SRC, t.tun_ipv4_src))
        if t.tun_ipv4_dst:
            out.append(attr_be32(TunnelKeyAttr.IPV4_DST, t.tun_ipv4_dst))
    elif proto == AF_INET6:
        if t.tun_ipv6_src != ZERO16:
            out.append(attr(TunnelKeyAttr.IPV6_SRC, t.tun_ipv6_src))
        if t.tun_ipv6_dst != ZERO16:
            out.append(attr(TunnelKeyAttr.IPV6_DST, t.tun_ipv6_dst))
    if t.tun_tos:
        out.append(attr(TunnelKeyAttr.TOS, _U8.pack(t.tun_tos)))
    out.append(attr(TunnelKeyAttr.TTL, _U8.pack(t.tun_ttl)))
    if flags & TUN_DF:
        out.append(attr(TunnelKeyAttr.DONT_FRAGMENT, b""))
    if flags & TUN_CSUM:
        out.append(attr(TunnelKeyAttr.CSUM, b""))
    if t.tun_tp_src:
        out.append(attr_be16(TunnelKeyAttr.TP_SRC, t.tun_tp_src))
    if t.tun_tp_dst:
        out.append(attr_be16(TunnelKeyAttr.TP_DST, t.tun_tp_dst))
    if flags & TUN_OAM:
        out.append(attr(TunnelKeyAttr.OAM, b""))
    if opts_len and opts:
        if flags & TUN_GENEVE_OPT:
            out.append(attr(TunnelKeyAttr.GENEVE_OPTS, opts[-opts_len:]))
        elif flags & TUN_VXLAN_OPT:
            gbp = _BE32.unpack(opts[-4:])[0]
            out.append(attr(TunnelKeyAttr.VXLAN_OPTS, attr_u32(VxlanExt.GBP, gbp)))
    return b"".join(out)


def put_key(sw: Key, out: Key, opts: bytes, is_mask: bool) -> bytes:
    """The OVS_KEY_ATTR_* attributes of ``out`` in the shape of ``sw``.

    ``opts`` are ``out``'s tunnel options.  For a flow key, ``sw`` and
    ``out`` are the same key; for a mask, ``sw`` is the masked key.
    """
    return _put_metadata(sw, out, opts, is_mask) + _put_frame(sw, out, is_mask)


# The metadata attributes of keys, by the metadata and tunnel options: every
# packet from one port (or one tunnel peer) has the same, as have the flows
# a router installs for them.
_METADATA: dict[tuple[bytes, bytes], bytes] = {}
_METADATA_MAX = 4096


def put_flat_key(flat: bytes, opts: bytes) -> bytes:
    """``put_key(k, k, opts, False)`` of a flat key ``k`` (a packet's, a flow's), its
    metadata encoded once."""
    k = unpack(flat)
    index = (bytes(flat[:META_SIZE]), bytes(opts))
    metadata = _METADATA.get(index)
    if metadata is None:
        if len(_METADATA) >= _METADATA_MAX:
            _METADATA.clear()
        metadata = _METADATA[index] = _put_metadata(k, k, opts, False)
    return metadata + _put_frame(k, k, False)


def _put_metadata(sw: Key, out: Key, opts: bytes, is_mask: bool) -> bytes:
    """The attributes of what the packet does not carry: recirculation, tunnel, port, marks."""
    parts = [
        attr_u32(KeyAttr.RECIRC_ID, out.recirc_id),
        attr_u32(KeyAttr.DP_HASH, out.dp_hash),
        attr_u32(KeyAttr.PRIORITY, out.priority),
    ]
    if sw.tun_proto or is_mask:
        parts.append(attr(KeyAttr.TUNNEL, put_tunnel(out, opts, sw.tun_opts_len, sw.tun_proto)))
    if sw.in_port == DP_MAX_PORTS:
        if is_mask and out.in_port == 0xFFFF:
            parts.append(attr_u32(KeyAttr.IN_PORT, 0xFFFFFFFF))
    else:
        parts.append(attr_u32(KeyAttr.IN_PORT, (0xFFFF0000 if is_mask else 0) | out.in_port))
    parts.append(attr_u32(KeyAttr.SKB_MARK, out.skb_mark))
    parts.append(attr_u32(KeyAttr.CT_STATE, out.ct_state))
    parts.append(attr_u32(KeyAttr.CT_MARK, out.ct_mark))
    parts.append(attr(KeyAttr.CT_LABELS, out.ct_labels))
    return b"".join(parts)


def _put_frame(sw: Key, out: Key, is_mask: bool) -> bytes:
    """The attributes of the frame's headers, Ethernet on."""
    parts = [attr(KeyAttr.ETHERNET, out.eth_src + out.eth_dst)]
    # Each VLAN header opens an ENCAP whose content goes on a new list.
    stack: list[list[bytes]] = []
    truncated = False
    if sw.vlan_tci or sw.eth_type in _VLAN_TYPES:
        parts.append(attr_be16(KeyAttr.ETHERTYPE, 0xFFFF if is_mask else out.vlan_tpid))
        parts.append(attr_be16(KeyAttr.VLAN, out.vlan_tci))
        stack.append(parts)
        parts = []
        if not sw.vlan_tci:
            truncated = True
        elif sw.cvlan_tci or sw.eth_type in _VLAN_TYPES:
            parts.append(attr_be16(KeyAttr.ETHERTYPE, 0xFFFF if is_mask else out.cvlan_tpid))
            parts.append(attr_be16(KeyAttr.VLAN, out.cvlan_tci))
            stack.append(parts)
            parts = []
            if not sw.cvlan_tci:
                truncated = True
    if not truncated:
        _put_payload(sw, out, is_mask, parts)
    while stack:
        inner = b"".join(parts)
        parts = stack.pop()
        parts.append(attr(KeyAttr.ENCAP, inner))
    return b"".join(parts)


def _put_payload(sw: Key, out: Key, is_mask: bool, parts: list[bytes]) -> None:
    """The EtherType and what follows it, for the innermost Ethernet header."""
    eth_type = sw.eth_type
    if eth_type == ETH_P_802_2:
        # 802.2 frames have no EtherType attribute in a key; a mask says 0xffff.
        if is_mask and out.eth_type:
            parts.append(attr_be16(KeyAttr.ETHERTYPE, out.eth_type))
        return
    parts.append(attr_be16(KeyAttr.ETHERTYPE, out.eth_type))
    if eth_type in _VLAN_TYPES:
        return  # a third VLAN tag: nothing more is known
    if eth_type == ETH_P_IP:
        parts.append(
            attr(
                KeyAttr.IPV4,
                _IPV4.pack(
                    out.ipv4_src, out.ipv4_dst, out.ip_proto, out.ip_tos, out.ip_ttl, out.ip_frag
                ),
            )
        )
    elif eth_type == ETH_P_IPV6:
        parts.append(
            attr(
                KeyAttr.IPV6,
                _IPV6.pack(
                    out.ipv6_src,
                    out.ipv6_dst,
                    out.ipv6_label,
                    out.ip_proto,
                    out.ip_tos,
                    out.ip_ttl,
                    out.ip_frag,
                ),
            )
        )
        parts.append(attr_u16(KeyAttr.IPV6_EXTHDRS, out.ipv6_exthdrs))
    elif eth_type in (ETH_P_ARP, ETH_P_RARP):
        parts.append(
            attr(
                KeyAttr.ARP,
                _ARP.pack(out.ipv4_src, out.ipv4_dst, out.ip_proto, out.arp_sha, out.arp_tha),
            )
        )
    elif eth_type in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        parts.append(attr(KeyAttr.MPLS, _BE32.pack(out.mpls_lse)))
    if eth_type not in (ETH_P_IP, ETH_P_IPV6) or sw.ip_frag == _FRAG_LATER:
        return
    proto = sw.ip_proto
    if proto == IPPROTO_TCP:
        parts.append(attr(KeyAttr.TCP, _PORTS.pack(out.tp_src, out.tp_dst)))
        parts.append(attr_be16(KeyAttr.TCP_FLAGS, out.tcp_flags))
    elif proto == IPPROTO_UDP:
        parts.append(attr(KeyAttr.UDP, _PORTS.pack(out.tp_src, out.tp_dst)))
    elif proto == IPPROTO_SCTP:
        parts.append(attr(KeyAttr.SCTP, _PORTS.pack(out.tp_src, out.tp_dst)))
    elif proto == IPPROTO_ICMP and eth_type == ETH_P_IP:
        parts.append(attr(KeyAttr.ICMP, _ICMP.pack(out.tp_src & 0xFF, out.tp_dst & 0xFF)))
    elif proto == IPPROTO_ICMPV6 and eth_type == ETH_P_IPV6:
        parts.append(attr(KeyAttr.ICMPV6, _ICMP.pack(out.tp_src & 0xFF, out.tp_dst & 0xFF)))
        if sw.tp_src in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT):
            parts.append(attr(KeyAttr.ND, out.nd_target + out.arp_sha + out.arp_tha))

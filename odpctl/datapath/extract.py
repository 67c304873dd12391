"""Flow key extraction: what a packet's bytes say, as the kernel's key_extract.

`extract` reads an Ethernet frame and returns the packet part of a flat key
(`odpctl.datapath.layout.PACKET_STRUCT`): MACs, up to two VLAN tags (the
TCI with VLAN_CFI set, as the kernel keeps it), the EtherType (802.2 and
SNAP frames too), then ARP, MPLS, IPv4 or IPv6 (with extension headers and
fragments) and TCP, UDP, SCTP, ICMP or ICMPv6 with neighbour discovery.
Truncated or malformed headers zero what they would have set, exactly
where the kernel does, so that the same packet gets the same key from both
datapaths.
"""

from __future__ import annotations

import struct

from odpctl.datapath.layout import (
    ETH_P_802_2,
    ETH_P_802_3_MIN,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    ND_NEIGHBOR_ADVERT,
    ND_NEIGHBOR_SOLICIT,
    PACKET_STRUCT,
    ZERO6,
    ZERO16,
)
from odpctl.odp.uapi import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_RARP,
    IPV6_EXT_HEADERS,
    NEXTHDR_AUTH,
    NEXTHDR_DEST,
    NEXTHDR_FRAGMENT,
    NEXTHDR_HOP,
    NEXTHDR_NONE,
    NEXTHDR_ROUTING,
    VLAN_CFI,
)

_pack = PACKET_STRUCT.pack
_BE16 = struct.Struct("!H").unpack_from
_BE32 = struct.Struct("!I").unpack_from
_IPV4 = struct.Struct("!BBHHHBBHII").unpack_from  # ver_ihl tos len id frag ttl proto csum src dst
_PORTS = struct.Struct("!HH").unpack_from
_ARP = struct.Struct("!HHBBH").unpack_from

FRAG_NONE = 0
FRAG_FIRST = 1
FRAG_LATER = 2

_VLAN_TYPES = (ETH_P_8021Q, ETH_P_8021AD)

# The OFPIEH12_* bits of OVS_KEY_ATTR_IPV6_EXTHDRS.
EH_NONEXT = 1 << 0
EH_AUTH = 1 << 2
EH_DEST = 1 << 3
EH_FRAG = 1 << 4
EH_ROUTER = 1 << 5
EH_HOP = 1 << 6
EH_UNREP = 1 << 7
EH_UNSEQ = 1 << 8

ND_OPT_SOURCE_LL_ADDR = 1
ND_OPT_TARGET_LL_ADDR = 2

# The packet part of the key of a frame too short to have an Ethernet header.
EMPTY = _pack(
    ZERO6,
    ZERO6,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ZERO16,
    ZERO16,
    0,
    0,
    ZERO6,
    ZERO6,
    ZERO16,
    0,
    0,
    0,
    0,
)


def extract(d: bytes | bytearray | memoryview, off: int = 0) -> bytes:
    """The packet part of the flow key of the Ethernet frame at ``d[off:]``."""
    n = len(d)
    if n - off < 14:
        return EMPTY
    dst = bytes(d[off : off + 6])
    src = bytes(d[off + 6 : off + 12])
    p = off + 12
    vlan_tpid = vlan_tci = cvlan_tpid = cvlan_tci = 0
    (t,) = _BE16(d, p)
    if t in _VLAN_TYPES and n - p >= 6:
        vlan_tpid = t
        vlan_tci = _BE16(d, p + 2)[0] | VLAN_CFI
        p += 4
        (t,) = _BE16(d, p)
        if t in _VLAN_TYPES and n - p >= 6:
            cvlan_tpid = t
            cvlan_tci = _BE16(d, p + 2)[0] | VLAN_CFI
            p += 4
            (t,) = _BE16(d, p)
    p += 2
    if t < ETH_P_802_3_MIN:
        t, p = _llc(d, p, n)
    if t == ETH_P_IP:
        l3 = _ipv4(d, p, n)
    elif t == ETH_P_IPV6:
        l3 = _ipv6(d, p, n)
    elif t in (ETH_P_ARP, ETH_P_RARP):
        l3 = _arp(d, p, n)
    elif t in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
        lse = _BE32(d, p)[0] if n - p >= 4 else 0
        l3 = (0, 0, 0, 0, 0, 0, ZERO16, ZERO16, 0, 0, ZERO6, ZERO6, ZERO16, lse, 0, 0, 0)
    else:
        l3 = _NO_L3
    return _pack(src, dst, vlan_tpid, vlan_tci, cvlan_tpid, cvlan_tci, t, *l3)


# ip_proto tos ttl frag ipv4_src ipv4_dst ipv6_src ipv6_dst label exthdrs
# sha tha nd_target mpls tp_src tp_dst tcp_flags
_NO_L3 = (0, 0, 0, 0, 0, 0, ZERO16, ZERO16, 0, 0, ZERO6, ZERO6, ZERO16, 0, 0, 0, 0)


def _llc(d: bytes | bytearray | memoryview, p: int, n: int) -> tuple[int, int]:
    """An 802.3 length field: the SNAP EtherType if there is one, else 802.2."""
    if n - p < 8:
        return ETH_P_802_2, p
    if d[p] != 0xAA or d[p + 1] != 0xAA or d[p + 3] or d[p + 4] or d[p + 5]:
        return ETH_P_802_2, p
    (t,) = _BE16(d, p + 6)
    return (t, p + 8) if t >= ETH_P_802_3_MIN else (ETH_P_802_2, p + 8)


def _l4(
    d: bytes | bytearray | memoryview, p: int, n: int, proto: int, icmp: int
) -> tuple[int, int, int]:
    """tp_src, tp_dst and tcp_flags of the transport header at ``p``."""
    left = n - p
    if proto == IPPROTO_TCP:
        if left >= 20:
            doff = (d[p + 12] >> 4) * 4
            if doff >= 20 and left >= doff:
                sport, dport = _PORTS(d, p)
                return sport, dport, _BE16(d, p + 12)[0] & 0x0FFF
        return 0, 0, 0
    if proto == IPPROTO_UDP:
        if left >= 8:
            sport, dport = _PORTS(d, p)
            return sport, dport, 0
        return 0, 0, 0
    if proto == IPPROTO_SCTP:
        if left >= 12:
            sport, dport = _PORTS(d, p)
            return sport, dport, 0
        return 0, 0, 0
    if proto == icmp and left >= 8:
        return d[p], d[p + 1], 0
    return 0, 0, 0


def _ipv4(d: bytes | bytearray | memoryview, p: int, n: int) -> tuple[object, ...]:
    if n - p < 20:
        return _NO_L3
    ver_ihl, tos, _len, _id, frag_off, ttl, proto, _csum, src, dst = _IPV4(d, p)
    ihl = (ver_ihl & 0x0F) * 4
    if ihl < 20 or n - p < ihl:
        return _NO_L3
    if frag_off & 0x1FFF:
        return (
            proto,
            tos,
            ttl,
            FRAG_LATER,
            src,
            dst,
            ZERO16,
            ZERO16,
            0,
            0,
            ZERO6,
            ZERO6,
            ZERO16,
            0,
            0,
            0,
            0,
        )
    frag = FRAG_FIRST if frag_off & 0x2000 else FRAG_NONE
    sport, dport, flags = _l4(d, p + ihl, n, proto, IPPROTO_ICMP)
    return (
        proto,
        tos,
        ttl,
        frag,
        src,
        dst,
        ZERO16,
        ZERO16,
        0,
        0,
        ZERO6,
        ZERO6,
        ZERO16,
        0,
        sport,
        dport,
        flags,
    )


def _arp(d: bytes | bytearray | memoryview, p: int, n: int) -> tuple[object, ...]:
    if n - p < 28:
        return _NO_L3
    hrd, pro, hln, pln, op = _ARP(d, p)
    if hrd != 1 or pro != ETH_P_IP or hln != 6 or pln != 4:
        return _NO_L3
    sha = bytes(d[p + 8 : p + 14])
    (sip,) = _BE32(d, p + 14)
    tha = bytes(d[p + 18 : p + 24])
    (tip,) = _BE32(d, p + 24)
    return (
        op if op <= 0xFF else 0,
        0,
        0,
        0,
        sip,
        tip,
        ZERO16,
        ZERO16,
        0,
        0,
        sha,
        tha,
        ZERO16,
        0,
        0,
        0,
        0,
    )


def _ipv6_exthdrs(d: bytes | bytearray | memoryview, p: int, n: int, nexthdr: int) -> int:
    """The OVS_KEY_ATTR_IPV6_EXTHDRS bits (the kernel's get_ipv6_ext_hdrs)."""
    bits = 0
    start = p + 40
    dest = rout = 0
    while nexthdr in IPV6_EXT_HEADERS:
        if nexthdr == NEXTHDR_NONE:
            return bits | EH_NONEXT
        if n - start < 2:
            break
        if nexthdr == NEXTHDR_AUTH:
            bits |= (EH_UNREP if bits & EH_AUTH else 0) | EH_AUTH
        elif nexthdr == NEXTHDR_HOP:
            bits |= (EH_UNREP if bits & EH_HOP else 0) | (EH_UNSEQ if start != p + 40 else 0)
            bits |= EH_HOP
        elif nexthdr == NEXTHDR_ROUTING:
            bits |= (EH_UNREP if rout >= 1 else 0) | EH_ROUTER
            rout += 1
        elif nexthdr == NEXTHDR_DEST:
            bits |= (EH_UNREP if dest >= 2 else 0) | EH_DEST
            dest += 1
        else:  # fragment
            bits |= (EH_UNREP if bits & EH_FRAG else 0) | EH_FRAG
        hdrlen = d[start + 1]
        if nexthdr == NEXTHDR_AUTH:
            size = (hdrlen + 2) << 2
        elif nexthdr == NEXTHDR_FRAGMENT:
            size = 8
        else:
            size = (hdrlen + 1) << 3
        nexthdr = d[start]
        start += size
    return bits


def _ipv6(d: bytes | bytearray | memoryview, p: int, n: int) -> tuple[object, ...]:
    if n - p < 40:
        return _NO_L3
    (first,) = _BE32(d, p)
    tclass = (first >> 20) & 0xFF
    label = first & 0xFFFFF
    nexthdr = d[p + 6]
    hlimit = d[p + 7]
    src = bytes(d[p + 8 : p + 24])
    dst = bytes(d[p + 24 : p + 40])
    exthdrs = _ipv6_exthdrs(d, p, n, nexthdr)
    # Walk the extension headers to the transport header (ipv6_find_hdr).
    start = p + 40
    frag = FRAG_NONE
    auth_seen = False
    while nexthdr in IPV6_EXT_HEADERS and nexthdr != NEXTHDR_NONE:
        if n - start < 2:
            # A truncated extension header: the kernel keeps the IP fields and
            # no transport ones (-EPROTO).
            return (
                NEXTHDR_NONE,
                tclass,
                hlimit,
                frag,
                0,
                0,
                src,
                dst,
                label,
                exthdrs,
                ZERO6,
                ZERO6,
                ZERO16,
                0,
                0,
                0,
                0,
            )
        if nexthdr == NEXTHDR_FRAGMENT:
            if n - start < 4:
                return (
                    NEXTHDR_NONE,
                    tclass,
                    hlimit,
                    FRAG_FIRST,
                    0,
                    0,
                    src,
                    dst,
                    label,
                    exthdrs,
                    ZERO6,
                    ZERO6,
                    ZERO16,
                    0,
                    0,
                    0,
                    0,
                )
            frag_off = _BE16(d, start + 2)[0] & ~0x7
            frag = FRAG_FIRST
            if frag_off:
                return (
                    NEXTHDR_FRAGMENT,
                    tclass,
                    hlimit,
                    FRAG_LATER,
                    0,
                    0,
                    src,
                    dst,
                    label,
                    exthdrs,
                    ZERO6,
                    ZERO6,
                    ZERO16,
                    0,
                    0,
                    0,
                    0,
                )
            size = 8
        elif nexthdr == NEXTHDR_AUTH:
            if auth_seen:
                break
            auth_seen = True
            size = (d[start + 1] + 2) << 2
        else:
            size = (d[start + 1] + 1) << 3
        nexthdr = d[start]
        start += size
    proto = nexthdr
    sport = dport = flags = 0
    target, sll, tll = ZERO16, ZERO6, ZERO6
    if proto == IPPROTO_ICMPV6:
        if n - start >= 8:
            sport, dport = d[start], d[start + 1]
            if dport == 0 and sport in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT):
                target, sll, tll = _nd(d, start, n)
    else:
        sport, dport, flags = _l4(d, start, n, proto, -1)
    return (
        proto,
        tclass,
        hlimit,
        frag,
        0,
        0,
        src,
        dst,
        label,
        exthdrs,
        sll,
        tll,
        target,
        0,
        sport,
        dport,
        flags,
    )


def _nd(d: bytes | bytearray | memoryview, p: int, n: int) -> tuple[bytes, bytes, bytes]:
    """Target and link-layer addresses of a neighbour solicitation or advertisement."""
    left = n - p
    if left < 24:
        return ZERO16, ZERO6, ZERO6
    target = bytes(d[p + 8 : p + 24])
    sll = tll = ZERO6
    left -= 24
    q = p + 24
    while left >= 8:
        opt_type = d[q]
        opt_len = d[q + 1] * 8
        if not opt_len or opt_len > left:
            break
        if opt_len == 8 and opt_type == ND_OPT_SOURCE_LL_ADDR:
            if sll != ZERO6:
                return ZERO16, ZERO6, ZERO6
            sll = bytes(d[q + 2 : q + 8])
        elif opt_len == 8 and opt_type == ND_OPT_TARGET_LL_ADDR:
            if tll != ZERO6:
                return ZERO16, ZERO6, ZERO6
            tll = bytes(d[q + 2 : q + 8])
        left -= opt_len
        q += opt_len
    return target, sll, tll


def signature(d: bytes | bytearray, off: int = 10) -> bytes | bytearray | None:
    """The bytes of a common frame that decide its flow key, or None if uncommon.

    For untagged IPv4 (no options) and IPv6 (no extension headers) carrying
    TCP, UDP or ICMP, a frame's key is a function of a few header fields
    alone: these, cut out and joined, key the exact-match cache without
    extracting the key at all.  The fields that change from packet to
    packet without changing the key (lengths, IDs, checksums, sequence
    numbers) are left out.  The frame lengths the kernel's header checks
    depend on are checked here, so equal signatures mean equal keys.
    """
    n = len(d) - off
    t = d[off + 12 : off + 14]
    if t == b"\x08\x00":
        if n < 34 or d[off + 14] != 0x45:
            return None
        proto = d[off + 23]
        if proto == 6:
            if n < 54 or n < 34 + (d[off + 46] >> 4) * 4 or d[off + 46] < 0x50:
                return None
            # MACs, type, tos, frag, ttl+proto, addresses+ports, data offset+flags
            return (
                d[off : off + 16]
                + d[off + 20 : off + 24]
                + d[off + 26 : off + 38]
                + d[off + 46 : off + 48]
            )
        if proto == 17 or proto == 1:
            if n < 42:
                return None
            # ICMP: type and code, not the checksum that follows them.
            end = off + 38 if proto == 17 else off + 36
            return d[off : off + 16] + d[off + 20 : off + 24] + d[off + 26 : end]
        return None
    if t == b"\x86\xdd":
        if n < 54:
            return None
        proto = d[off + 20]
        if proto == 6:
            if n < 74 or n < 54 + (d[off + 66] >> 4) * 4 or d[off + 66] < 0x50:
                return None
            # MACs, type, version+class+label, next header+hop limit, addresses, ports, flags
            return d[off : off + 18] + d[off + 20 : off + 58] + d[off + 66 : off + 68]
        if proto == 17:
            if n < 62:
                return None
            return d[off : off + 18] + d[off + 20 : off + 58]
        return None
    return None

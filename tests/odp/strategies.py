"""Hypothesis strategies for flow keys and masks, every attribute type included.

- `key_values(kind)`: one attribute's value, for any ``KeyAttr`` (ENCAP gives
  a nested `FlowKey`), `Unknown` for numbers the codec doesn't know.
- `flow_keys()`: whole keys in random attribute order, nested ``encap``
  included.  Every key round-trips through the binary codec
  (``decode_key(encode_key(k)) == k``) and through the exact text syntax
  (``parse_key(format_key(k))[0] == k``).
- `flow_matches()`: ``(key, mask)`` pairs that the masked text syntax carries
  without loss (``parse_key(format_key(k, m)) == (k, m)``): a field whose
  mask is zero has a zero key, no attribute is wholly wildcarded (except
  ``eth()``), and the shapes follow what OVS's parser produces.  As a pair
  of attribute lists they are also valid input for the binary codec.

The strategies build values directly, not from text, so that they test the
parser and the formatter against each other rather than against themselves.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

from hypothesis import strategies as st

from odpctl.odp.keys import (
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
)
from odpctl.odp.keyspec import BLOB, FLAG, TUNNEL_OPTS
from odpctl.odp.uapi import KeyAttr

K = KeyAttr
NATIVE = sys.byteorder

# Attribute numbers the codec doesn't know (TUNNEL_INFO is kernel-internal).
UNKNOWN_KINDS = st.one_of(st.just(0), st.just(int(K.TUNNEL_INFO)), st.integers(33, 0x3FFF))
# Tunnel attributes neither known to the codec nor PAD (which decode drops).
UNKNOWN_TUNNEL_KINDS = st.integers(18, 0x3FFF)
UNKNOWN_NSH_KINDS = st.integers(4, 0x3FFF)

KINDS: list[int] = [k for k in KeyAttr if k != K.TUNNEL_INFO]


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, (1 << bits) - 1)


u8, u16, u32, u64 = uint(8), uint(16), uint(32), uint(64)
mac = st.binary(min_size=6, max_size=6)
in6 = st.binary(min_size=16, max_size=16)


# --- exact values ----------------------------------------------------------------


@st.composite
def geneve_options(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        words = draw(st.integers(0, 31 if len(out) < 100 else 4))
        if len(out) + 4 + 4 * words > 252:
            break
        out += draw(u16).to_bytes(2, "big") + bytes((draw(u8), words))
        out += draw(st.binary(min_size=4 * words, max_size=4 * words))
    return out


@st.composite
def erspan_metadata(draw: st.DrawFn) -> bytes:
    """A struct erspan_metadata carrying only what the text has (ver, idx/dir/hwid)."""
    if draw(st.booleans()):
        return (1).to_bytes(4, NATIVE) + draw(u32).to_bytes(4, "big") + bytes(4)
    dir_, hwid = draw(uint(1)), draw(uint(6))
    return (2).to_bytes(4, NATIVE) + bytes(6) + bytes(((hwid >> 4), (hwid & 0xF) << 4 | dir_ << 3))


@st.composite
def tunnels(draw: st.DrawFn) -> Tunnel:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    # Every option of the spec, drawn by its format; the options with a syntax of
    # their own, by their own strategies.
    own = {"geneve": geneve_options(), "vxlan_gbp": uint(24), "erspan": erspan_metadata()}
    t = Tunnel()
    for opt in TUNNEL_OPTS:
        if opt.fmt == FLAG:
            setattr(t, opt.field, draw(st.booleans()))
        elif opt.field in own:
            setattr(t, opt.field, maybe(own[opt.field]))
        elif opt.fmt == BLOB:
            size = struct.calcsize(opt.fields_fmt)
            setattr(t, opt.field, maybe(st.binary(min_size=size, max_size=size)))
        elif opt.fmt.endswith("s"):
            setattr(t, opt.field, maybe(st.binary(min_size=opt.size, max_size=opt.size)))
        else:
            setattr(t, opt.field, maybe(uint(8 * opt.size)))
    kinds = draw(st.lists(UNKNOWN_TUNNEL_KINDS, unique=True, max_size=2))
    t.unknown = tuple((k, draw(st.binary(max_size=8))) for k in kinds)
    return t


@st.composite
def nshs(draw: st.DrawFn) -> Nsh:
    base = NshBase(
        draw(u8), draw(u8), draw(st.sampled_from([0, 1, 2, draw(u8)])), draw(u8), draw(u32)
    )
    md1 = None
    if base.mdtype == 1 or draw(st.booleans()):
        md1 = (draw(u32), draw(u32), draw(u32), draw(u32))
    nsh = Nsh(base=base, md1=md1, md2=draw(st.none() | st.binary(max_size=12)))
    kinds = draw(st.lists(UNKNOWN_NSH_KINDS, unique=True, max_size=2))
    nsh.unknown = tuple((k, draw(st.binary(max_size=8))) for k in kinds)
    return nsh


_VALUES: dict[int, st.SearchStrategy[Any]] = {
    K.PRIORITY: u32,
    K.IN_PORT: u32,
    K.ETHERNET: st.builds(Eth, mac, mac),
    K.VLAN: u16,
    K.ETHERTYPE: u16,
    K.IPV4: st.builds(Ipv4, u32, u32, u8, u8, u8, u8),
    K.IPV6: st.builds(Ipv6, in6, in6, uint(20), u8, u8, u8, u8),
    K.TCP: st.builds(Ports, u16, u16),
    K.UDP: st.builds(Ports, u16, u16),
    K.ICMP: st.builds(Icmp, u8, u8),
    K.ICMPV6: st.builds(Icmp, u8, u8),
    K.ARP: st.builds(Arp, u32, u32, u16, mac, mac),
    K.ND: st.builds(Nd, in6, mac, mac),
    K.SKB_MARK: u32,
    K.TUNNEL: tunnels(),
    K.SCTP: st.builds(Ports, u16, u16),
    K.TCP_FLAGS: u16,
    K.DP_HASH: u32,
    K.RECIRC_ID: u32,
    K.MPLS: st.lists(u32, min_size=1, max_size=3).map(tuple),
    K.CT_STATE: u32,
    K.CT_ZONE: u16,
    K.CT_MARK: u32,
    K.CT_LABELS: st.binary(min_size=16, max_size=16),
    K.CT_ORIG_TUPLE_IPV4: st.builds(CtTupleIpv4, u32, u32, u16, u16, u8),
    K.CT_ORIG_TUPLE_IPV6: st.builds(CtTupleIpv6, in6, in6, u16, u16, u8),
    K.NSH: nshs(),
    K.PACKET_TYPE: u32,
    K.ND_EXTENSIONS: st.builds(NdExtensions, u32, u8),
    K.IPV6_EXTHDRS: u16,
}


def key_values(kind: int, depth: int = 1) -> st.SearchStrategy[Any]:
    """A value for attribute ``kind``; unknown numbers give `Unknown` bytes."""
    if kind == K.ENCAP:
        return flow_keys(depth=depth - 1)
    strategy = _VALUES.get(kind)
    if strategy is None:
        return st.binary(max_size=16).map(Unknown)
    return strategy


@st.composite
def flow_keys(draw: st.DrawFn, depth: int = 1, max_attrs: int = 8) -> FlowKey:
    """A flow key: distinct attributes in random order, ``encap`` up to ``depth``."""
    kinds = [k for k in KINDS if depth > 0 or k != K.ENCAP]
    chosen: list[int] = draw(st.lists(st.sampled_from(kinds), unique=True, max_size=max_attrs))
    key = FlowKey()
    for kind in chosen:
        key[kind] = draw(key_values(kind, depth))
    for kind in draw(st.lists(UNKNOWN_KINDS, unique=True, max_size=2)):
        if kind not in key:
            key[kind] = draw(key_values(kind))
    return key


# --- matches: (key, mask) pairs -----------------------------------------------------


@st.composite
def masked(draw: st.DrawFn, bits: int, nonzero: bool = False) -> tuple[int, int]:
    """A field and its mask: full, partial or (unless ``nonzero``) zero with a zero key."""
    full = (1 << bits) - 1
    choices = [st.just(full), st.integers(1, full)]
    if not nonzero:
        choices.append(st.just(0))
    mask = draw(st.one_of(*choices))
    return (draw(uint(bits)) if mask else 0), mask


@st.composite
def masked_bytes(draw: st.DrawFn, size: int, nonzero: bool = False) -> tuple[bytes, bytes]:
    if size == 0:
        return b"", b""
    choices = [st.just(b"\xff" * size), st.binary(min_size=size, max_size=size)]
    if not nonzero:
        choices.append(st.just(bytes(size)))
    mask = draw(st.one_of(*choices))
    if nonzero and not any(mask):
        mask = b"\x01" + mask[1:]
    key = draw(st.binary(min_size=size, max_size=size)) if any(mask) else bytes(size)
    return key, mask


def _struct(cls: Any, *fields: st.SearchStrategy[tuple[Any, Any]]) -> st.SearchStrategy[Any]:
    """A NamedTuple key and mask from per-field (key, mask) strategies; not all-zero."""

    def build(pairs: tuple[tuple[Any, Any], ...]) -> tuple[Any, Any]:
        return cls(*(k for k, _ in pairs)), cls(*(m for _, m in pairs))

    def live(km: tuple[Any, Any]) -> bool:
        return any(any(f) if isinstance(f, bytes) else f for f in km[1])

    return st.tuples(*fields).map(build).filter(live)


A4 = masked(32)
P16 = masked(16)
M8 = masked(8)
MAC_M = masked_bytes(6)
IN6_M = masked_bytes(16)


@st.composite
def _scalar(draw: st.DrawFn, bits: int) -> tuple[int, int]:
    return draw(masked(bits, nonzero=True))


@st.composite
def _flags(draw: st.DrawFn, known: int, full_mask: int, bits: int) -> tuple[int, int]:
    """A flag set: exact (any value), or partly masked by known bits (value within mask)."""
    if draw(st.booleans()):
        return draw(uint(bits)), full_mask
    mask = draw(st.integers(1, known).filter(lambda m: m != known))
    return draw(uint(bits)) & mask, mask


@st.composite
def _ct_state(draw: st.DrawFn) -> tuple[int, int]:
    if draw(st.integers(0, 3)) == 0:
        # A mask with bits that have no name: printed as numbers.
        mask = draw(st.integers(0x100, 0xFFFFFFFE))
        return draw(u32), mask
    return draw(_flags(0xFF, 0xFFFFFFFF, 32))


@st.composite
def _vlan(draw: st.DrawFn) -> tuple[int, int]:
    return draw(u16), draw(u16) | 0x1000  # OVS's parser always matches CFI


@st.composite
def _mpls(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n = draw(st.integers(1, 3))
    keys = tuple(draw(u32) for _ in range(n))
    if draw(st.booleans()):
        return keys, (0xFFFFFFFF,) * n
    masks = tuple(draw(u32) for _ in range(n))
    if not any(masks):
        masks = (1, *masks[1:])
    return keys, masks


@st.composite
def _ipv4(draw: st.DrawFn) -> tuple[Ipv4, Ipv4]:
    key, mask = draw(_struct(Ipv4, A4, A4, M8, M8, M8, M8))
    return key, mask


@st.composite
def _ipv6(draw: st.DrawFn) -> tuple[Ipv6, Ipv6]:
    key, mask = draw(_struct(Ipv6, IN6_M, IN6_M, masked(20), M8, M8, M8, M8))
    return key, mask


@st.composite
def _nd_ext(draw: st.DrawFn) -> tuple[NdExtensions, NdExtensions]:
    # OVS prints nd_reserved as if it were always fully masked.
    opt, opt_m = draw(M8)
    return NdExtensions(draw(u32), opt), NdExtensions(0xFFFFFFFF, opt_m)


@st.composite
def _packet_type(draw: st.DrawFn) -> tuple[int, int]:
    (ns, ns_m), (pid, pid_m) = draw(P16), draw(P16)
    if not ns_m | pid_m:
        pid_m = 0xFFFF
    return ns << 16 | pid, ns_m << 16 | pid_m


@st.composite
def _ct_labels(draw: st.DrawFn) -> tuple[bytes, bytes]:
    return draw(masked_bytes(16, nonzero=True))


@st.composite
def _unknown(draw: st.DrawFn) -> tuple[Unknown, Unknown]:
    size = draw(st.integers(0, 12))
    if size == 0:
        return Unknown(b""), Unknown(b"")
    key, mask = draw(masked_bytes(size, nonzero=True))
    return Unknown(key), Unknown(mask)


@st.composite
def _tunnel(draw: st.DrawFn) -> tuple[Tunnel, Tunnel]:
    t, m = Tunnel(), Tunnel()

    def field(name: str, strategy: st.SearchStrategy[tuple[Any, Any]]) -> None:
        if draw(st.booleans()):
            k, mk = draw(strategy)
            setattr(t, name, k)
            setattr(m, name, mk)

    for opt in TUNNEL_OPTS:
        if opt.fmt == FLAG or opt.nested is not None or opt.field in ("geneve", "erspan"):
            continue  # below: their text has rules of its own
        if opt.fmt == BLOB:
            fmt = struct.Struct(opt.fields_fmt)
            if draw(st.booleans()):
                pairs = [
                    draw(masked(8 * struct.calcsize("!" + code)))
                    for code in opt.fields_fmt.lstrip("!=<>@")
                ]
                setattr(t, opt.field, fmt.pack(*(k for k, _ in pairs)))
                setattr(m, opt.field, fmt.pack(*(mk for _, mk in pairs)))
        elif opt.fmt.endswith("s"):
            field(opt.field, masked_bytes(opt.size, nonzero=True))
        else:
            field(opt.field, masked(8 * opt.size, nonzero=True))
    if draw(st.booleans()):
        (gid, gid_m), (gfl, gfl_m) = draw(P16), draw(M8)
        t.vxlan_gbp, m.vxlan_gbp = gfl << 16 | gid, gfl_m << 16 | gid_m
    if draw(st.booleans()):
        t.geneve, m.geneve = draw(_geneve())
    if draw(st.booleans()):
        t.erspan, m.erspan = draw(_erspan())
    t.ipv4_info_bridge = m.ipv4_info_bridge = draw(st.booleans())
    kinds = draw(st.lists(UNKNOWN_TUNNEL_KINDS, unique=True, max_size=2))
    for kind in kinds:
        size = draw(st.integers(0, 6))
        data, mask = draw(masked_bytes(size))
        t.unknown += ((kind, data),)
        m.unknown += ((kind, mask),)
    # Flags: a flag set in the key must be matched, unless all four are.
    m.df, m.csum, m.oam = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    all_matched = t.tun_id is not None and m.df and m.csum and m.oam
    t.df = draw(st.booleans()) and (m.df or all_matched)
    t.csum = draw(st.booleans()) and (m.csum or all_matched)
    t.oam = draw(st.booleans()) and (m.oam or all_matched)
    return t, m


@st.composite
def _geneve(draw: st.DrawFn) -> tuple[bytes, bytes]:
    key = mask = b""
    for _ in range(draw(st.integers(0, 3))):
        words = draw(st.integers(0, 31 if len(key) < 100 else 4))
        if len(key) + 4 + 4 * words > 252:
            break
        (cls, cls_m), (typ, typ_m) = draw(P16), draw(M8)
        len_m = draw(st.sampled_from([0x1F, draw(st.integers(1, 0x1E))]))
        data, data_m = draw(masked_bytes(4 * words, nonzero=True))
        key += cls.to_bytes(2, "big") + bytes((typ, words)) + data
        mask += cls_m.to_bytes(2, "big") + bytes((typ_m, len_m)) + data_m
    return key, mask


@st.composite
def _erspan(draw: st.DrawFn) -> tuple[bytes, bytes]:
    if draw(st.booleans()):
        idx, idx_m = draw(u32), draw(u32)
        key = (1).to_bytes(4, NATIVE) + idx.to_bytes(4, "big") + bytes(4)
        return key, b"\xff" * 4 + idx_m.to_bytes(4, "big") + b"\xff" * 4
    (dir_, dir_m), (hwid, hwid_m) = draw(masked(1)), draw(masked(6))
    key = (2).to_bytes(4, NATIVE) + bytes(6) + bytes((hwid >> 4, (hwid & 0xF) << 4 | dir_ << 3))
    mask = b"\xff" * 10 + bytes((0xFC | hwid_m >> 4, (hwid_m & 0xF) << 4 | dir_m << 3 | 7))
    return key, mask


@st.composite
def _nsh(draw: st.DrawFn) -> tuple[Nsh, Nsh]:
    (flags, flags_m), (ttl, ttl_m), (mdtype, mdtype_m), (np_, np_m) = (
        draw(M8),
        draw(M8),
        draw(M8),
        draw(M8),
    )
    (spi, spi_m), (si, si_m) = draw(masked(24)), draw(M8)
    key = Nsh(base=NshBase(flags, ttl, mdtype, np_, spi << 8 | si))
    mask = Nsh(base=NshBase(flags_m, ttl_m, mdtype_m, np_m, spi_m << 8 | si_m))
    if mdtype == 1 or draw(st.booleans()):
        ctx = [draw(masked(32)) for _ in range(4)]
        if mdtype != 1 and not any(m for _, m in ctx):
            ctx[0] = (ctx[0][0], 0xFFFFFFFF)
        key.md1 = (ctx[0][0], ctx[1][0], ctx[2][0], ctx[3][0])
        mask.md1 = (ctx[0][1], ctx[1][1], ctx[2][1], ctx[3][1])
    if draw(st.booleans()):
        size = draw(st.integers(0, 8))
        key.md2, mask.md2 = draw(masked_bytes(size, nonzero=True))
    for kind in draw(st.lists(UNKNOWN_NSH_KINDS, unique=True, max_size=2)):
        size = draw(st.integers(0, 6))
        data, dm = draw(masked_bytes(size))
        key.unknown += ((kind, data),)
        mask.unknown += ((kind, dm),)
    return key, mask


_MATCHES: dict[int, st.SearchStrategy[tuple[Any, Any]]] = {
    K.PRIORITY: _scalar(32),
    K.IN_PORT: _scalar(32),
    K.ETHERNET: st.tuples(MAC_M, MAC_M).map(
        lambda p: (Eth(p[0][0], p[1][0]), Eth(p[0][1], p[1][1]))
    ),
    K.VLAN: _vlan(),
    K.ETHERTYPE: _scalar(16),
    K.IPV4: _ipv4(),
    K.IPV6: _ipv6(),
    K.TCP: _struct(Ports, P16, P16),
    K.UDP: _struct(Ports, P16, P16),
    K.ICMP: _struct(Icmp, M8, M8),
    K.ICMPV6: _struct(Icmp, M8, M8),
    K.ARP: _struct(Arp, A4, A4, P16, MAC_M, MAC_M),
    K.ND: _struct(Nd, IN6_M, MAC_M, MAC_M),
    K.SKB_MARK: _scalar(32),
    K.TUNNEL: _tunnel(),
    K.SCTP: _struct(Ports, P16, P16),
    K.TCP_FLAGS: _flags(0xFFF, 0xFFFF, 16),
    K.DP_HASH: _scalar(32),
    K.RECIRC_ID: u32.map(lambda v: (v, 0xFFFFFFFF)),  # recirc_id takes no mask
    K.MPLS: _mpls(),
    K.CT_STATE: _ct_state(),
    K.CT_ZONE: _scalar(16),
    K.CT_MARK: _scalar(32),
    K.CT_LABELS: _ct_labels(),
    K.CT_ORIG_TUPLE_IPV4: _struct(CtTupleIpv4, A4, A4, P16, P16, M8),
    K.CT_ORIG_TUPLE_IPV6: _struct(CtTupleIpv6, IN6_M, IN6_M, P16, P16, M8),
    K.NSH: _nsh(),
    K.PACKET_TYPE: _packet_type(),
    K.ND_EXTENSIONS: _nd_ext(),
    K.IPV6_EXTHDRS: _scalar(16),
}


def match_values(kind: int, depth: int = 1) -> st.SearchStrategy[tuple[Any, Any]]:
    """A (value, mask) pair for attribute ``kind`` that the masked text carries."""
    if kind == K.ENCAP:
        return flow_matches(depth=depth - 1)
    strategy = _MATCHES.get(kind)
    if strategy is None:
        return _unknown()
    return strategy


@st.composite
def flow_matches(draw: st.DrawFn, depth: int = 1, max_attrs: int = 8) -> tuple[FlowKey, FlowKey]:
    """A (key, mask) pair whose masked text reads back as the same pair."""
    kinds = [k for k in KINDS if depth > 0 or k != K.ENCAP]
    chosen: list[int] = draw(st.lists(st.sampled_from(kinds), unique=True, max_size=max_attrs))
    chosen += [k for k in draw(st.lists(UNKNOWN_KINDS, unique=True, max_size=2)) if k not in chosen]
    key, mask = FlowKey(), FlowKey()
    packet_type_seen = False
    for kind in chosen:
        value, m = draw(match_values(kind, depth))
        if kind == K.ETHERNET and packet_type_seen and m == Eth(bytes(6), bytes(6)):
            continue  # not printed at all after a packet_type (OVS's rule)
        packet_type_seen |= kind == K.PACKET_TYPE
        key[kind], mask[kind] = value, m
    return key, mask

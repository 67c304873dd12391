"""The text syntax of flow keys and masks, as ``ovs-dpctl`` prints and reads it.

``in_port(1),eth(src=00:01:02:03:04:05,dst=..),eth_type(0x0800),ipv4(...)``:
one ``name(...)`` per ``OVS_KEY_ATTR_*``, in the key's order, over the binary
model of `odpctl.odp.keys`.  The rules are Open vSwitch's (``lib/odp-util.c``:
``odp_flow_format``, ``format_odp_key_attr__``, ``odp_flow_from_string``):

Formatting
  - ``format_key(key)`` prints an exact key like ``odp_flow_key_format``:
    every attribute, every field.
  - ``format_key(key, mask)`` prints a match like ``ovs-dpctl dump-flows``:
    an attribute whose mask is all zero is left out (a wildcarded ``eth``
    still prints as ``eth()``: it tells an Ethernet packet from an L3 one),
    inside an attribute a field with a zero mask is left out, a fully-masked
    field prints as ``name=value`` and a partly-masked one as
    ``name=value/mask``.  A masked Ethertype without one in the key prints as
    a trailing ``eth_type(0/0x....)``.  ``tunnel``, ``nsh`` and ``encap``
    always print.
  - ``verbose=True`` prints wildcarded attributes and fields too (with
    ``/0`` masks), as ``dump-flows --more`` does.

Parsing
  ``parse_key`` is ``odp_flow_from_string`` with a mask buffer: each
  ``name(...)`` yields the attribute in the key *and* in the mask; a field
  written without ``/mask`` is exact, a field not written is zero in both
  (wildcarded), so ``eth()`` is "Ethernet, any addresses".  Attributes are
  separated by commas or white space; a leading ``ufid:<uuid>`` is skipped as
  OVS does.  Numbers are read like C's ``%i`` (``0x`` hex, leading-``0``
  octal, else decimal); out-of-range values are refused rather than wrapped.
  Errors are `odpctl.errors.ParseError` with the 1-based column.

Syntax beyond OVS (OVS has none, or prints text it cannot read back):
  - ``ipv6_exthdrs(0x..[/0x..])`` for OVS_KEY_ATTR_IPV6_EXTHDRS;
  - ``key<N>(<hex bytes>[/<hex mask>])`` for an attribute kept as `Unknown`
    (OVS prints ``key<N>(01 02 ..)`` and cannot read it; spaces between the
    bytes are accepted here too);
  - ``ct_tuple6`` prints ``src_port=``/``dst_port=`` like OVS, and reads those
    as well as ``tp_src=``/``tp_dst=`` (OVS reads only the latter);
  - ``nsh(...)`` reads ``ttl=`` (OVS prints it but cannot read it), prints
    the MD1 contexts whenever the key has them, and adds ``md2=0x<hex>`` and
    ``key<N>(...)`` for MD2 and unknown NSH attributes;
  - flag sets with bits that have no name print as numbers
    (``ct_state(0x100/0x100)``) instead of OVS's unreadable ``[Unknown]``,
    and numeric flags of any value in the field's width are accepted;
  - ``frag=`` accepts a number, and prints one for a value that is not
    no/first/later; a partial frag mask prints as ``frag=no/0x..``;
  - with no mask (an exact key), a field always prints; OVS leaves some out
    in non-verbose exact printing (``ct_mark()``), which no one can read;
  - with a mask, ``nsh`` prints MD1 contexts only when the key has MD1, each
    by its own mask (OVS prints ``c1=0x0,...`` as exact when the key lacks
    MD1, from a mask it initialises to all ones).

Masks here are `FlowKey` values as the kernel carries them: an attribute
absent from the mask is wildcarded (OVS generates an all-zero mask for it);
inside ``tunnel``/``nsh`` a field that is None in the mask is zero.  An
``encap`` whose mask is present but empty prints its inside as exact, as OVS
does.  For the tunnel syntax see `odpctl.odp.text.tunnel`.
"""

from __future__ import annotations

import operator
import sys
import uuid
from collections.abc import Callable
from typing import Any

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
from odpctl.odp.keyspec import FIXED, KEY_SPECS, KeySpec
from odpctl.odp.text import tunnel as _tun
from odpctl.odp.text.fields import (
    FF6,
    FF16,
    SYNTAX,
    U8,
    U16,
    U32,
    Z16,
    Field,
    addr4,
    addr6,
    eth,
    format_flags,
    format_flags_masked,
    num,
    parse_flags,
    scan_fields,
    skip_name,
    uint_field,
)
from odpctl.odp.text.memo import TextMemo
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.values import hex0, parse_cint, parse_hex_blob, parse_int_bytes
from odpctl.odp.uapi import VLAN_CFI, CtState, KeyAttr

__all__ = [
    "KEY_NAMES",
    "NSH_FIELD_NAMES",
    "format_key",
    "format_key_attr",
    "format_mpls_lse",
    "format_vlan_tci",
    "key_attr_name",
    "mask_is_full",
    "parse_key",
    "parse_key_attr",
]

_NATIVE = sys.byteorder
_DELIMITERS = ", \t\r\n"
MAX_DEPTH = 32  # OVS's MAX_ODP_NESTED

K = KeyAttr
KEY_NAMES: dict[int, str] = {kind: spec.name for kind, spec in KEY_SPECS.items()}
"""The text name of each attribute; others print as ``key<N>``."""

_NESTED = frozenset((K.ENCAP, K.TUNNEL, K.NSH))


def key_attr_name(kind: int) -> str:
    return KEY_NAMES.get(kind) or f"key{kind}"


CT_STATE_NAMES = {
    CtState.NEW: "new",
    CtState.ESTABLISHED: "est",
    CtState.RELATED: "rel",
    CtState.REPLY_DIR: "rpl",
    CtState.INVALID: "inv",
    CtState.TRACKED: "trk",
    CtState.SRC_NAT: "snat",
    CtState.DST_NAT: "dnat",
}
_CT_STATE_BITS = {name: int(bit) for bit, name in CT_STATE_NAMES.items()}
_CT_STATE_NAMES = {int(bit): name for bit, name in CT_STATE_NAMES.items()}

TCP_FLAG_NAMES = {
    0x001: "fin",
    0x002: "syn",
    0x004: "rst",
    0x008: "psh",
    0x010: "ack",
    0x020: "urg",
    0x040: "ece",
    0x080: "cwr",
    0x100: "ns",
    0x200: "[200]",
    0x400: "[400]",
    0x800: "[800]",
}
_TCP_FLAG_BITS = {name: bit for bit, name in TCP_FLAG_NAMES.items()}

_FRAG_NAMES = ("no", "first", "later")
_FRAG_VALUES = {"no": 0, "first": 1, "later": 2}


# --- formatting of single attributes -------------------------------------------
#
# Each formatter returns the text inside the parentheses.  ``m`` is None for
# an exact key (no mask at all), else the mask value, possibly all zero.

_Fmt = Callable[[Any, Any, bool], str]


def _fmt_u32(v: int, m: int | None, _verbose: bool) -> str:
    if m is None or m == 0xFFFFFFFF:
        return hex0(v)
    return f"{hex0(v)}/{hex0(m)}"


def _fmt_ct_mark(v: int, m: int | None, verbose: bool) -> str:
    if m is None or m == 0xFFFFFFFF:
        return hex0(v)
    if m or verbose:
        return f"{hex0(v)}/{hex0(m)}"
    return ""


def _fmt_ct_zone(v: int, m: int | None, verbose: bool) -> str:
    if m is None or m == 0xFFFF:
        return hex0(v)
    if m or verbose:
        return f"{hex0(v)}/{hex0(m)}"
    return ""


def _fmt_ct_state(v: int, m: int | None, verbose: bool) -> str:
    exact = m is None or m == 0xFFFFFFFF
    if verbose:
        return hex0(v) if exact else f"{hex0(v)}/{hex0(m or 0)}"
    if exact:
        return format_flags(_CT_STATE_NAMES, v)
    return format_flags_masked(_CT_STATE_NAMES, v, m or 0, 0xFFFFFFFF)


def _fmt_ct_labels(v: bytes, m: bytes | None, verbose: bool) -> str:
    value = hex0(int.from_bytes(v, _NATIVE))
    if m is None or m == FF16:
        return value
    if verbose or m != Z16:
        return f"{value}/{hex0(int.from_bytes(m, _NATIVE))}"
    return ""


def _fmt_in_port(v: int, m: int | None, _verbose: bool) -> str:
    if m is None or m == 0xFFFFFFFF:
        return str(v)
    return f"{v}/{hex0(m)}"


def _fmt_ethertype(v: int, m: int | None, _verbose: bool) -> str:
    if m is None or m == 0xFFFF:
        return f"0x{v:04x}"
    return f"0x{v:04x}/0x{m:04x}"


def _fmt_eth(v: Eth, m: Eth | None, verbose: bool) -> str:
    if m is None or m == _ETH_EXACT:  # the usual case, written out
        return f"src={v.src.hex(':')},dst={v.dst.hex(':')}"
    out: list[str] = []
    eth(out, "src", v.src, m.src, verbose)
    eth(out, "dst", v.dst, m.dst, verbose)
    return ",".join(out)


_ETH_EXACT = Eth(FF6, FF6)


def format_vlan_tci(tci: int, mask: int = 0xFFFF, verbose: bool = False) -> str:
    """``vid=..,pcp=..[,cfi=0]`` of an 802.1Q TCI, as OVS's ``format_vlan_tci``.

    Also what ``push_vlan(...)`` prints (with the default full mask).
    """
    out = []
    vid, vid_m = tci & 0xFFF, mask & 0xFFF
    if verbose or vid or vid_m:
        out.append(f"vid={vid}" if vid_m == 0xFFF else f"vid={vid}/0x{vid_m:x}")
    pcp, pcp_m = tci >> 13, (mask >> 13) & 7
    if verbose or pcp or pcp_m:
        out.append(f"pcp={pcp}" if pcp_m == 7 else f"pcp={pcp}/0x{pcp_m:x}")
    if not tci & VLAN_CFI:
        out.append("cfi=0")
    return ",".join(out)


def _fmt_vlan(v: int, m: int | None, verbose: bool) -> str:
    return format_vlan_tci(v, 0xFFFF if m is None else m, verbose)


def format_mpls_lse(lse: int) -> str:
    """``label=..,tc=..,ttl=..,bos=..`` of one label stack entry."""
    return f"label={lse >> 12},tc={(lse >> 9) & 7},ttl={lse & 0xFF},bos={(lse >> 8) & 1}"


def _fmt_mpls(v: tuple[int, ...], m: tuple[int, ...] | None, _verbose: bool) -> str:
    if m is None or all(x == 0xFFFFFFFF for x in m):
        return ",".join(map(format_mpls_lse, v))
    # OVS prints every mask when any is partial; tc and bos masks without 0x.
    m = (*m, *(0,) * (len(v) - len(m)))
    return ",".join(
        f"label={k >> 12}/0x{x >> 12:x},tc={(k >> 9) & 7}/{(x >> 9) & 7:x},"
        f"ttl={k & 0xFF}/0x{x & 0xFF:x},bos={(k >> 8) & 1}/{(x >> 8) & 1:x}"
        for k, x in zip(v, m, strict=False)
    )


def _frag(out: list[str], key: int, mask: int | None, _verbose: bool) -> None:
    name = _FRAG_NAMES[key] if key < 3 else hex0(key)
    if mask is None or mask == 0xFF:
        out.append(f"frag={name}")
    elif mask:
        out.append(f"frag={name}/{hex0(mask)}")


def _fmt_ipv4(v: Ipv4, m: Ipv4 | None, verbose: bool) -> str:
    out: list[str] = []
    if m is None:
        frag = _FRAG_NAMES[v.frag] if v.frag < 3 else hex0(v.frag)
        return (
            f"src={v.src >> 24}.{(v.src >> 16) & 255}.{(v.src >> 8) & 255}.{v.src & 255},"
            f"dst={v.dst >> 24}.{(v.dst >> 16) & 255}.{(v.dst >> 8) & 255}.{v.dst & 255},"
            f"proto={v.proto},tos={hex0(v.tos)},ttl={v.ttl},frag={frag}"
        )
    addr4(out, "src", v.src, m.src, verbose)
    addr4(out, "dst", v.dst, m.dst, verbose)
    num(out, "proto", v.proto, m.proto, 0xFF, verbose)
    num(out, "tos", v.tos, m.tos, 0xFF, verbose, hex0)
    num(out, "ttl", v.ttl, m.ttl, 0xFF, verbose)
    _frag(out, v.frag, m.frag, verbose)
    return ",".join(out)


def _fmt_ipv6(v: Ipv6, m: Ipv6 | None, verbose: bool) -> str:
    out: list[str] = []
    addr6(out, "src", v.src, None if m is None else m.src, verbose)
    addr6(out, "dst", v.dst, None if m is None else m.dst, verbose)
    if m is None or m.label & 0xFFFFF == 0xFFFFF:
        out.append(f"label={hex0(v.label)}")
    elif m.label or verbose:
        out.append(f"label={hex0(v.label)}/{hex0(m.label)}")
    if m is None:
        out.append(f"proto={v.proto},tclass={hex0(v.tclass)},hlimit={v.hlimit}")
        _frag(out, v.frag, None, verbose)
    else:
        num(out, "proto", v.proto, m.proto, 0xFF, verbose)
        num(out, "tclass", v.tclass, m.tclass, 0xFF, verbose, hex0)
        num(out, "hlimit", v.hlimit, m.hlimit, 0xFF, verbose)
        _frag(out, v.frag, m.frag, verbose)
    return ",".join(out)


def _fmt_ports(v: Ports, m: Ports | None, verbose: bool) -> str:
    if m is None:
        return f"src={v.src},dst={v.dst}"
    out: list[str] = []
    num(out, "src", v.src, m.src, 0xFFFF, verbose)
    num(out, "dst", v.dst, m.dst, 0xFFFF, verbose)
    return ",".join(out)


def _fmt_tcp_flags(v: int, m: int | None, _verbose: bool) -> str:
    if m is None or m & 0xFFF == 0xFFF:
        return format_flags(TCP_FLAG_NAMES, v)
    return format_flags_masked(TCP_FLAG_NAMES, v, m & 0xFFF, 0xFFF)


def _fmt_icmp(v: Icmp, m: Icmp | None, verbose: bool) -> str:
    if m is None:
        return f"type={v.type},code={v.code}"
    out: list[str] = []
    num(out, "type", v.type, m.type, 0xFF, verbose)
    num(out, "code", v.code, m.code, 0xFF, verbose)
    return ",".join(out)


def _fmt_arp(v: Arp, m: Arp | None, verbose: bool) -> str:
    out: list[str] = []
    if m is None:
        addr4(out, "sip", v.sip, None, verbose)
        addr4(out, "tip", v.tip, None, verbose)
        out.append(f"op={v.op},sha={v.sha.hex(':')},tha={v.tha.hex(':')}")
        return ",".join(out)
    addr4(out, "sip", v.sip, m.sip, verbose)
    addr4(out, "tip", v.tip, m.tip, verbose)
    num(out, "op", v.op, m.op, 0xFFFF, verbose)
    eth(out, "sha", v.sha, m.sha, verbose)
    eth(out, "tha", v.tha, m.tha, verbose)
    return ",".join(out)


def _fmt_nd(v: Nd, m: Nd | None, verbose: bool) -> str:
    out: list[str] = []
    addr6(out, "target", v.target, None if m is None else m.target, verbose)
    eth(out, "sll", v.sll, None if m is None else m.sll, verbose)
    eth(out, "tll", v.tll, None if m is None else m.tll, verbose)
    return ",".join(out)


def _fmt_nd_ext(v: NdExtensions, m: NdExtensions | None, verbose: bool) -> str:
    # OVS always prints the reserved word as if fully masked.
    out = [f"nd_reserved=0x{v.reserved:x}"]
    num(
        out, "nd_options_type", v.options_type, None if m is None else m.options_type, 0xFF, verbose
    )
    return ",".join(out)


def _fmt_ct_tuple4(v: CtTupleIpv4, m: CtTupleIpv4 | None, verbose: bool) -> str:
    out: list[str] = []
    addr4(out, "src", v.src, None if m is None else m.src, verbose)
    addr4(out, "dst", v.dst, None if m is None else m.dst, verbose)
    num(out, "proto", v.proto, None if m is None else m.proto, 0xFF, verbose)
    num(out, "tp_src", v.src_port, None if m is None else m.src_port, 0xFFFF, verbose)
    num(out, "tp_dst", v.dst_port, None if m is None else m.dst_port, 0xFFFF, verbose)
    return ",".join(out)


def _fmt_ct_tuple6(v: CtTupleIpv6, m: CtTupleIpv6 | None, verbose: bool) -> str:
    out: list[str] = []
    addr6(out, "src", v.src, None if m is None else m.src, verbose)
    addr6(out, "dst", v.dst, None if m is None else m.dst, verbose)
    num(out, "proto", v.proto, None if m is None else m.proto, 0xFF, verbose)
    num(out, "src_port", v.src_port, None if m is None else m.src_port, 0xFFFF, verbose)
    num(out, "dst_port", v.dst_port, None if m is None else m.dst_port, 0xFFFF, verbose)
    return ",".join(out)


def _fmt_packet_type(v: int, m: int | None, verbose: bool) -> str:
    if m is None:
        m = 0xFFFFFFFF
    out: list[str] = []
    num(out, "ns", v >> 16, m >> 16, 0xFFFF, verbose)
    num(out, "id", v & 0xFFFF, m & 0xFFFF, 0xFFFF, verbose, hex0)
    return ",".join(out)


def _fmt_exthdrs(v: int, m: int | None, _verbose: bool) -> str:
    if m is None or m == 0xFFFF:
        return f"0x{v:x}"
    return f"0x{v:x}/0x{m:x}"


def _fmt_tunnel(v: Tunnel, m: Tunnel | None, verbose: bool) -> str:
    return _tun.format_tunnel(v, m, verbose)


def _u8_masked(out: list[str], name: str, v: int, m: int) -> None:
    if m:
        out.append(f"{name}={v}" if m == 0xFF else f"{name}=0x{v:02x}/0x{m:02x}")


def _be32_masked(out: list[str], name: str, v: int, m: int) -> None:
    if m:
        out.append(f"{name}=0x{v:x}" if m == 0xFFFFFFFF else f"{name}=0x{v:x}/0x{m:08x}")


_NSH_BASE_ZERO = NshBase(0, 0, 0, 0, 0)


def _fmt_nsh(v: Nsh, m: Nsh | None, verbose: bool) -> str:
    b = v.base or _NSH_BASE_ZERO
    out: list[str] = []
    if m is None:
        out.append(
            f"flags={b.flags},ttl={b.ttl},mdtype={b.mdtype},np={b.np},"
            f"spi=0x{b.path_hdr >> 8:x},si={b.path_hdr & 0xFF}"
        )
        if v.md1 is not None or b.mdtype == 1:
            ctx = v.md1 or (0, 0, 0, 0)
            out.append(f"c1=0x{ctx[0]:x},c2=0x{ctx[1]:x},c3=0x{ctx[2]:x},c4=0x{ctx[3]:x}")
        if v.md2 is not None:
            out.append(f"md2=0x{v.md2.hex()}")
        out.extend(f"key{kind}({data.hex()})" for kind, data in v.unknown)
        return ",".join(out)
    mb = m.base or _NSH_BASE_ZERO
    _u8_masked(out, "flags", b.flags, mb.flags)
    _u8_masked(out, "ttl", b.ttl, mb.ttl)
    _u8_masked(out, "mdtype", b.mdtype, mb.mdtype)
    _u8_masked(out, "np", b.np, mb.np)
    spi_m = mb.path_hdr >> 8
    _be32_masked(out, "spi", b.path_hdr >> 8, 0xFFFFFFFF if spi_m == 0xFFFFFF else spi_m)
    _u8_masked(out, "si", b.path_hdr & 0xFF, mb.path_hdr & 0xFF)
    if v.md1 is not None:
        mctx = m.md1 or (0, 0, 0, 0)
        for i in range(4):
            _be32_masked(out, f"c{i + 1}", v.md1[i], mctx[i])
    if v.md2 is not None:
        md2_m = m.md2 if m.md2 is not None and len(m.md2) == len(v.md2) else bytes(len(v.md2))
        if md2_m == b"\xff" * len(v.md2):
            out.append(f"md2=0x{v.md2.hex()}")
        elif verbose or any(md2_m):
            out.append(f"md2=0x{v.md2.hex()}/0x{md2_m.hex()}")
    masks = dict(m.unknown)
    for kind, data in v.unknown:
        md = masks.get(kind, bytes(len(data)))
        if md == b"\xff" * len(data):
            out.append(f"key{kind}({data.hex()})")
        else:
            out.append(f"key{kind}({data.hex()}/{md.hex()})")
    return ",".join(out)


def _fmt_unknown(v: Unknown, m: Unknown | None, _verbose: bool) -> str:
    if m is None or m.data == b"\xff" * len(v.data):
        return v.data.hex()
    return f"{v.data.hex()}/{m.data.hex()}"


_FORMATTERS: dict[int, _Fmt] = {
    K.PRIORITY: _fmt_u32,
    K.SKB_MARK: _fmt_u32,
    K.DP_HASH: _fmt_u32,
    K.RECIRC_ID: _fmt_u32,
    K.CT_MARK: _fmt_ct_mark,
    K.CT_STATE: _fmt_ct_state,
    K.CT_ZONE: _fmt_ct_zone,
    K.CT_LABELS: _fmt_ct_labels,
    K.CT_ORIG_TUPLE_IPV4: _fmt_ct_tuple4,
    K.CT_ORIG_TUPLE_IPV6: _fmt_ct_tuple6,
    K.TUNNEL: _fmt_tunnel,
    K.IN_PORT: _fmt_in_port,
    K.PACKET_TYPE: _fmt_packet_type,
    K.ETHERNET: _fmt_eth,
    K.VLAN: _fmt_vlan,
    K.MPLS: _fmt_mpls,
    K.ETHERTYPE: _fmt_ethertype,
    K.IPV4: _fmt_ipv4,
    K.IPV6: _fmt_ipv6,
    K.TCP: _fmt_ports,
    K.UDP: _fmt_ports,
    K.SCTP: _fmt_ports,
    K.TCP_FLAGS: _fmt_tcp_flags,
    K.ICMP: _fmt_icmp,
    K.ICMPV6: _fmt_icmp,
    K.ARP: _fmt_arp,
    K.ND: _fmt_nd,
    K.ND_EXTENSIONS: _fmt_nd_ext,
    K.NSH: _fmt_nsh,
    K.IPV6_EXTHDRS: _fmt_exthdrs,
}

# (name + "(", formatter) per kind, looked up once per attribute.
_PREFIXED: dict[int, tuple[str, _Fmt]] = {
    k: (KEY_NAMES[k] + "(", f) for k, f in _FORMATTERS.items()
}

# All-zero masks, for attributes a mask leaves out (OVS generates these).
_ZERO: dict[int, Any] = {
    kind: spec.zero for kind, spec in KEY_SPECS.items() if spec.layout == FIXED
}


def _zero_mask(kind: int, value: Any) -> Any:
    if isinstance(value, Unknown):
        return Unknown(bytes(len(value.data)))
    if kind == K.MPLS:
        return (0,) * len(value)
    if kind == K.TUNNEL:
        return Tunnel()
    if kind == K.NSH:
        return Nsh()
    return _ZERO[kind]


def _is_wildcard(kind: int, m: Any) -> bool:
    """Whether a mask leaves every bit of its attribute free (OVS's rule)."""
    if isinstance(m, Unknown):
        # OVS never calls an attribute it doesn't know wildcarded; a flag-like
        # empty one is kept too (it only matches by being present).
        return bool(m.data) and not any(m.data)
    if kind == K.TCP_FLAGS:
        return not m & 0xFFF
    if kind == K.IPV6:
        return bool(m._replace(label=m.label & 0xFFFFF) == _ZERO[K.IPV6])
    if kind == K.MPLS:
        return not any(m)
    zero = _ZERO.get(kind)
    return m == zero if zero is not None else False


def _format_attr(kind: int, v: Any, m: Any, verbose: bool) -> str:
    if isinstance(v, Unknown):
        return f"key{kind}({_fmt_unknown(v, m if isinstance(m, Unknown) else None, verbose)})"
    if kind == K.ENCAP:
        if m is None or not v:
            return f"encap({_format_flow(v, None, verbose)})"
        if m is _ALL_WILD:
            return f"encap({_format_flow(v, FlowKey(), verbose)})"
        # An empty inner mask formats the inside as exact, as OVS does.
        return f"encap({_format_flow(v, m or None, verbose)})"
    entry = _PREFIXED.get(kind)
    if entry is None:
        raise ValueError(f"no text syntax for key attribute {kind} with value {v!r}")
    prefix, fmt = entry
    return f"{prefix}{fmt(v, m, verbose)})"


_ALL_WILD = FlowKey()  # identity sentinel: an ENCAP the mask leaves out


# Attributes whose mask is wildcarded exactly when it equals this zero value
# (the fast path of _attr_step); the others go through _is_wildcard.
_SIMPLE_ZERO: dict[int, Any] = {k: z for k, z in _ZERO.items() if k not in (K.TCP_FLAGS, K.IPV6)}
_CACHE = TextMemo()
_CACHE_VERBOSE = TextMemo()
_ETHERTYPE = int(K.ETHERTYPE)
_PACKET_TYPE = int(K.PACKET_TYPE)
_ETHERNET = int(K.ETHERNET)
_ENCAP = int(K.ENCAP)
_TUNNEL = int(K.TUNNEL)

# Attributes one f-string prints: looking their text up would cost as much
# (a tuple, its hash), and an Ethernet address seldom repeats in a dump.
_QUICK = frozenset(
    (K.IN_PORT, K.ETHERNET, K.ETHERTYPE, K.RECIRC_ID, K.PRIORITY, K.SKB_MARK, K.DP_HASH)
)

# The text of one attribute of a match: (kind, value, mask, verbose) -> text.
_Step = Callable[[int, Any, Any, bool], str]
_Steps = tuple[tuple[int, _Step], ...]
# A match's text compiled for its shape: (key, mask.get) -> text.
_Compiled = Callable[[FlowKey, Callable[[int], Any]], str]


def _format_flow(key: FlowKey, mask: FlowKey | None, verbose: bool) -> str:
    if mask is None:
        return _format_exact(key, verbose)
    return _format_match(key, mask, verbose)


def _format_match(key: FlowKey, mask: FlowKey, verbose: bool) -> str:
    # Which attributes print, and how, depends only on the key's attribute
    # list and on the mask's values for some of them (see _Shape), and a dump
    # has few of each (weave's 100,000 flows have two): each such shape is
    # planned once and compiled into one f-string.  Kept by those values,
    # immutable all, so a mask changed since finds no stale text.
    kinds = tuple(key)
    shapes = _SHAPES_VERBOSE if verbose else _SHAPES
    shape: _Shape | None = shapes.get(kinds)
    if shape is None:
        shape = shapes.put(kinds, _Shape(kinds))
    mget = mask.get
    try:
        values = shape.values(mask)
    except KeyError:  # the mask lacks one: None, as mask.get gives
        values = tuple(map(mget, shape.decisive))
    try:
        compiled: _Compiled | None = shape.compiled.get(values)
    except TypeError:  # an unhashable mask value (a bytearray): as planned, uncompiled
        steps, trailer = _plan(key, mask, verbose)
        texts = [step(kind, key[kind], mget(kind), verbose) for kind, step in steps]
        return ",".join(texts if trailer is None else [*texts, trailer])
    if compiled is None:
        compiled = shape.compiled.put(values, _compile(*_plan(key, mask, verbose), verbose))
    return compiled(key, mget)


class _Shape:
    """The compiled matches whose keys have one attribute list.

    ``decisive`` are the attributes whose mask `_plan` reads: each of the
    key's but tunnel, nsh and encap (always printed, their masks read only
    by their formatters), and the Ethertype if the key lacks it (a trailing
    ``eth_type(0/..)``); ``values`` gets their masks from a mask, at C
    speed (KeyError if one is missing).
    """

    __slots__ = ("compiled", "decisive", "values")

    def __init__(self, kinds: tuple[int, ...]) -> None:
        decisive = [kind for kind in kinds if kind not in _NESTED]
        if _ETHERTYPE not in kinds:
            decisive.append(_ETHERTYPE)  # so never empty
        self.decisive = tuple(decisive)
        self.values = operator.itemgetter(*decisive)
        self.compiled = TextMemo(64)


_SHAPES = TextMemo(256)
_SHAPES_VERBOSE = TextMemo(256)


def _format_exact(key: FlowKey, verbose: bool) -> str:
    parts: list[str] = []
    append = parts.append
    prefixed = _PREFIXED
    for kind, v in key.items():
        entry = prefixed.get(kind)
        if entry is None or type(v) is Unknown:
            append(_format_attr(kind, v, None, verbose))
        else:
            append(f"{entry[0]}{entry[1](v, None, verbose)})")
    return ",".join(parts)


def _plan(key: FlowKey, mask: FlowKey, verbose: bool) -> tuple[_Steps, str | None]:
    """The (kind, step) of each attribute of ``key`` that prints, and the
    text of a trailing masked Ethertype the key lacks (OVS's rule), if any."""
    steps = []
    for kind in key:
        step = _attr_step(kind, mask.get(kind), key, mask, verbose)
        if step is not None:
            steps.append((kind, step))
    trailer = None
    if _ETHERTYPE not in key:
        m = mask.get(_ETHERTYPE)
        if m is not None and type(m) is int:
            trailer = f"eth_type(0/0x{m:04x})"
    return tuple(steps), trailer


def _attr_step(kind: int, m: Any, key: FlowKey, mask: FlowKey, verbose: bool) -> _Step | None:
    """How attribute ``kind`` with mask ``m`` prints; None: not at all."""
    zero = _SIMPLE_ZERO.get(kind)
    if zero is not None and m is not None and type(m) is type(zero):
        if m != zero:
            return _quick_text if kind in _QUICK else _typed_text
    elif kind in _NESTED:
        return _tunnel_text if kind == _TUNNEL else _nested_text
    elif m is not None and not _is_wildcard(kind, m):
        return _format_attr
    # A wildcarded attribute.
    if verbose:
        return _wildcard_text
    if kind == _ETHERNET and not _packet_type_before(key, mask):
        # An Ethernet attribute says "this is an Ethernet frame" even
        # fully wildcarded, unless a packet_type already said what it is.
        return _eth_text
    return None


def _quick_text(kind: int, v: Any, m: Any, verbose: bool) -> str:
    prefix, fmt = _PREFIXED[kind]
    return f"{prefix}{fmt(v, m, verbose)})"


def _typed_text(kind: int, v: Any, m: Any, verbose: bool) -> str:
    # Dumps repeat many of these (ports, addresses, flags): cache them.
    cache = _CACHE_VERBOSE if verbose else _CACHE
    return cache.text((kind, v, m), _quick_text, kind, v, m, verbose)


def _nested_text(kind: int, v: Any, m: Any, verbose: bool) -> str:
    if m is None:
        m = _ALL_WILD if kind == _ENCAP else _zero_mask(kind, v)
    return _format_attr(kind, v, m, verbose)


def _tunnel_text(kind: int, v: Any, m: Any, verbose: bool) -> str:
    """`_nested_text` of a tunnel, less two calls (one per flow of weave's half)."""
    if type(v) is not Tunnel:
        return _nested_text(kind, v, m, verbose)
    return f"tunnel({_tun.format_tunnel(v, Tunnel() if m is None else m, verbose)})"


def _wildcard_text(kind: int, v: Any, m: Any, verbose: bool) -> str:
    return _format_attr(kind, v, _zero_mask(kind, v) if m is None else m, verbose)


def _eth_text(_kind: int, _v: Any, _m: Any, _verbose: bool) -> str:
    return "eth()"


def _compile(steps: _Steps, trailer: str | None, verbose: bool) -> _Compiled:
    """One f-string for a planned match: ``_quick_text`` written out (the
    name and the formatter bound), other steps called, constants inline.

    Every name the source uses is bound in its namespace (``p3``, ``f3``,
    ``s3`` for the third attribute), so only generated identifiers, integers
    and ``eth()`` appear in it.
    """
    names: dict[str, Any] = {}
    pieces = []
    for i, (kind, step) in enumerate(steps):
        k = int(kind)
        if step is _quick_text:
            names[f"p{i}"], names[f"f{i}"] = _PREFIXED[kind]
            pieces.append(f"{{p{i}}}{{f{i}(key[{k}], mget({k}), {verbose})}})")
        elif step is _eth_text:
            pieces.append("eth()")
        else:
            names[f"s{i}"] = step
            pieces.append(f"{{s{i}({k}, key[{k}], mget({k}), {verbose})}}")
    if trailer is not None:
        names["trailer"] = trailer
        pieces.append("{trailer}")
    # The code holds attribute numbers and step names only; values come in as arguments.
    compiled: _Compiled = eval(f"lambda key, mget: f'{','.join(pieces)}'", names)  # noqa: S307
    return compiled


def _packet_type_before(key: FlowKey, mask: FlowKey) -> bool:
    """Whether a packet_type that is not wildcarded comes before the Ethernet attribute."""
    for kind in key:
        if kind == _ETHERNET:
            return False
        if kind == _PACKET_TYPE:
            m = mask.get(kind)
            return m is not None and not _is_wildcard(kind, m)
    return False


def format_key(key: FlowKey, mask: FlowKey | None = None, *, verbose: bool | None = None) -> str:
    """A flow key, or a flow match (key and mask), as OVS's text.

    With no mask (or an empty one) every attribute prints in full, as
    ``odp_flow_key_format`` does; with a mask, as ``ovs-dpctl dump-flows``
    (``odp_flow_format``).  ``verbose`` defaults to True without a mask (so
    ``ct_state`` prints as a number, like OVS's exact printing) and False with
    one; True prints wildcarded attributes and fields too.  An empty key is
    the empty string.
    """
    if not mask:
        return _format_exact(key, True if verbose is None else verbose)
    return _format_match(key, mask, bool(verbose))


def format_key_attr(
    kind: int, value: Any, mask: Any | None = None, *, verbose: bool | None = None
) -> str:
    """One attribute as ``name(...)``: what ``set(...)`` prints inside.

    ``mask`` None is an exact value (OVS's ``set()`` action: verbose, so
    ``vlan`` shows ``vid=0`` too); with a mask, zero-masked fields are left
    out and partial ones print ``/mask`` (``set_masked``, non-verbose).
    Unlike `format_key`, the attribute prints even if its mask is all zero.

    ``set(tunnel(...))`` needs nothing special: in the reference OVS the
    action prints through the same formatter as the match (exact, so every
    present field and ``flags(...)`` show).
    """
    if verbose is None:
        verbose = mask is None
    if kind == K.ENCAP:
        return f"encap({_format_flow(value, mask or None, verbose)})"
    return _format_attr(kind, value, mask, verbose)


# --- parsing -------------------------------------------------------------------

_Parsed = tuple[Any, Any]
_AttrParser = Callable[[Scanner, int, int], _Parsed]  # (scanner, start column, depth)


def _single(field: Field, what: str, mask_allowed: bool = True) -> _AttrParser:
    """``name(value[/mask])``."""

    def parse(sc: Scanner, _start: int, _depth: int) -> _Parsed:
        value = sc.value(field.value, field.what, "/)")
        mask = field.full
        if sc.accept("/"):
            if not mask_allowed or field.mask is None:
                raise sc.error(f"{what}(...) takes no mask", sc.pos - 1)
            mask = sc.value(field.mask, field.what + " mask", ")")
        sc.expect(")", f"{what}(...)")
        return value, mask

    return parse


def _struct(spec: KeySpec) -> _AttrParser:
    """``name(field=value[/mask],...)`` into the spec's NamedTuple; unwritten fields are 0/0."""
    cls = spec.value
    table: dict[str, Field] = {}
    slots: dict[str, int] = {}
    for f in spec.fields:
        for text_name in (f.text, *f.aliases):
            table[text_name] = _SYNTAX[f.syntax]
            slots[text_name] = cls._fields.index(f.attr)
    zero = list(spec.zero)
    attr = spec.name

    def parse(sc: Scanner, _start: int, _depth: int) -> _Parsed:
        key = list(zero)
        mask = list(zero)
        for fname, value, m, _ in scan_fields(sc, attr, table):
            i = slots[fname]
            key[i] = value
            mask[i] = m
        return cls._make(key), cls._make(mask)

    return parse


def _parse_frag(text: str) -> int:
    value = _FRAG_VALUES.get(text)
    if value is None:
        if not text[:1].isdigit():
            raise ValueError("not no, first, later or a number")
        return parse_cint(text, 8)
    return value


_FRAG = Field(_parse_frag, "fragment type", 0xFF, U8.value)
_LABEL = uint_field(20, "IPv6 flow label")
# The reader of each field syntax of the spec.
_SYNTAX: dict[str, Field] = {**SYNTAX, "frag": _FRAG, "label": _LABEL}


def _parse_u128(text: str) -> bytes:
    return parse_int_bytes(text, 16)


_U128 = Field(_parse_u128, "128-bit number", FF16, _parse_u128)


def _parse_ct_label(sc: Scanner, start: int, depth: int) -> _Parsed:
    value, mask = _single(_U128, "ct_label")(sc, start, depth)
    # The text is a 128-bit number; the attribute holds it in host order.
    return (
        int.from_bytes(value, "big").to_bytes(16, _NATIVE),
        int.from_bytes(mask, "big").to_bytes(16, _NATIVE),
    )


def _flags_parser(by_name: dict[str, int], bits: int, what: str) -> _AttrParser:
    def parse(sc: Scanner, _start: int, _depth: int) -> _Parsed:
        flags, mask = parse_flags(sc, by_name, bits, what)
        sc.expect(")", f"{what}(...)")
        return flags, mask

    return parse


_VLAN_FIELDS = {
    "vid": (0, 12, uint_field(12, "VLAN id")),
    "pcp": (13, 3, uint_field(3, "VLAN priority")),
    "cfi": (12, 1, uint_field(1, "CFI bit")),
}
_VLAN_TABLE = {name: f for name, (_, _, f) in _VLAN_FIELDS.items()}


def _parse_vlan(sc: Scanner, _start: int, _depth: int) -> _Parsed:
    # OVS starts both TCI and mask with the CFI bit set: "vlan()" is a tagged frame.
    tci = mask = VLAN_CFI
    for fname, value, m, _ in scan_fields(sc, "vlan", _VLAN_TABLE):
        shift, bits, _ = _VLAN_FIELDS[fname]
        field = ((1 << bits) - 1) << shift
        tci = (tci & ~field) | value << shift
        mask = (mask & ~field) | m << shift
    return tci, mask


_MPLS_FIELDS = {
    "label": (12, uint_field(20, "MPLS label")),
    "tc": (9, uint_field(3, "MPLS traffic class")),
    "ttl": (0, uint_field(8, "MPLS TTL")),
    "bos": (8, uint_field(1, "MPLS bottom of stack")),
}
_MPLS_TABLE = {name: f for name, (_, f) in _MPLS_FIELDS.items()}


def _parse_mpls(sc: Scanner, _start: int, _depth: int) -> _Parsed:
    """Label stack entries; a field written again starts the next entry."""
    keys: list[int] = [0]
    masks: list[int] = [0]
    seen: set[str] = set()
    for fname, value, m, _ in scan_fields(sc, "mpls", _MPLS_TABLE, repeats=True):
        if fname in seen:
            keys.append(0)
            masks.append(0)
            seen = set()
        seen.add(fname)
        shift = _MPLS_FIELDS[fname][0]
        keys[-1] |= value << shift
        masks[-1] |= m << shift
    return tuple(keys), tuple(masks)


def _parse_packet_type(sc: Scanner, _start: int, _depth: int) -> _Parsed:
    ns = ns_m = pid = pid_m = 0
    for fname, value, m, _ in scan_fields(sc, "packet_type", {"ns": U16, "id": U16}):
        if fname == "ns":
            ns, ns_m = value, m
        else:
            pid, pid_m = value, m
    return ns << 16 | pid, ns_m << 16 | pid_m


def _parse_tunnel(sc: Scanner, _start: int, _depth: int) -> _Parsed:
    return _tun.parse_tunnel(sc)


_NSH_FIELDS: dict[str, Field] = {
    "flags": U8,
    "ttl": U8,
    "mdtype": U8,
    "np": U8,
    "spi": uint_field(24, "NSH service path id"),
    "si": U8,
    "c1": U32,
    "c2": U32,
    "c3": U32,
    "c4": U32,
}


# The names nsh(...) takes as ``name=value``.
NSH_FIELD_NAMES = (*_NSH_FIELDS, "md2")


def _parse_md2(text: str) -> bytes:
    if text[:2] not in ("0x", "0X"):
        raise ValueError("not 0x and hex digits")
    return parse_hex_blob(text[2:])


_MD2 = Field(_parse_md2, "MD2 metadata", None, _parse_md2)


def _parse_nsh(sc: Scanner, _start: int, _depth: int) -> _Parsed:
    vals: dict[str, tuple[Any, Any]] = {}
    md2: tuple[bytes, bytes] | None = None
    unknown: list[tuple[int, bytes]] = []
    unknown_m: list[tuple[int, bytes]] = []
    if not sc.accept(")"):
        while True:
            name, col = skip_name(sc)
            if name in _NSH_FIELDS and sc.accept("="):
                field = _NSH_FIELDS[name]
                value = sc.value(field.value, field.what)
                m = field.full
                if sc.accept("/"):
                    assert field.mask is not None
                    m = sc.value(field.mask, field.what + " mask")
                vals[name] = (value, m)
            elif name == "md2" and sc.accept("="):
                data = sc.value(_MD2.value, _MD2.what)
                dm = b"\xff" * len(data)
                if sc.accept("/"):
                    dm = sc.value(_MD2.value, _MD2.what + " mask")
                    if len(dm) != len(data):
                        raise sc.error("md2 mask and value differ in length")
                md2 = (data, dm)
            elif name.startswith("key") and name[3:].isdigit() and sc.accept("("):
                kind, data, dm = _parse_raw(sc, name, col)
                unknown.append((kind, data))
                unknown_m.append((kind, dm))
            elif name:
                raise sc.error(f"unknown field '{name}' in nsh(...)", col)
            else:
                found = repr(sc.peek()) if sc.peek() else "end of text"
                raise sc.error(f"expected a field name in nsh(...), found {found}")
            if sc.accept(","):
                if sc.accept(")"):
                    break
                continue
            if sc.accept(")"):
                break
            found = sc.peek()
            raise sc.error(
                f"expected ',' or ')' in nsh(...), found {repr(found) if found else 'end of text'}"
            )

    def get(name: str) -> tuple[int, int]:
        value, m = vals.get(name, (0, 0))
        return value, m

    (flags, flags_m), (ttl, ttl_m), (mdtype, mdtype_m), (np_, np_m) = (
        get("flags"),
        get("ttl"),
        get("mdtype"),
        get("np"),
    )
    (spi, spi_m), (si, si_m) = get("spi"), get("si")
    key = Nsh(base=NshBase(flags, ttl, mdtype, np_, spi << 8 | si))
    mask = Nsh(base=NshBase(flags_m, ttl_m, mdtype_m, np_m, spi_m << 8 | si_m))
    contexts = ("c1", "c2", "c3", "c4")
    if mdtype == 1 or any(c in vals for c in contexts):
        c = [get(name) for name in contexts]
        key.md1 = (c[0][0], c[1][0], c[2][0], c[3][0])
        mask.md1 = (c[0][1], c[1][1], c[2][1], c[3][1])
    if md2 is not None:
        key.md2, mask.md2 = md2
    if unknown:
        key.unknown, mask.unknown = tuple(unknown), tuple(unknown_m)
    return key, mask


def _parse_raw(sc: Scanner, name: str, start: int) -> tuple[int, bytes, bytes]:
    """The inside of ``key<N>(hex[/hex])``, after the ``(``."""
    kind = int(name[3:])
    if kind > 0x3FFF:
        raise sc.error(f"attribute number {kind} out of range", start)
    data = b""
    if sc.peek() not in ("/", ")"):
        data = sc.value(parse_hex_blob, "hex bytes", "/)")
    mask = b"\xff" * len(data)
    if sc.accept("/"):
        at = sc.pos
        mask = sc.value(parse_hex_blob, "hex bytes", ")") if sc.peek() != ")" else b""
        if len(mask) != len(data):
            raise sc.error(f"mask of {len(mask)} bytes for a value of {len(data)} bytes", at)
    sc.expect(")", f"{name}(...)")
    return kind, data, mask


def _parse_encap(sc: Scanner, _start: int, depth: int) -> _Parsed:
    key, mask = FlowKey(), FlowKey()
    _parse_sequence(sc, key, mask, depth + 1, nested=True)
    return key, mask


# The attributes whose text has a syntax of its own; the others are read as
# their spec says (one number, or named fields).
_OWN_PARSERS: dict[int, _AttrParser] = {
    K.CT_STATE: _flags_parser(_CT_STATE_BITS, 32, "ct_state"),
    K.CT_LABELS: _parse_ct_label,
    K.TUNNEL: _parse_tunnel,
    K.VLAN: _parse_vlan,
    K.MPLS: _parse_mpls,
    K.TCP_FLAGS: _flags_parser(_TCP_FLAG_BITS, 16, "tcp_flags"),
    K.PACKET_TYPE: _parse_packet_type,
    K.NSH: _parse_nsh,
    K.ENCAP: _parse_encap,
}


def _spec_parser(spec: KeySpec) -> _AttrParser:
    own = _OWN_PARSERS.get(spec.kind)
    if own is not None:
        return own
    if spec.fields:
        return _struct(spec)
    return _single(_SYNTAX[spec.syntax], spec.name, mask_allowed=spec.maskable)


_PARSERS: dict[str, tuple[int, _AttrParser]] = {
    spec.name: (kind, _spec_parser(spec)) for kind, spec in KEY_SPECS.items()
}


def _parse_attr(sc: Scanner, depth: int) -> tuple[int, Any, Any, int]:
    """One ``name(...)``: (kind, value, mask, start column)."""
    start = sc.pos
    if depth >= MAX_DEPTH:
        raise sc.error(f"attributes nested more than {MAX_DEPTH} deep")
    name, _ = skip_name(sc)
    entry = _PARSERS.get(name)
    if entry is None:
        if name.startswith("key") and name[3:].isdigit():
            if not sc.accept("("):
                raise sc.error(f"expected '(' after '{name}'")
            kind, data, mask = _parse_raw(sc, name, start)
            return kind, Unknown(data), Unknown(mask), start
        if not name:
            found = sc.peek()
            raise sc.error(
                f"expected a key attribute name, found {repr(found) if found else 'end of text'}"
            )
        raise sc.error(f"unknown key attribute '{name}'", start)
    if not sc.accept("("):
        found = sc.peek()
        raise sc.error(
            f"expected '(' after '{name}', found {repr(found) if found else 'end of text'}"
        )
    kind, parse = entry
    value, mask = parse(sc, start, depth)
    return kind, value, mask, start


def _skip_ufid(sc: Scanner) -> None:
    if not sc.looking_at("ufid:"):
        return
    start = sc.pos
    text = sc.text[start + 5 : start + 41]
    try:
        if len(text) != 36:
            raise ValueError
        uuid.UUID(text)
    except ValueError:
        raise sc.error("expected a UUID after 'ufid:'", start + 5) from None
    sc.pos = start + 41
    # ovs-dpctl writes "ufid:UUID,key..." and prints "ufid:UUID, key...".
    sc.accept(",")
    sc.accept(" ")


def _parse_sequence(sc: Scanner, key: FlowKey, mask: FlowKey, depth: int, nested: bool) -> None:
    text = sc.text
    size = len(text)
    while True:
        pos = sc.pos
        while pos < size and text[pos] in _DELIMITERS:
            pos += 1
        sc.pos = pos
        if pos >= size:
            if nested:
                raise sc.error("expected ')' to close encap(...), found end of text")
            return
        if nested and text[pos] == ")":
            sc.pos = pos + 1
            return
        if not nested:
            _skip_ufid(sc)
            if sc.at_end():
                return
        kind, value, m, start = _parse_attr(sc, depth)
        if kind in key:
            raise sc.error(f"duplicate attribute '{key_attr_name(kind)}'", start)
        key[kind] = value
        mask[kind] = m


def parse_key(text: str) -> tuple[FlowKey, FlowKey]:
    """Parse a flow key with its mask (see the module notes for the rules)."""
    sc = Scanner(text)
    key, mask = FlowKey(), FlowKey()
    _parse_sequence(sc, key, mask, 0, nested=False)
    return key, mask


def parse_key_attr(sc: Scanner) -> tuple[int, Any, Any | None]:
    """Read one ``name(...)`` at the cursor (for ``set(...)`` actions).

    Returns ``(kind, value, mask)``, with ``mask`` None when the mask is
    full (every bit of the attribute matched), which is OVS's test for
    turning ``set(...)`` into a plain ``set`` rather than ``set_masked``.
    Fields not written leave their mask zero, so ``set(ipv4(ttl=64))`` comes
    back with a mask.  IPv6 is always masked, as in OVS (its flow-label mask
    is 20 bits).  For ``tunnel`` (always a plain ``set`` in OVS) the mask is
    None when every field written is exact; ``flags(...)`` does not count.
    """
    kind, value, mask, _ = _parse_attr(sc, 0)
    return kind, value, (None if mask_is_full(kind, value, mask) else mask)


_FULL: dict[int, Any] = {
    kind: spec.full for kind, spec in KEY_SPECS.items() if spec.layout == FIXED
}


def mask_is_full(kind: int, value: Any, mask: Any) -> bool:
    """Whether ``mask`` matches every bit of ``value`` (see `parse_key_attr`)."""
    if isinstance(mask, Unknown):
        return mask.data == b"\xff" * len(mask.data)
    if kind == K.MPLS:
        return all(x == 0xFFFFFFFF for x in mask)
    if kind == K.TUNNEL:
        return _tun.tunnel_mask_is_exact(value, mask)
    if kind == K.NSH:
        if mask.base != NshBase(0xFF, 0xFF, 0xFF, 0xFF, 0xFFFFFFFF):
            return False
        if value.md1 is not None and mask.md1 != (0xFFFFFFFF,) * 4:
            return False
        if value.md2 is not None and mask.md2 != b"\xff" * len(value.md2):
            return False
        masks = dict(mask.unknown)
        return all(masks.get(k) == b"\xff" * len(d) for k, d in value.unknown)
    if kind == K.ENCAP:
        return all(mask_is_full(k, v, mask.get(k)) for k, v in value.items())
    full = _FULL.get(kind)
    return full is not None and mask == full

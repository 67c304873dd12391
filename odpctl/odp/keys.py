"""Flow keys and masks: typed values of ``OVS_KEY_ATTR_*`` and their binary codec.

A flow key is a `FlowKey`: an ordered mapping from `KeyAttr` to a value whose
type depends on the attribute (see `KEY_TYPES`).  A mask is a `FlowKey` of
the same shape whose values are bit masks, exactly as the kernel carries them
in ``OVS_FLOW_ATTR_MASK``: an attribute absent from the mask is wildcarded.

Order matters only for text: attributes are formatted in mapping order, which
is the order they arrived in (the kernel's) or were typed in.

Values are plain tuples and ints so that decoding a dump costs one
``struct.unpack`` per attribute:

- numbers (ports, marks, ids, addresses of IPv4) are ``int``;
- MAC and IPv6 addresses, conntrack labels and option blobs are ``bytes``;
- fixed structs are NamedTuples named after the kernel's ``struct ovs_key_*``;
- nested attributes are `Tunnel`, `Nsh` and (for ``ENCAP``) a `FlowKey`;
- an attribute this codec does not know is kept as `Unknown` raw bytes and
  encodes back unchanged.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import struct
from collections.abc import Callable
from typing import Any

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, iter_attrs
from odpctl.odp.keyspec import (
    BLOB,
    FIXED,
    FLAG,
    KEY_SPECS,
    TUNNEL_OPTS,
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
    _attr_name,
)
from odpctl.odp.uapi import KeyAttr, NshKeyAttr, TunnelKeyAttr

# The value types are the spec's (odpctl.odp.keyspec); this is where callers find them.
__all__ = [
    "KEY_TYPES",
    "MAX_ENCAP_DEPTH",
    "Arp",
    "CtTupleIpv4",
    "CtTupleIpv6",
    "Eth",
    "FlowKey",
    "Icmp",
    "Ipv4",
    "Ipv6",
    "Nd",
    "NdExtensions",
    "Nsh",
    "NshBase",
    "Ports",
    "Tunnel",
    "Unknown",
    "decode_key",
    "decode_key_at",
    "decode_tunnel",
    "encode_key",
    "encode_key_attr",
    "encode_masked_key_attr",
]


# --- binary codec ------------------------------------------------------------
#
# The flow codec must decode ~150k flow messages a second in pure Python, and
# a flow carries two keys (key and mask) of a dozen attributes each, so the
# per-attribute path is written out by hand:
#
# - decoding walks the attributes with integer arithmetic (no generator) and
#   unpacks fixed-size payloads in place (``unpack_from``, no slice), after
#   checking nla_len against the exact size the kernel uses;
# - encoding packs header, value and padding with one precompiled Struct per
#   attribute type (the header is constant for a fixed-size attribute);
# - a key whose exact byte layout was seen before is decoded by a decoder
#   compiled for that layout ("compiled shapes" below), in three unpack calls.
#
# Malformed input raises DecodeError (directly, or as struct.error/ValueError
# turned into DecodeError by decode_key); nothing else escapes.

_Decode = Callable[[bytes], Any]
_Encode = Callable[[Any], bytes]

_HDR = struct.Struct("=HH")
_HDR_UNPACK_FROM = _HDR.unpack_from
_NLA_TYPE_MASK = 0x3FFF

# Decoding modes of the fixed-size attributes.
_SCALAR = 0  # an integer: unpack_from(...)[0]
_STRUCT = 1  # a NamedTuple: make(unpack_from(...))
_VARIABLE = 2  # anything else: decoder(payload)


class _Fixed:
    """Codec of one fixed-size key attribute (an integer or a NamedTuple)."""

    __slots__ = (
        "byte_fields",
        "cls",
        "decode",
        "encode",
        "fmt",
        "kind",
        "mode",
        "pack",
        "size",
        "unpack_from",
    )

    def __init__(self, kind: int, fmt: str, cls: Any = None) -> None:
        if fmt[0] not in "@=<>!":
            fmt = "=" + fmt
        body = struct.Struct(fmt)
        self.fmt = fmt
        self.kind = kind
        self.size = body.size
        self.unpack_from = body.unpack_from
        self.cls = cls
        self.mode = _SCALAR if cls is None else _STRUCT
        # Header (constant: fixed type and length), value and padding in one
        # pack() call.  The header goes in as 4 raw bytes, so the value's
        # byte order does not touch it.
        pad = -body.size & 3
        self.pack = functools.partial(
            struct.Struct(f"{fmt[0]}4s{fmt[1:]}{pad}x").pack,
            _HDR.pack(body.size + 4, kind),
        )
        # struct pads or cuts an "Ns" field silently: a 5-byte MAC would go
        # out as 6 without a word, so byte fields are checked first.
        self.byte_fields = _byte_fields(fmt)
        # The (decode, encode) pair of _CODECS, payload in and payload out.
        unpack, pack_payload = body.unpack, body.pack
        if cls is None:
            self.decode = lambda data: unpack(data)[0]
            self.encode = pack_payload
        else:
            make = cls._make
            check = self.check

            def encode(value: Any) -> bytes:
                check(value)
                return pack_payload(*value)

            self.decode = lambda data: make(unpack(data))
            self.encode = encode

    def check(self, value: Any) -> None:
        for index, size in self.byte_fields:
            if len(value[index]) != size:
                raise ValueError(
                    f"{self.cls.__name__}.{self.cls._fields[index]} must be {size} bytes, "
                    f"not {len(value[index])}"
                )

    def fast_check(self) -> Callable[[Any], Any] | None:
        """`check` unrolled for the encode loop: true when the value is fine."""
        fields, fail = self.byte_fields, self.check
        if not fields:
            return None
        if len(fields) == 1:
            ((i, n),) = fields
            return lambda v: len(v[i]) == n or fail(v)
        if len(fields) == 2:
            (i, n), (j, m) = fields
            return lambda v: (len(v[i]) == n and len(v[j]) == m) or fail(v)
        (i, n), (j, m), (k, o) = fields  # Nd: the most a key struct has
        return lambda v: (len(v[i]) == n and len(v[j]) == m and len(v[k]) == o) or fail(v)


def _byte_fields(fmt: str) -> tuple[tuple[int, int], ...]:
    """(argument index, size) of each ``Ns`` field of a struct format."""
    out: list[tuple[int, int]] = []
    index = 0
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", fmt):
        if code == "x":
            continue
        if code == "s":
            out.append((index, int(count or 1)))
            index += 1
        else:
            index += int(count or 1)
    return tuple(out)


def _fixed_bytes(size: int) -> tuple[_Decode, _Encode]:
    def decode(data: bytes) -> bytes:
        if len(data) != size:
            raise ValueError(f"expected {size} bytes, got {len(data)}")
        return bytes(data)

    def encode(value: bytes) -> bytes:
        if len(value) != size:
            raise ValueError(f"expected {size} bytes, got {len(value)}")
        return bytes(value)

    return decode, encode


def _decode_mpls(data: bytes) -> tuple[int, ...]:
    if not data or len(data) % 4:
        raise ValueError(f"MPLS stack of {len(data)} bytes is not a whole number of labels")
    return struct.unpack(f"!{len(data) // 4}I", data)


def _encode_mpls(lses: tuple[int, ...]) -> bytes:
    return struct.pack(f"!{len(lses)}I", *lses)


def _short_header(what: str, off: int, end: int) -> DecodeError:
    return DecodeError(f"{what}: attribute at offset {off} has {end - off} bytes, header needs 4")


def _bad_length(what: str, nla_type: int, nla_len: int, off: int) -> DecodeError:
    return DecodeError(
        f"{what}: attribute type {nla_type & _NLA_TYPE_MASK} at offset {off} has bad length "
        f"{nla_len}"
    )


def _wrong_size(what: str, kind: int, got: int, want: int) -> DecodeError:
    return DecodeError(f"{what}: {_attr_name(kind)} of {got} bytes, expected {want}")


# --- tunnel ----------------------------------------------------------------------


# Decoding modes of the tunnel attributes.
_T_INT = 0  # fixed-size integer
_T_FLAG = 1  # presence is the information
_T_BYTES = 2  # raw bytes
_T_IN6 = 3  # 16-byte IPv6 address

# type -> (mode, payload size, unpack_from, Tunnel field), from the spec; VXLAN_OPTS
# (nested) is decoded on its own.
_TUNNEL_DECODE: dict[int, tuple[int, int, Any, str]] = {
    int(o.kind): (
        _T_FLAG
        if o.fmt == FLAG
        else _T_BYTES
        if o.fmt == BLOB
        else _T_IN6
        if o.fmt.endswith("16s")
        else _T_INT,
        max(o.size, 0),
        struct.Struct(o.fmt).unpack_from if o.fmt not in (FLAG, BLOB) else None,
        o.field,
    )
    for o in TUNNEL_OPTS
    if o.nested is None
}
(_VXLAN,) = (o for o in TUNNEL_OPTS if o.nested is not None)
_TUNNEL_VXLAN_OPTS = int(_VXLAN.kind)
_TUNNEL_PAD = int(TunnelKeyAttr.PAD)
_VXLAN_GBP = int(_VXLAN.nested)  # type: ignore[arg-type]
_VXLAN_UNPACK = struct.Struct(_VXLAN.fmt).unpack


def _decode_tunnel(data: bytes) -> Tunnel:
    t = Tunnel()
    unknown: list[tuple[int, bytes]] | None = None
    specs = _TUNNEL_DECODE
    unpack_hdr = _HDR_UNPACK_FROM
    end = len(data)
    off = 0
    while off < end:
        if end - off < 4:
            raise _short_header("tunnel key", off, end)
        nla_len, nla_type = unpack_hdr(data, off)
        nxt = off + nla_len
        if nla_len < 4 or nxt > end:
            raise _bad_length("tunnel key", nla_type, nla_len, off)
        kind = nla_type & _NLA_TYPE_MASK
        spec = specs.get(kind)
        if spec is not None:
            mode, size, unpack_from, name = spec
            if mode == _T_INT:
                if nla_len - 4 != size:
                    raise DecodeError(
                        f"tunnel key: {TunnelKeyAttr(kind).name} of {nla_len - 4} bytes, "
                        f"expected {size}"
                    )
                setattr(t, name, unpack_from(data, off + 4)[0])
            elif mode == _T_FLAG:
                setattr(t, name, True)
            elif mode == _T_BYTES:
                setattr(t, name, data[off + 4 : nxt])
            else:
                if nla_len != 20:
                    raise DecodeError(f"tunnel key: IPv6 address of {nla_len - 4} bytes")
                setattr(t, name, data[off + 4 : nxt])
        elif kind == _TUNNEL_VXLAN_OPTS:
            # Only a lone GBP extension (what the kernel sends) maps onto
            # vxlan_gbp; anything else is kept whole so that it round-trips.
            payload = data[off + 4 : nxt]
            exts = list(iter_attrs(payload))
            if len(exts) == 1 and exts[0][0] == _VXLAN_GBP:
                (t.vxlan_gbp,) = _VXLAN_UNPACK(exts[0][1])
            else:
                if unknown is None:
                    unknown = []
                unknown.append((kind, payload))
        elif kind != _TUNNEL_PAD:
            if unknown is None:
                unknown = []
            unknown.append((kind, data[off + 4 : nxt]))
        off = (nxt + 3) & ~3
    if unknown:
        t.unknown = tuple(unknown)
    return t


def _encode_in6(address: bytes) -> bytes:
    if len(address) != 16:
        raise ValueError(f"IPv6 address of {len(address)} bytes")
    return bytes(address)


def _tunnel_packer(kind: int, fmt: str) -> Callable[[int], bytes]:
    """pack(value) -> header + value + padding, for one fixed tunnel attribute."""
    size = struct.calcsize(fmt)
    s = struct.Struct(f"{fmt[0]}4s{fmt[1:]}{-size & 3}x")
    return functools.partial(s.pack, _HDR.pack(size + 4, kind))


def _compile_tunnel_encoder() -> Callable[[Tunnel], bytes]:
    """The tunnel encoder, written out from the spec: one test and one append per
    field, in the spec's order, packers bound as constants."""
    namespace: dict[str, Any] = {"_attr": attr, "_encode_in6": _encode_in6}
    lines = ["def encode(t):", "    out = []", "    append = out.append"]
    for o in TUNNEL_OPTS:
        name, kind = o.field, int(o.kind)
        if o.fmt == FLAG:
            namespace[f"_{name}"] = _HDR.pack(4, kind)
            lines += [f"    if t.{name}:", f"        append(_{name})"]
            continue
        lines.append(f"    if t.{name} is not None:")
        if o.fmt == BLOB:
            lines.append(f"        append(_attr({kind}, bytes(t.{name})))")
        elif o.fmt.endswith("16s"):
            lines.append(f"        append(_attr({kind}, _encode_in6(t.{name})))")
        elif o.nested is not None:
            # the outer header, then the one extension inside (header, value, padding)
            namespace[f"_{name}_hdr"] = _HDR.pack(8 + o.size + (-o.size & 3), kind)
            namespace[f"_{name}"] = _tunnel_packer(o.nested, o.fmt)
            lines.append(f"        append(_{name}_hdr + _{name}(t.{name}))")
        else:
            namespace[f"_{name}"] = _tunnel_packer(kind, o.fmt)
            lines.append(f"        append(_{name}(t.{name}))")
    lines += [
        "    if t.unknown:",
        "        out.extend(_attr(kind, bytes(payload)) for kind, payload in t.unknown)",
        "    return b''.join(out)",
    ]
    # The code is built from the spec's field names and numbers only, never from data.
    exec("\n".join(lines), namespace)  # noqa: S102 - see above: no data in the code
    encode: Callable[[Tunnel], bytes] = namespace["encode"]
    return encode


# Open vSwitch's order (tun_key_to_attr, the spec's); the kernel accepts any order.
_encode_tunnel = _compile_tunnel_encoder()


# --- NSH -------------------------------------------------------------------------

_NSH_BASE = struct.Struct("!BBBBI")
_NSH_MD1 = struct.Struct("!4I")


def _decode_nsh(data: bytes) -> Nsh:
    nsh = Nsh()
    unknown: list[tuple[int, bytes]] = []
    for kind, payload in iter_attrs(data):
        if kind == NshKeyAttr.BASE:
            nsh.base = NshBase._make(_NSH_BASE.unpack(payload))
        elif kind == NshKeyAttr.MD1:
            a, b, c, d = _NSH_MD1.unpack(payload)
            nsh.md1 = (a, b, c, d)
        elif kind == NshKeyAttr.MD2:
            nsh.md2 = bytes(payload)
        else:
            unknown.append((kind, bytes(payload)))
    if unknown:
        nsh.unknown = tuple(unknown)
    return nsh


def _encode_nsh(nsh: Nsh) -> bytes:
    out: list[bytes] = []
    if nsh.base is not None:
        out.append(attr(NshKeyAttr.BASE, _NSH_BASE.pack(*nsh.base)))
    if nsh.md1 is not None:
        out.append(attr(NshKeyAttr.MD1, _NSH_MD1.pack(*nsh.md1)))
    if nsh.md2 is not None:
        out.append(attr(NshKeyAttr.MD2, bytes(nsh.md2)))
    out.extend(attr(kind, bytes(payload)) for kind, payload in nsh.unknown)
    return b"".join(out)


# --- the attribute table -----------------------------------------------------------

# The fixed-size attributes whose value is a number or a NamedTuple (the spec's
# fmt and type); CT_LABELS, 16 bytes, is a fixed-size byte string.
_FIXED: dict[int, _Fixed] = {
    kind: _Fixed(kind, spec.fmt, spec.value if spec.value is not int else None)
    for kind, spec in KEY_SPECS.items()
    if spec.layout == FIXED and spec.value is not bytes
}

# The attributes that are not a fixed struct: payload in, payload out.
_VARIABLE_CODECS: dict[int, tuple[_Decode, _Encode]] = {
    KeyAttr.TUNNEL: (_decode_tunnel, _encode_tunnel),
    KeyAttr.MPLS: (_decode_mpls, _encode_mpls),
    KeyAttr.CT_LABELS: _fixed_bytes(KEY_SPECS[KeyAttr.CT_LABELS].size),
    KeyAttr.NSH: (_decode_nsh, _encode_nsh),
}

# One (decode, encode) pair per attribute type, payload in and payload out
# (no header): the whole codec, for generic code and tests.
_CODECS: dict[int, tuple[_Decode, _Encode]] = {
    **{kind: (f.decode, f.encode) for kind, f in _FIXED.items()},
    **_VARIABLE_CODECS,
}

# What the decode and encode loops dispatch on, by plain int type:
#   decode: (mode, payload size, unpack_from or decoder, NamedTuple maker)
#   encode: (mode, header+value packer or payload encoder, byte-field check)
_KEY_DECODE: dict[int, tuple[int, int, Any, Any]] = {}
_KEY_ENCODE: dict[int, tuple[int, Any, Any]] = {}
for _kind, _f in _FIXED.items():
    # tuple.__new__(cls, values) is what NamedTuple._make does, less a Python
    # frame and a length check that unpack_from's fixed format makes moot.
    _make = _f.cls and functools.partial(tuple.__new__, _f.cls)
    _KEY_DECODE[int(_kind)] = (_f.mode, _f.size, _f.unpack_from, _make)
    _KEY_ENCODE[int(_kind)] = (_f.mode, _f.pack, _f.fast_check())
for _kind, (_dec, _enc) in _VARIABLE_CODECS.items():
    _KEY_DECODE[int(_kind)] = (_VARIABLE, 0, _dec, None)
    _KEY_ENCODE[int(_kind)] = (_VARIABLE, _enc, None)
del _kind, _f, _dec, _enc, _make

# What each attribute's value is, for documentation and for generic code
# (property tests, the text codec) that needs to build values.
KEY_TYPES: dict[int, Any] = {kind: spec.value for kind, spec in KEY_SPECS.items()}

# How deep encap() may nest.  The kernel and Open vSwitch parse two VLAN
# tags (802.1ad + 802.1Q, so two levels); the bound keeps hostile input
# (a 64 KiB buffer holds 16,000 nested headers) from exhausting the stack.
MAX_ENCAP_DEPTH = 8

_ENCAP = int(KeyAttr.ENCAP)


# --- compiled shapes ------------------------------------------------------------
#
# The kernel writes every key and mask of a given kind of packet with the same
# attributes, in the same order, at the same offsets: a dump of 100,000 flows
# holds a handful of *shapes*.  The first time decode_key sees a shape it
# decodes it generically (above) and compiles a decoder for that exact byte
# layout: one Struct that reads every attribute header at once (a shape
# matches only when they all equal the ones it was compiled from), and one or
# two Structs (host and network byte order) that read every value at once.
# A match then costs three unpack calls and the construction of the result,
# instead of a dispatch and two unpack calls per attribute.
#
# The result is the same as the generic decoder's, attribute for attribute:
# a shape is compiled only from bytes the generic decoder accepted, only with
# attribute types whose decoding is a plain unpack of a fixed-size payload,
# and a match means every header is byte-for-byte the same.  Anything else
# (encap, unknown or variable-size attributes, a repeated type) stays on the
# generic path.  The number of shapes is bounded, so hostile input cannot
# grow it without limit.

_MAX_SHAPES = 256
_MAX_SHAPES_PER_SIZE = 8


class _Shape:
    """A compiled decoder for one exact attribute layout of a given size."""

    __slots__ = ("build", "expected", "headers")

    def __init__(
        self,
        headers: Callable[[bytes, int], tuple[int, ...]],
        expected: tuple[int, ...],
        build: Callable[[bytes, int], FlowKey],
    ) -> None:
        self.headers = headers
        self.expected = expected
        self.build = build


_SHAPES: dict[int, list[_Shape]] = {}
_shape_count = 0

# Tunnel attributes a shape can hold: type -> (struct format, Tunnel field);
# a format of "" is a flag.  PAD is passed over; others (options, unknown)
# stay generic.
_TUNNEL_SHAPE: dict[int, tuple[str, str]] = {
    int(o.kind): (o.fmt, o.field) for o in TUNNEL_OPTS if o.fmt != BLOB and o.nested is None
}
_CT_LABELS = int(KeyAttr.CT_LABELS)
_TUNNEL = int(KeyAttr.TUNNEL)
# Tunnel's fields in constructor order, and the default of each as source text
# (every default is a literal: None, False or ()).
_TUNNEL_FIELDS = tuple(f.name for f in dataclasses.fields(Tunnel))
_TUNNEL_FIELD_INDEX = {name: i for i, name in enumerate(_TUNNEL_FIELDS)}
_TUNNEL_DEFAULTS = {f.name: repr(f.default) for f in dataclasses.fields(Tunnel)}
assert all(
    ast.literal_eval(text) == getattr(Tunnel(), name) for name, text in _TUNNEL_DEFAULTS.items()
)


class _Layout:
    """Collects the headers and values of one byte layout while it is walked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.headers: list[int] = []  # offsets of nlattr headers
        # byte order -> [(offset, format body)], in offset order per order
        self.fields: dict[str, list[tuple[int, str]]] = {"=": [], "!": []}
        self.counts: dict[str, int] = {"=": 0, "!": 0}

    def value(self, offset: int, fmt: str) -> str:
        """Read ``fmt`` (byte order + body) at ``offset``; the expression(s) for it."""
        order, body = fmt[0], fmt[1:]
        # How many values the body unpacks to: "Ns" is one, "4I" four, "3x" none.
        n = 0
        for count, code in re.findall(r"(\d*)([a-zA-Z?])", body):
            if code != "x":
                n += 1 if code == "s" else int(count or 1)
        start = self.counts[order]
        self.counts[order] += n
        self.fields[order].append((offset, body))
        name = "n" if order == "=" else "b"
        return ", ".join(f"{name}[{i}]" for i in range(start, start + n))

    def struct_for(self, order: str, entries: list[tuple[int, str]]) -> struct.Struct:
        parts = []
        pos = 0
        for offset, body in entries:
            if offset > pos:
                parts.append(f"{offset - pos}x")
            parts.append(body)
            pos = offset + struct.calcsize("=" + body)
        return struct.Struct(order + "".join(parts))


def _compile_shape(data: bytes, off: int, end: int) -> _Shape | None:
    """A decoder for the layout of ``data[off:end]``, or None if it has no fixed shape."""
    layout = _Layout(end - off)
    items: list[str] = []
    seen: set[int] = set()
    unpack_hdr = _HDR_UNPACK_FROM
    pos = off
    while pos < end:
        nla_len, nla_type = unpack_hdr(data, pos)
        kind = nla_type & _NLA_TYPE_MASK
        if kind in seen:
            return None
        seen.add(kind)
        layout.headers.append(pos - off)
        fixed = _FIXED.get(kind)
        if fixed is not None:
            if nla_len - 4 != fixed.size:
                return None
            expr = layout.value(pos - off + 4, fixed.fmt)
            if fixed.cls is None:
                items.append(f"{kind}: {expr}")
            else:
                items.append(f"{kind}: _tuple_new(_{fixed.cls.__name__}, ({expr},))")
        elif kind == _CT_LABELS:
            if nla_len != 20:
                return None
            items.append(f"{kind}: {layout.value(pos - off + 4, '=16s')}")
        elif kind == _TUNNEL:
            tunnel = _compile_tunnel(layout, data, pos + 4, pos + nla_len, off)
            if tunnel is None:
                return None
            items.append(f"{kind}: {tunnel}")
        else:
            return None
        pos = (pos + nla_len + 3) & ~3
    if pos != end:
        return None  # the last attribute's padding is missing: leave it generic
    lines = ["def build(data, off):"]
    namespace: dict[str, Any] = {
        "_FlowKey": FlowKey,
        "_Tunnel": Tunnel,
        "_tuple_new": tuple.__new__,
        **{f"_{f.cls.__name__}": f.cls for f in _FIXED.values() if f.cls is not None},
    }
    for order, var in (("=", "n"), ("!", "b")):
        if layout.fields[order]:
            namespace[f"_unpack_{var}"] = layout.struct_for(order, layout.fields[order]).unpack_from
            lines.append(f"    {var} = _unpack_{var}(data, off)")
    lines.append(f"    return _FlowKey({{{', '.join(items)}}})")
    # The code is built from attribute types and field names only, never from data.
    exec("\n".join(lines), namespace)  # noqa: S102 - see above: no data in the code
    headers = layout.struct_for("=", [(h, "HH") for h in layout.headers])
    expected = headers.unpack_from(data, off)
    return _Shape(headers.unpack_from, expected, namespace["build"])


def _compile_tunnel(layout: _Layout, data: bytes, pos: int, end: int, base: int) -> str | None:
    """The expression that builds the Tunnel of ``data[pos:end]``, or None."""
    args: list[tuple[str, str]] = []
    seen: set[int] = set()
    while pos < end:
        if end - pos < 4:
            return None
        nla_len, nla_type = _HDR_UNPACK_FROM(data, pos)
        kind = nla_type & _NLA_TYPE_MASK
        if kind in seen or nla_len < 4 or pos + nla_len > end:
            return None
        seen.add(kind)
        if kind == _TUNNEL_PAD:
            # The kernel aligns tun_id to 8 bytes with an empty PAD attribute
            # where the message happens to need one, so about half of a dump's
            # tunnel keys have it.  Its header is part of the shape (a match
            # needs it in the same place); the generic decoder ignores it.
            layout.headers.append(pos - base)
            pos = (pos + nla_len + 3) & ~3
            continue
        spec = _TUNNEL_SHAPE.get(kind)
        if spec is None:
            return None
        fmt, field_name = spec
        layout.headers.append(pos - base)
        if not fmt:
            args.append((field_name, "True"))
        else:
            if nla_len - 4 != struct.calcsize(fmt):
                return None
            args.append((field_name, layout.value(pos - base + 4, fmt)))
        pos = (pos + nla_len + 3) & ~3
    # Positional arguments, up to the last one given: twice as fast as keywords
    # for a dataclass of eighteen fields.
    given = dict(args)
    last = max((_TUNNEL_FIELD_INDEX[name] for name in given), default=-1)
    values = (given.get(name, _TUNNEL_DEFAULTS[name]) for name in _TUNNEL_FIELDS[: last + 1])
    return f"_Tunnel({', '.join(values)})"


# Sizes whose layouts would not compile (encap, MPLS...), with how many
# times: after a few, keys of that size are no longer tried, so that a dump of
# uncompilable keys does not pay for a compile attempt on every key.
_NO_SHAPE: dict[int, int] = {}
_MAX_NO_SHAPE_TRIES = 4
_MAX_NO_SHAPE_SIZES = 1024


def _learn_shape(data: bytes, off: int, end: int) -> None:
    """Compile the layout of ``data[off:end]`` (which decoded fine) if there is room."""
    global _shape_count
    if _shape_count >= _MAX_SHAPES:
        return
    size = end - off
    same_size = _SHAPES.get(size)
    if same_size is not None and len(same_size) >= _MAX_SHAPES_PER_SIZE:
        return
    failures = _NO_SHAPE.get(size)
    if failures is None:
        if len(_NO_SHAPE) >= _MAX_NO_SHAPE_SIZES:
            return  # only sizes whose failures can be counted are tried
        failures = 0
    elif failures >= _MAX_NO_SHAPE_TRIES:
        return
    shape = _compile_shape(data, off, end)
    if shape is None:
        _NO_SHAPE[size] = failures + 1
        return
    _SHAPES.setdefault(size, []).append(shape)
    _shape_count += 1


def _decode_key_top(data: bytes, off: int, end: int) -> FlowKey:
    shapes = _SHAPES.get(end - off)
    if shapes is not None:
        for shape in shapes:
            if shape.headers(data, off) == shape.expected:
                return shape.build(data, off)
    key = _decode_key(data, off, end, 0)
    if end - off >= 4:
        _learn_shape(data, off, end)
    return key


def decode_key(data: bytes) -> FlowKey:
    """Decode a sequence of OVS_KEY_ATTR_* attributes (a key or a mask)."""
    try:
        return _decode_key_top(data, 0, len(data))
    except (struct.error, ValueError) as exc:
        raise DecodeError(f"malformed flow key: {exc}") from None


def decode_key_at(data: bytes, start: int, end: int) -> FlowKey:
    """`decode_key` of ``data[start:end]``, without copying it out first.

    For a key nested in a larger message (a flow's OVS_FLOW_ATTR_KEY).
    """
    if not 0 <= start <= end <= len(data):
        raise DecodeError(f"flow key: range {start}..{end} outside a {len(data)}-byte buffer")
    try:
        return _decode_key_top(data, start, end)
    except (struct.error, ValueError) as exc:
        raise DecodeError(f"malformed flow key: {exc}") from None


def _decode_key(data: bytes, off: int, end: int, depth: int) -> FlowKey:
    key = FlowKey()
    specs = _KEY_DECODE
    unpack_hdr = _HDR_UNPACK_FROM
    while off < end:
        if end - off < 4:
            raise _short_header("flow key", off, end)
        nla_len, nla_type = unpack_hdr(data, off)
        nxt = off + nla_len
        if nla_len < 4 or nxt > end:
            raise _bad_length("flow key", nla_type, nla_len, off)
        kind = nla_type & _NLA_TYPE_MASK
        spec = specs.get(kind)
        if spec is not None:
            mode, size, unpack_from, make = spec
            if mode == _SCALAR:
                if nla_len - 4 != size:
                    raise _wrong_size("flow key", kind, nla_len - 4, size)
                key[kind] = unpack_from(data, off + 4)[0]
            elif mode == _STRUCT:
                if nla_len - 4 != size:
                    raise _wrong_size("flow key", kind, nla_len - 4, size)
                key[kind] = make(unpack_from(data, off + 4))
            else:
                key[kind] = unpack_from(data[off + 4 : nxt])
        elif kind == _ENCAP:
            if depth >= MAX_ENCAP_DEPTH:
                raise DecodeError(f"flow key: encap() nested deeper than {MAX_ENCAP_DEPTH}")
            key[kind] = _decode_key(data, off + 4, nxt, depth + 1)
        else:
            key[kind] = Unknown(data[off + 4 : nxt])
        off = (nxt + 3) & ~3
    return key


def encode_key(key: FlowKey | dict[int, Any]) -> bytes:
    """Encode a key or mask; raises ValueError for a value of the wrong shape."""
    kinds = tuple(key)
    encoder: Callable[[Any], bytes | None] | None = _KEY_ENCODERS.get(kinds, _NOT_COMPILED)
    if encoder is _NOT_COMPILED:
        encoder = _learn_encoder(kinds)
    if encoder is not None:
        try:
            out = encoder(key.values())
        except (struct.error, TypeError, ValueError, IndexError):
            out = None  # the generic path says what is wrong
        if out is not None:
            return out
    return _encode_key_generic(key)


def _encode_key_generic(key: FlowKey | dict[int, Any]) -> bytes:
    """`encode_key` one attribute at a time: any key, and every error message."""
    out: list[bytes] = []
    append = out.append
    specs = _KEY_ENCODE
    kind: int = 0
    value: Any = None
    try:
        for kind, value in key.items():
            spec = specs.get(kind)
            if spec is None or value.__class__ is Unknown:
                append(_encode_other(kind, value))
                continue
            mode, pack, check = spec
            if mode == _SCALAR:
                append(pack(value))
            elif mode == _STRUCT:
                if check is not None:
                    check(value)
                append(pack(*value))
            else:
                append(attr(kind, pack(value)))
    except (struct.error, TypeError, IndexError) as exc:
        raise ValueError(f"bad value for {_attr_name(kind)}: {value!r} ({exc})") from None
    return b"".join(out)


# --- compiled encoders ----------------------------------------------------------
#
# A program encodes keys and masks of a handful of shapes (the same attribute
# types in the same order: every mask of a kind of flow, every key built by
# the same code), so encode_key compiles an encoder for each sequence of
# attribute types it meets: one Struct.pack per run of attributes of the same
# byte order, with every header (constant: fixed type and size) passed in as
# 4 raw bytes, instead of a dispatch, a pack and an append per attribute.
#
# A compiled encoder gives exactly the generic encoder's bytes or gives up:
# it checks that each struct value is of its NamedTuple class (so that it
# unpacks to the right number of fields) and that byte fields have their
# size (struct would pad or cut them silently); on a failed check it returns
# None, and a value struct refuses raises.  Either way encode_key falls back
# to the generic encoder, which encodes the key or raises the ValueError that
# says what is wrong.  Shapes holding anything but fixed-size attributes and
# tunnels (encap, MPLS, NSH, unknown types) are not compiled.

_MAX_KEY_ENCODERS = 256
_KEY_ENCODERS: dict[tuple[int, ...], Callable[[Any], bytes | None] | None] = {}
_NOT_COMPILED: Any = object()


def _learn_encoder(kinds: tuple[int, ...]) -> Callable[[Any], bytes | None] | None:
    """The compiled encoder of keys with attribute types ``kinds``, if there can be one."""
    if len(_KEY_ENCODERS) >= _MAX_KEY_ENCODERS:
        return None
    encoder = _compile_encoder(kinds)
    _KEY_ENCODERS[kinds] = encoder
    return encoder


def _order_free(body: str) -> bool:
    """Whether a struct format body packs the same in either byte order (bytes only)."""
    return all(code in "sxBbc?" for code in re.findall(r"[a-zA-Z?]", body))


def _compile_encoder(kinds: tuple[int, ...]) -> Callable[[Any], bytes | None] | None:
    if not kinds or any(k not in _FIXED and k != _TUNNEL for k in kinds):
        return None
    checks: list[str] = []
    pieces: list[str] = []  # expressions whose concatenation is the key
    namespace: dict[str, Any] = {"_tunnel_attr": _tunnel_attr, "_Tunnel": Tunnel}
    run_order = ""  # byte order of the run being collected, "" before its first number
    run_fmt: list[str] = []
    run_args: list[str] = []

    def end_run() -> None:
        nonlocal run_order
        if run_fmt:
            name = f"_pack{len(pieces)}"
            namespace[name] = struct.Struct((run_order or "=") + "".join(run_fmt)).pack
            pieces.append(f"{name}({', '.join(run_args)})")
        run_fmt.clear()
        run_args.clear()
        run_order = ""

    for i, kind in enumerate(kinds):
        var = f"v{i}"
        if kind == _TUNNEL:
            end_run()
            checks.append(f"{var}.__class__ is _Tunnel")
            pieces.append(f"_tunnel_attr({var})")
            continue
        fixed = _FIXED[kind]
        order, body = fixed.fmt[0], fixed.fmt[1:]
        if not _order_free(body):
            if run_order and order != run_order:
                end_run()
            run_order = order
        run_fmt.append(f"4s{body}{-fixed.size & 3}x")
        run_args.append(repr(_HDR.pack(fixed.size + 4, kind)))
        if fixed.cls is None:
            run_args.append(var)
        else:
            cls_name = f"_{fixed.cls.__name__}"
            namespace[cls_name] = fixed.cls
            checks.append(f"{var}.__class__ is {cls_name}")
            checks.extend(f"len({var}[{index}]) == {size}" for index, size in fixed.byte_fields)
            run_args.append(f"*{var}")
    end_run()
    lines = [
        "def encode(values):",
        f"    {', '.join(f'v{i}' for i in range(len(kinds)))}, = values",
    ]
    if checks:
        lines.append(f"    if not ({' and '.join(checks)}):")
        lines.append("        return None")
    lines.append(f"    return {' + '.join(pieces)}")
    # The code is built from attribute types and struct formats only, never from values.
    exec("\n".join(lines), namespace)  # noqa: S102 - see above: no data in the code
    encoder: Callable[[Any], bytes | None] = namespace["encode"]
    return encoder


def _tunnel_attr(t: Tunnel) -> bytes:
    return attr(_TUNNEL, _encode_tunnel(t))


def _encode_other(kind: int, value: Any) -> bytes:
    """An Unknown, an encap() or an attribute type with no codec."""
    if isinstance(value, Unknown):
        return attr(kind, bytes(value.data))
    if kind == _ENCAP:
        return attr(kind, encode_key(value))
    raise ValueError(f"no encoding for key attribute {kind}; wrap raw bytes in Unknown")


def encode_key_attr(kind: int, value: Any) -> bytes:
    """One attribute, as nested inside a set() or set_masked() action.

    `encode_key` of a one-attribute key, less building that key and a loop:
    every set(tunnel(...)) action of a flow install comes through here.
    """
    spec = _KEY_ENCODE.get(kind)
    if spec is None or value.__class__ is Unknown:
        return encode_key({kind: value})
    mode, pack, check = spec
    try:
        if mode == _SCALAR:
            return pack(value)  # type: ignore[no-any-return]
        if mode == _STRUCT:
            if check is not None:
                check(value)
            return pack(*value)  # type: ignore[no-any-return]
        return attr(kind, pack(value))
    except (struct.error, TypeError, IndexError) as exc:
        raise ValueError(f"bad value for {_attr_name(kind)}: {value!r} ({exc})") from None


# set_masked() of a fixed-size attribute: header, value, mask and padding in
# one pack() call.  kind -> (NamedTuple class or None for an integer, the
# byte-field check or None, pack).
_MASKED_PACK: dict[int, tuple[Any, Callable[[Any], Any] | None, Callable[..., bytes]]] = {
    kind: (
        f.cls,
        f.fast_check(),
        functools.partial(
            struct.Struct(f"{f.fmt[0]}4s{f.fmt[1:]}{f.fmt[1:]}{-2 * f.size & 3}x").pack,
            _HDR.pack(2 * f.size + 4, kind),
        ),
    )
    for kind, f in _FIXED.items()
}


def encode_masked_key_attr(kind: int, value: Any, mask: Any) -> bytes | None:
    """The key attribute a set_masked() action nests: ``value`` then ``mask`` in
    one payload, for a fixed-size attribute.

    None for any other attribute, and for values of another class or that
    would not pack: the caller's generic path encodes those or says what is
    wrong with them.
    """
    spec = _MASKED_PACK.get(kind)
    if spec is None:
        return None
    cls, check, pack = spec
    try:
        if cls is None:
            return pack(value, mask)
        if (
            value.__class__ is cls
            and mask.__class__ is cls
            and (check is None or (check(value) and check(mask)))
        ):
            return pack(*value, *mask)
    except (struct.error, TypeError, ValueError):
        pass
    return None


def decode_tunnel(data: bytes) -> Tunnel:
    """Nested OVS_TUNNEL_KEY_ATTR_* on their own (an upcall's egress tunnel key)."""
    try:
        return _decode_tunnel(data)
    except (struct.error, ValueError) as exc:
        raise DecodeError(f"malformed tunnel key: {exc}") from None

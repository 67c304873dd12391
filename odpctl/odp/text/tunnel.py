"""Text of ``tunnel(...)``: OVS_KEY_ATTR_TUNNEL as match and as ``set()`` action.

The syntax is Open vSwitch's (``format_odp_tun_attr`` and the tunnel part of
``parse_odp_key_mask_attr`` in ``lib/odp-util.c``)::

    tunnel(tun_id=0x..,src=a.b.c.d,dst=..,ipv6_src=..,ipv6_dst=..,tos=..,ttl=..,
           tp_src=..,tp_dst=..,vxlan(gbp(id=..,flags=..)),
           geneve({class=..,type=..,len=..,0x<data>}...),
           erspan(ver=1,idx=..) | erspan(ver=2,dir=..,hwid=..),
           gtpu(flags=..,msgtype=..),flags(df|csum|key))

Fields print in that order (the kernel's), only those present in the key.
``flags(...)`` gathers the flag attributes (``df``, ``csum``, ``oam``) and
``key``, which stands for "tun_id is present" and is never an attribute of
its own.  With a mask, flags print ``oam|df|csum|key`` when all four are
matched and ``-df+csum+key`` (only the matched ones) otherwise; ``key`` counts
as matched whenever tun_id is in the key, as in OVS.

Where this differs from OVS, on purpose:

- ``erspan``: ``hwid`` is the whole 6-bit hardware id (OVS prints the low 4
  bits only); in a mask, a fully-masked ``dir``/``hwid`` prints without
  ``/mask`` (OVS compares them with 0xff and prints ``dir=1/0x1``).
- ``vxlan(gbp(id=0,flags=0))`` keeps the zero GBP attribute (OVS drops it and
  so cannot print back what was written).
- attributes OVS has no syntax for, and options too malformed to print
  (geneve TLVs overrunning, erspan of a strange size or version), print as
  ``key<N>(<hex bytes>[/<hex mask>])`` with N the OVS_TUNNEL_KEY_ATTR_* number,
  and read back into the same field.  The userspace-only
  ``IPV4_INFO_BRIDGE`` flag is ``key16()``, as OVS prints it.
"""

from __future__ import annotations

import struct
import sys
from functools import partial
from typing import Any

from odpctl.odp.keys import Tunnel
from odpctl.odp.keyspec import BLOB, FLAG, TUNNEL_OPTS, TunnelOpt
from odpctl.odp.text.fields import (
    SYNTAX,
    U8,
    U16,
    U32,
    Field,
    addr4,
    addr6,
    format_flags,
    format_flags_masked,
    num,
    parse_flags,
    scan_fields,
    skip_name,
    uint_field,
)
from odpctl.odp.text.memo import TextMemo, tunnel_fields
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.values import format_min_hex, hex0, parse_hex_blob, parse_int_bytes
from odpctl.odp.uapi import TunnelKeyAttr

_NATIVE = sys.byteorder

# FLOW_TNL_F_* bits of OVS's text (not the kernel's attribute numbers).
F_OAM = 1
F_DF = 2
F_CSUM = 4
F_KEY = 8
F_ALL = 0xF
FLAG_NAMES = {F_OAM: "oam", F_DF: "df", F_CSUM: "csum", F_KEY: "key"}
_FLAG_BITS = {name: bit for bit, name in FLAG_NAMES.items()}

ERSPAN_LEN = 12  # struct erspan_metadata: int version; union { be32 index; md2 }


def _hex(data: bytes) -> str:
    return data.hex()


def _raw(out: list[str], kind: int, data: bytes, mask: bytes | None) -> None:
    """``key<N>(hex[/hex])``: an attribute printed as raw bytes."""
    if mask is None or mask == b"\xff" * len(data):
        out.append(f"key{kind}({data.hex()})")
    else:
        out.append(f"key{kind}({data.hex()}/{mask.hex()})")


def _mask_bytes(mask: bytes | None, size: int) -> bytes:
    """A nested mask field: absent means all-zero (wildcarded), as OVS generates."""
    if mask is None:
        return bytes(size)
    if len(mask) != size:
        return (mask + bytes(size))[:size]
    return mask


# --- formatting --------------------------------------------------------------


def format_tunnel(t: Tunnel, m: Tunnel | None, verbose: bool) -> str:
    """The inside of ``tunnel(...)``; ``m`` None formats an exact key.

    A dump prints the same few tunnels again and again (one per peer, in
    matches and in ``set(tunnel(...))`` actions): their text is kept by their
    fields (see `odpctl.odp.text.memo`).
    """
    key = (tunnel_fields(t), None if m is None else tunnel_fields(m), verbose)
    return _TEXTS.text(key, _format_tunnel, t, m, verbose)


_TEXTS = TextMemo()


def _format_tunnel(t: Tunnel, m: Tunnel | None, verbose: bool) -> str:
    out: list[str] = []
    exact = m is None
    z = _ZERO if m is None else m
    if t.tun_id is not None:
        mk = z.tun_id or 0
        if exact or mk == 0xFFFFFFFFFFFFFFFF:
            out.append(f"tun_id=0x{t.tun_id:x}")
        elif mk or verbose:
            out.append(f"tun_id=0x{t.tun_id:x}/{hex0(mk)}")
    if t.ipv4_src is not None:
        addr4(out, "src", t.ipv4_src, None if exact else (z.ipv4_src or 0), verbose)
    if t.ipv4_dst is not None:
        addr4(out, "dst", t.ipv4_dst, None if exact else (z.ipv4_dst or 0), verbose)
    if t.ipv6_src is not None:
        addr6(out, "ipv6_src", t.ipv6_src, None if exact else _mask_bytes(z.ipv6_src, 16), verbose)
    if t.ipv6_dst is not None:
        addr6(out, "ipv6_dst", t.ipv6_dst, None if exact else _mask_bytes(z.ipv6_dst, 16), verbose)
    if t.tos is not None:
        num(out, "tos", t.tos, None if exact else (z.tos or 0), 0xFF, verbose, hex0)
    if t.ttl is not None:
        num(out, "ttl", t.ttl, None if exact else (z.ttl or 0), 0xFF, verbose)
    if t.tp_src is not None:
        num(out, "tp_src", t.tp_src, None if exact else (z.tp_src or 0), 0xFFFF, verbose)
    if t.tp_dst is not None:
        num(out, "tp_dst", t.tp_dst, None if exact else (z.tp_dst or 0), 0xFFFF, verbose)
    if t.vxlan_gbp is not None:
        gbp = t.vxlan_gbp
        sub: list[str] = []
        if exact:
            sub.append(f"id={gbp & 0xFFFF}")
            sub.append(f"flags={hex0((gbp >> 16) & 0xFF)}")
        else:
            mg = z.vxlan_gbp or 0
            num(sub, "id", gbp & 0xFFFF, mg & 0xFFFF, 0xFFFF, verbose)
            num(sub, "flags", (gbp >> 16) & 0xFF, (mg >> 16) & 0xFF, 0xFF, verbose, hex0)
        out.append(f"vxlan(gbp({','.join(sub)}))")
    if t.geneve is not None:
        mask = None if exact else _mask_bytes(z.geneve, len(t.geneve))
        text = format_geneve(t.geneve, mask, verbose)
        if text is None:
            _raw(out, TunnelKeyAttr.GENEVE_OPTS, t.geneve, mask)
        else:
            out.append(f"geneve({text})")
    if t.erspan is not None:
        mask = None if exact else _mask_bytes(z.erspan, len(t.erspan))
        text = format_erspan(t.erspan, mask, verbose)
        if text is None:
            _raw(out, TunnelKeyAttr.ERSPAN_OPTS, t.erspan, mask)
        else:
            out.append(f"erspan({text})")
    for opt in _STRUCT_OPTS:
        value = getattr(t, opt.field)
        if value is not None:
            mask = None if exact else _mask_bytes(getattr(z, opt.field), len(value))
            _struct_opt(out, opt, value, mask, verbose)
    if t.ipv4_info_bridge:
        out.append(f"key{TunnelKeyAttr.IPV4_INFO_BRIDGE}()")
    for kind, data in t.unknown:
        if exact:
            _raw(out, kind, data, None)
        else:
            found = next((d for k, d in z.unknown if k == kind), None)
            _raw(out, kind, data, _mask_bytes(found, len(data)))

    flags = (F_KEY if t.tun_id is not None else 0) | (F_DF if t.df else 0)
    flags |= (F_CSUM if t.csum else 0) | (F_OAM if t.oam else 0)
    if exact:
        out.append(f"flags({format_flags(FLAG_NAMES, flags)})")
    else:
        mflags = (F_KEY if t.tun_id is not None else 0) | (F_DF if z.df else 0)
        mflags |= (F_CSUM if z.csum else 0) | (F_OAM if z.oam else 0)
        if mflags or verbose:
            out.append(f"flags({format_flags_masked(FLAG_NAMES, flags, mflags, F_ALL)})")
    return ",".join(out)


_ZERO = Tunnel()

# The options whose bytes are a struct of named fields (the spec's), in its order.
_STRUCT_OPTS = tuple(o for o in TUNNEL_OPTS if o.fields)
_STRUCT_BY_TEXT = {o.text: o for o in _STRUCT_OPTS}


def _struct_opt(
    out: list[str], opt: TunnelOpt, value: bytes, mask: bytes | None, verbose: bool
) -> None:
    """``text(field=value,...)``, or the raw attribute when the length is not the struct's."""
    layout = struct.Struct(opt.fields_fmt)
    if len(value) != layout.size:
        _raw(out, opt.kind, value, mask)
        return
    values = layout.unpack(value)
    masks = layout.unpack(mask) if mask is not None else (None,) * len(values)
    full = layout.unpack(b"\xff" * layout.size)
    sub: list[str] = []
    for f, v, m, ones in zip(opt.fields, values, masks, full, strict=True):
        num(sub, f.text, v, m, ones, verbose, hex0 if f.syntax == "x8" else str)
    out.append(f"{opt.text}({','.join(sub)})")


def format_geneve(opts: bytes, mask: bytes | None, verbose: bool) -> str | None:
    """``{class=..,type=..,len=..,0x<data>[/0x<mask>]}`` per option, or None if malformed."""
    out: list[str] = []
    pos, size = 0, len(opts)
    while pos < size:
        if size - pos < 4:
            return None
        data_len = (opts[pos + 3] & 0x1F) * 4
        end = pos + 4 + data_len
        if end > size:
            return None
        cls = opts[pos] << 8 | opts[pos + 1]
        typ = opts[pos + 2]
        data = opts[pos + 4 : end]
        sub: list[str] = []
        if mask is None:
            sub.append(f"class={hex0(cls)}")
            sub.append(f"type={hex0(typ)}")
            sub.append(f"len={data_len}")
            if data_len:
                sub.append(format_min_hex(data))
        else:
            mlen = mask[pos + 3] & 0x1F
            num(sub, "class", cls, mask[pos] << 8 | mask[pos + 1], 0xFFFF, verbose, hex0)
            num(sub, "type", typ, mask[pos + 2], 0xFF, verbose, hex0)
            num(sub, "len", data_len, 0xFF if mlen == 0x1F else mlen, 0xFF, verbose)
            mdata = mask[pos + 4 : end]
            if data_len and (verbose or any(mdata)):
                if mdata == b"\xff" * data_len:
                    sub.append(format_min_hex(data))
                else:
                    sub.append(f"{format_min_hex(data)}/{format_min_hex(mdata)}")
        out.append("{" + ",".join(sub) + "}")
        pos = end
    return "".join(out)


def _erspan_fields(data: bytes) -> tuple[int, int, int, int]:
    """(version, index, dir, hwid) of a struct erspan_metadata."""
    version = int.from_bytes(data[0:4], _NATIVE)
    index = int.from_bytes(data[4:8], "big")
    b10, b11 = data[10], data[11]
    return version, index, (b11 >> 3) & 1, ((b10 & 3) << 4) | (b11 >> 4)


def format_erspan(data: bytes, mask: bytes | None, verbose: bool) -> str | None:
    if len(data) != ERSPAN_LEN:
        return None
    ver, idx, dir_, hwid = _erspan_fields(data)
    if ver not in (1, 2):
        return None
    out: list[str] = []
    if mask is None:
        out.append(f"ver={ver}")
        if ver == 1:
            out.append(f"idx={hex0(idx)}")
        else:
            out.append(f"dir={dir_}")
            out.append(f"hwid={hex0(hwid)}")
        return ",".join(out)
    mver, midx, mdir, mhwid = _erspan_fields(mask)
    num(out, "ver", ver, mver & 0xFF, 0xFF, verbose)
    if ver == 1:
        # OVS prints the index mask whenever there is a mask at all.
        out.append(f"idx={hex0(idx)}/{hex0(midx)}")
    else:
        num(out, "dir", dir_, mdir, 1, verbose)
        num(out, "hwid", hwid, mhwid, 0x3F, verbose, hex0)
    return ",".join(out)


# --- parsing -----------------------------------------------------------------

# The fields written ``name=value[/mask]``: the spec's options with a syntax.
_SIMPLE: dict[str, tuple[str, Field]] = {
    o.text: (o.field, SYNTAX[o.syntax]) for o in TUNNEL_OPTS if o.syntax
}

_GBP_FIELDS = {"id": U16, "flags": U8}
_ERSPAN_FIELDS = {
    "ver": Field(U8.value, "number", 0xFF),
    "idx": U32,
    "dir": uint_field(1),
    "hwid": uint_field(6),
}
_GENEVE_MAX = 252  # OVS's TLV_TOT_OPT_SIZE


def parse_tunnel(sc: Scanner) -> tuple[Tunnel, Tunnel]:
    """Read the inside of ``tunnel(`` through its ``)``; returns key and mask."""
    key, mask = Tunnel(), Tunnel()
    text = sc.text
    if sc.accept(")"):
        return key, mask
    seen: set[str] = set()  # as scan_fields: a field given twice is refused
    while True:
        name, start = skip_name(sc)
        if name in seen:
            raise sc.error(f"field '{name}' given twice in tunnel(...)", start)
        seen.add(name)
        if name in _SIMPLE and sc.accept("="):
            attr, field = _SIMPLE[name]
            value = sc.value(field.value, field.what)
            m = field.full
            if sc.accept("/"):
                assert field.mask is not None
                m = sc.value(field.mask, field.what + " mask")
            setattr(key, attr, value)
            setattr(mask, attr, m)
        elif sc.accept("("):
            _parse_nested(sc, name, start, key, mask)
        elif name:
            raise sc.error(f"unknown field '{name}' in tunnel(...)", start)
        else:
            found = text[sc.pos : sc.pos + 1]
            raise sc.error(
                "expected a field name in tunnel(...), found "
                f"{repr(found) if found else 'end of text'}"
            )
        if sc.accept(","):
            if sc.accept(")"):
                return key, mask
            continue
        if sc.accept(")"):
            return key, mask
        found = sc.peek()
        raise sc.error(
            f"expected ',' or ')' in tunnel(...), found {repr(found) if found else 'end of text'}"
        )


def _parse_nested(sc: Scanner, name: str, start: int, key: Tunnel, mask: Tunnel) -> None:
    if name == "flags":
        flags, fmask = parse_flags(sc, _FLAG_BITS, 4, "tunnel")
        sc.expect(")", "flags(...)")
        key.df, key.csum, key.oam = bool(flags & F_DF), bool(flags & F_CSUM), bool(flags & F_OAM)
        mask.df, mask.csum, mask.oam = bool(fmask & F_DF), bool(fmask & F_CSUM), bool(fmask & F_OAM)
    elif name == "vxlan":
        sub, sub_start = skip_name(sc)
        if sub != "gbp" or not sc.accept("("):
            raise sc.error("expected 'gbp(' in vxlan(...)", sub_start)
        gid = gflags = gid_m = gflags_m = 0
        for fname, value, m, _ in scan_fields(sc, "gbp", _GBP_FIELDS):
            if fname == "id":
                gid, gid_m = value, m
            else:
                gflags, gflags_m = value, m
        sc.expect(")", "vxlan(...)")
        key.vxlan_gbp = gflags << 16 | gid
        mask.vxlan_gbp = gflags_m << 16 | gid_m
    elif name in _STRUCT_BY_TEXT:
        opt = _STRUCT_BY_TEXT[name]
        table = {f.text: SYNTAX[f.syntax] for f in opt.fields}
        vals = {f.text: (0, 0) for f in opt.fields}  # a field left out matches anything
        for fname, value, m, _ in scan_fields(sc, name, table):
            vals[fname] = (value, m)
        layout = struct.Struct(opt.fields_fmt)
        setattr(key, opt.field, layout.pack(*(v for v, _ in vals.values())))
        setattr(mask, opt.field, layout.pack(*(m for _, m in vals.values())))
    elif name == "erspan":
        key.erspan, mask.erspan = _parse_erspan(sc, start)
    elif name == "geneve":
        key.geneve, mask.geneve = _parse_geneve(sc)
    elif name.startswith("key") and name[3:].isdigit():
        kind = int(name[3:])
        data = sc.value(parse_hex_blob, "hex bytes", "/)") if sc.peek() not in ("/", ")") else b""
        m = b"\xff" * len(data)
        if sc.accept("/"):
            at = sc.pos
            m = sc.value(parse_hex_blob, "hex bytes", ")") if sc.peek() != ")" else b""
            if len(m) != len(data):
                raise sc.error(f"mask of {len(m)} bytes for a value of {len(data)} bytes", at)
        sc.expect(")", f"{name}(...)")
        _set_raw(sc, start, kind, data, m, key, mask)
    else:
        raise sc.error(f"unknown field '{name}' in tunnel(...)", start)


# The options kept as bytes, by attribute number: what ``key<N>(hex)`` sets.
_BLOB_FIELDS = {int(o.kind): o.field for o in TUNNEL_OPTS if o.fmt == BLOB}


def _set_raw(
    sc: Scanner, start: int, kind: int, data: bytes, m: bytes, key: Tunnel, mask: Tunnel
) -> None:
    blob = _BLOB_FIELDS.get(kind)
    if blob is not None:
        setattr(key, blob, data)
        setattr(mask, blob, m)
    elif kind == TunnelKeyAttr.IPV4_INFO_BRIDGE:
        if data:
            raise sc.error("key16() is a flag and takes no bytes", start)
        key.ipv4_info_bridge = mask.ipv4_info_bridge = True
    elif kind > 0xFFFF:
        raise sc.error(f"tunnel attribute number {kind} out of range", start)
    else:
        key.unknown = (*key.unknown, (kind, data))
        mask.unknown = (*mask.unknown, (kind, m))


def _parse_erspan(sc: Scanner, start: int) -> tuple[bytes, bytes]:
    got = scan_fields(sc, "erspan", _ERSPAN_FIELDS)
    vals = {fname: (value, m, col) for fname, value, m, col in got}
    if "ver" not in vals:
        raise sc.error("erspan(...) needs ver=1 or ver=2", start)
    ver = vals["ver"][0]
    if ver not in (1, 2):
        raise sc.error(f"erspan version {ver} is neither 1 nor 2", vals["ver"][2])
    for fname, (_, _, col) in vals.items():
        if (fname in ("dir", "hwid") and ver == 1) or (fname == "idx" and ver == 2):
            raise sc.error(f"field '{fname}' does not belong to erspan version {ver}", col)
    head = ver.to_bytes(4, _NATIVE)
    if ver == 1:
        idx, midx = vals.get("idx", (0, 0, 0))[:2]
        key = head + idx.to_bytes(4, "big") + bytes(4)
        mask = b"\xff" * 4 + midx.to_bytes(4, "big") + b"\xff" * 4
    else:
        dir_, mdir = vals.get("dir", (0, 0, 0))[:2]
        hwid, mhwid = vals.get("hwid", (0, 0, 0))[:2]
        key = head + bytes(6) + bytes(((hwid >> 4) & 3, (hwid & 0xF) << 4 | dir_ << 3))
        b10 = 0xFC | ((mhwid >> 4) & 3)
        b11 = (mhwid & 0xF) << 4 | mdir << 3 | 0x7
        mask = b"\xff" * 10 + bytes((b10, b11))
    return key, mask


def _parse_geneve(sc: Scanner) -> tuple[bytes, bytes]:
    key = bytearray()
    mask = bytearray()
    while sc.accept("{"):
        cls = typ = cls_m = typ_m = 0
        length = 0
        len_m = 0x1F
        data: bytes | None = None
        data_m: bytes | None = None
        while not sc.accept("}"):
            ch = sc.peek()
            if ch.isalpha():
                fname, col = skip_name(sc)
                if fname not in ("class", "type", "len") or not sc.accept("="):
                    raise sc.error(f"unknown field '{fname}' in geneve option", col)
                field = U16 if fname == "class" else U8
                assert field.mask is not None
                value = sc.value(field.value, field.what, ",}/")
                m = field.full
                if sc.accept("/"):
                    m = sc.value(field.mask, field.what + " mask", ",}")
                if fname == "class":
                    cls, cls_m = value, m
                elif fname == "type":
                    typ, typ_m = value, m
                else:
                    if value > 124 or value % 4:
                        raise sc.error(
                            f"geneve option length {value} is not a multiple of 4 up to 124", col
                        )
                    length, len_m = value, m & 0x1F
            elif ch.isdigit():
                parse_data = partial(parse_int_bytes, width=length)
                data = sc.value(parse_data, "option data", ",}/")
                if sc.accept("/"):
                    data_m = sc.value(parse_data, "option data mask", ",}")
            else:
                found = repr(ch) if ch else "end of text"
                raise sc.error(f"expected a field or data in geneve option, found {found}")
            if not sc.accept(",") and sc.peek() != "}":
                found = repr(sc.peek()) if sc.peek() else "end of text"
                raise sc.error(f"expected ',' or '}}' in geneve option, found {found}")
        if data is not None and len(data) != length:
            raise sc.error("geneve option data does not match its len")
        key += cls.to_bytes(2, "big") + bytes((typ, length // 4)) + (data or bytes(length))
        mask += cls_m.to_bytes(2, "big") + bytes((typ_m, len_m))
        mask += data_m if data_m is not None else b"\xff" * length
        if len(key) > _GENEVE_MAX:
            raise sc.error(f"geneve options longer than {_GENEVE_MAX} bytes")
    sc.expect(")", "geneve(...)")
    return bytes(key), bytes(mask)


# The all-ones mask of each field that has one (the numbers and addresses); a
# GBP mask matches the 24 bits the text can write.
_FULL: dict[str, Any] = {
    o.field: (0xFFFFFF if o.nested is not None else o.full)
    for o in TUNNEL_OPTS
    if o.fmt not in (FLAG, BLOB)
}


_BLOBS = tuple(o.field for o in TUNNEL_OPTS if o.fmt == BLOB)


def tunnel_mask_is_exact(t: Tunnel, m: Tunnel) -> bool:
    """Whether every field present in ``t`` is fully masked in ``m``."""
    full = _FULL
    for name, ones in full.items():
        if getattr(t, name) is not None and getattr(m, name) != ones:
            return False
    for name in _BLOBS:
        value = getattr(t, name)
        if value is not None and getattr(m, name) != b"\xff" * len(value):
            if name == "geneve" and m.geneve is not None and _geneve_mask_full(value, m.geneve):
                continue
            return False
    masks = dict(m.unknown)
    return all(masks.get(kind) == b"\xff" * len(data) for kind, data in t.unknown)


def _geneve_mask_full(opts: bytes, mask: bytes) -> bool:
    """A geneve mask is full when every byte is, but the reserved flag bits."""
    if len(mask) != len(opts):
        return False
    pos = 0
    while pos + 4 <= len(opts):
        if mask[pos : pos + 3] != b"\xff\xff\xff" or mask[pos + 3] & 0x1F != 0x1F:
            return False
        end = pos + 4 + (opts[pos + 3] & 0x1F) * 4
        if mask[pos + 4 : end] != b"\xff" * (end - pos - 4):
            return False
        pos = end
    return pos == len(opts)

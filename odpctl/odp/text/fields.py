"""Field-level helpers shared by the key and tunnel text codecs.

Formatting follows Open vSwitch's ``format_*`` helpers in ``lib/odp-util.c``:
a field is printed as ``name=value`` when its mask is absent (an exact key)
or full, as ``name=value/mask`` when partly masked, and not at all when its
mask is zero, unless ``verbose``.  ``out`` is a list the caller joins with
commas, which is what OVS's trailing-comma-then-chomp amounts to.

Parsing reads the ``name=value[/mask],...)`` lists that every structured
attribute uses; see `scan_fields`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.values import hex0, parse_cint, parse_ipv4, parse_ipv6_strict, parse_mac

FF6 = b"\xff" * 6
Z6 = bytes(6)
FF16 = b"\xff" * 16
Z16 = bytes(16)

_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6


def ip4(addr: int) -> str:
    return f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}"


def ip6(addr: bytes) -> str:
    return _ntop(_AF_INET6, addr)


def mac(addr: bytes) -> str:
    return addr.hex(":")


def num(
    out: list[str],
    name: str,
    key: int,
    mask: int | None,
    full: int,
    verbose: bool,
    fmt: Callable[[int], str] = str,
) -> None:
    """A number; the key printed with ``fmt``, a partial mask with ``%#x``."""
    if mask is None or mask == full:
        out.append(f"{name}={fmt(key)}")
    elif mask or verbose:
        out.append(f"{name}={fmt(key)}/{hex0(mask)}")


def addr4(out: list[str], name: str, key: int, mask: int | None, verbose: bool) -> None:
    if mask is None or mask == 0xFFFFFFFF:
        out.append(f"{name}={ip4(key)}")
    elif mask or verbose:
        out.append(f"{name}={ip4(key)}/{ip4(mask)}")


def addr6(out: list[str], name: str, key: bytes, mask: bytes | None, verbose: bool) -> None:
    if mask is None or mask == FF16:
        out.append(f"{name}={_ntop(_AF_INET6, key)}")
    elif verbose or mask != Z16:
        out.append(f"{name}={_ntop(_AF_INET6, key)}/{_ntop(_AF_INET6, mask)}")


def eth(out: list[str], name: str, key: bytes, mask: bytes | None, verbose: bool) -> None:
    if mask is None or mask == FF6:
        out.append(f"{name}={key.hex(':')}")
    elif verbose or mask != Z6:
        out.append(f"{name}={key.hex(':')}/{mask.hex(':')}")


# --- parsing -----------------------------------------------------------------

Parse = Callable[[str], Any]


class Field:
    """How one ``name=value[/mask]`` field is read.

    ``full`` is the mask a value written without ``/mask`` gets; ``mask``
    parses an explicit mask (None: the field takes no mask).
    """

    __slots__ = ("full", "mask", "value", "what")

    def __init__(self, value: Parse, what: str, full: Any, mask: Parse | None = None) -> None:
        self.value = value
        self.what = what
        self.full = full
        self.mask = mask


def uint_field(bits: int, what: str = "number") -> Field:
    """An unsigned ``bits``-wide number, its mask alike."""

    def parse(text: str) -> int:
        return parse_cint(text, bits)

    return Field(parse, what, (1 << bits) - 1, parse)


U8 = uint_field(8)
U16 = uint_field(16)
U32 = uint_field(32)
U64 = uint_field(64)
IPV4 = Field(parse_ipv4, "IPv4 address", 0xFFFFFFFF, parse_ipv4)
IPV6 = Field(parse_ipv6_strict, "IPv6 address", FF16, parse_ipv6_strict)
MAC = Field(parse_mac, "MAC address", FF6, parse_mac)
# The readers of the field syntaxes of odpctl.odp.keyspec shared by keys and tunnels.
SYNTAX: dict[str, Field] = {
    "u8": U8,
    "x8": U8,
    "u16": U16,
    "u32": U32,
    "u64": U64,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "mac": MAC,
}


def scan_fields(
    sc: Scanner,
    attr: str,
    fields: dict[str, Field],
    close: str = ")",
    *,
    repeats: bool = False,
) -> list[tuple[str, Any, Any, int]]:
    """Read ``name=value[/mask],...`` up to and including ``close``.

    Returns ``(name, value, mask, column)`` in the order written; a field
    written without ``/mask`` gets its full mask.  Like OVS, fields may come
    in any order, the list may be empty and may end with a comma.  A field
    given twice is refused at the second (OVS lets the last one win, which
    hides a typo), unless ``repeats`` says that repeating means something.
    """
    got: list[tuple[str, Any, Any, int]] = []
    seen: set[str] = set()
    text = sc.text
    size = len(text)
    pos = sc.pos
    if text.startswith(close, pos):
        sc.pos = pos + 1
        return got
    while True:
        eq = text.find("=", pos)
        fname = text[pos:eq] if eq >= 0 else ""
        field = fields.get(fname)
        if field is None:
            sc.pos = pos
            name, _ = skip_name(sc)
            if name:
                raise sc.error(f"unknown field '{name}' in {attr}(...)", pos)
            found = sc.peek()
            raise sc.error(
                f"expected a field name in {attr}(...), found "
                f"{repr(found) if found else 'end of text'}"
            )
        if fname in seen and not repeats:
            sc.pos = pos
            raise sc.error(f"field '{fname}' given twice in {attr}(...)", pos)
        seen.add(fname)
        start = eq + 1
        end = _token_end(text, start, size, close)
        value = _convert(sc, field.value, field.what, text[start:end], start)
        mask = field.full
        pos = end
        if pos < size and text[pos] == "/":
            if field.mask is None:
                raise sc.error(f"field '{fname}' in {attr}(...) takes no mask", pos)
            start = pos + 1
            end = _token_end(text, start, size, close, slash=False)
            mask = _convert(sc, field.mask, field.what + " mask", text[start:end], start)
            pos = end
        got.append((fname, value, mask, eq - len(fname)))
        ch = text[pos : pos + 1]
        if ch == ",":
            pos += 1
            if text.startswith(close, pos):
                sc.pos = pos + 1
                return got
            continue
        if ch == close:
            sc.pos = pos + 1
            return got
        sc.pos = pos
        raise sc.error(
            f"expected ',' or '{close}' in {attr}(...), found {repr(ch) if ch else 'end of text'}"
        )


def _token_end(text: str, start: int, size: int, close: str, slash: bool = True) -> int:
    """Where a value starting at ``start`` ends: the next ``,``, ``close`` or ``/``."""
    end = text.find(",", start)
    if end < 0:
        end = size
    i = text.find(close, start, end)
    if i >= 0:
        end = i
    if slash:
        i = text.find("/", start, end)
        if i >= 0:
            end = i
    return end


def _convert(sc: Scanner, parse: Parse, what: str, token: str, start: int) -> Any:
    if not token:
        raise sc.error(f"expected {what}", start)
    try:
        return parse(token)
    except ValueError as exc:
        detail = f": {exc}" if str(exc) else ""
        raise sc.error(f"invalid {what} '{token}'{detail}", start) from None


def skip_name(sc: Scanner) -> tuple[str, int]:
    """Read an identifier (possibly empty) and return it with its column."""
    text, start = sc.text, sc.pos
    end = start
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    sc.pos = end
    return text[start:end], start


# --- flag sets: ct_state(), tcp_flags(), tunnel flags() ------------------------


def format_flags(names: dict[int, str], flags: int) -> str:
    """OVS's ``format_flags``: set bits by name, lowest first, joined by ``|``.

    Bits without a name are gathered into one ``0x..`` term at the end; no
    bit set prints ``0``.
    """
    if not flags:
        return "0"
    parts = []
    bad = 0
    bit = 1
    rest = flags
    while rest:
        if rest & bit:
            name = names.get(bit)
            if name is None:
                bad |= bit
            else:
                parts.append(name)
            rest &= ~bit
        bit <<= 1
    if bad:
        parts.append(f"0x{bad:x}")
    return "|".join(parts)


def format_flags_masked(names: dict[int, str], flags: int, mask: int, full: int) -> str:
    """OVS's ``format_flags_masked``: ``+name`` / ``-name`` per masked bit.

    A full mask prints like `format_flags`, an empty one ``0/0``.  Where OVS
    would print ``[Unknown]`` for a masked bit without a name (text it cannot
    read back), this prints the numeric ``value/mask`` form instead.
    """
    if mask == full:
        return format_flags(names, flags)
    if not mask:
        return "0/0"
    parts = []
    bit = 1
    rest = mask
    while rest:
        if rest & bit:
            name = names.get(bit)
            if name is None:
                return f"{hex0(flags)}/{hex0(mask)}"
            parts.append(("+" if flags & bit else "-") + name)
            rest &= ~bit
        bit <<= 1
    return "".join(parts)


def parse_flags(sc: Scanner, by_name: dict[str, int], bits: int, what: str) -> tuple[int, int]:
    """Read a flag set up to (not including) the closing ``)``.

    Accepts the three forms of OVS's ``parse_flags``: ``value/mask`` in
    numbers, ``+name-name...`` (masked), and ``name|name|0x..`` (exact: the
    mask is all ones over ``bits``).  An empty list is the exact value 0.
    """
    text = sc.text
    full = (1 << bits) - 1
    close = text.find(")", sc.pos)
    if close < 0:
        close = len(text)
    body = text[sc.pos : close]
    if "/" in body:
        flags = sc.value(lambda t: parse_cint(t, bits), f"{what} value", "/)")
        sc.expect("/", f"{what}(...)")
        mask = sc.value(lambda t: parse_cint(t, bits), f"{what} mask", ")")
        return flags, mask
    if body[:1] in ("+", "-"):
        flags = mask = 0
        while sc.pos < close:
            sign = text[sc.pos]
            if sign not in "+-":
                raise sc.error(f"expected '+' or '-' before a {what} flag")
            sc.pos += 1
            start = sc.pos
            end = start
            while end < close and text[end] not in "+-":
                end += 1
            name = text[start:end]
            bit = by_name.get(name)
            if bit is None:
                raise sc.error(f"unknown {what} flag '{name}'", start)
            if mask & bit:
                raise sc.error(f"{what} flag '{name}' given twice", start)
            mask |= bit
            if sign == "+":
                flags |= bit
            sc.pos = end
        return flags, mask
    flags = 0
    while sc.pos < close:
        start = sc.pos
        end = start
        while end < close and text[end] != "|":
            end += 1
        name = text[start:end]
        bit = by_name.get(name)
        if bit is None:
            if not name[:1].isdigit():
                raise sc.error(f"unknown {what} flag '{name}'", start)
            try:
                bit = parse_cint(name, bits)
            except ValueError as exc:
                raise sc.error(f"invalid {what} flags '{name}': {exc}", start) from None
        flags |= bit
        sc.pos = end
        if sc.pos < close:
            sc.pos += 1  # the '|'
            if sc.pos == close:
                raise sc.error(f"expected a {what} flag after '|'")
    return flags, full

"""Value parsers and formatters shared by the key and action syntax.

Parsers take the token text and raise ValueError (the scanner adds the
column); formatters print exactly as Open vSwitch's ``lib/odp-util.c`` does.
"""

from __future__ import annotations

import ipaddress
import socket


def parse_uint(text: str, bits: int = 64) -> int:
    """Decimal, or hexadecimal with a 0x prefix, as OVS's scanners accept."""
    try:
        value = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
    except ValueError:
        raise ValueError("not a number") from None
    if value < 0 or value >= 1 << bits:
        raise ValueError(f"out of range for {bits} bits")
    return value


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError("not a MAC address")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("not a MAC address") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_ipv4(text: str) -> int:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
        raise ValueError("not an IPv4 address")
    a, b, c, d = (int(p) for p in parts)
    return a << 24 | b << 16 | c << 8 | d


def format_ipv4(addr: int) -> str:
    return socket.inet_ntoa(addr.to_bytes(4, "big"))


def parse_ipv6(text: str) -> bytes:
    try:
        return ipaddress.IPv6Address(text).packed
    except ValueError:
        raise ValueError("not an IPv6 address") from None


def format_ipv6(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, addr)


# --- additions for the key syntax (odpctl.odp.text.keys) ----------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")


def parse_cint(text: str, bits: int = 32) -> int:
    """An unsigned number as C's ``%i`` reads it, which is what OVS's scanners use.

    ``0x``/``0X`` starts hexadecimal, a leading ``0`` octal, anything else is
    decimal.  Unlike C, a value that does not fit in ``bits`` is refused
    instead of wrapping around.
    """
    if text[:2] in ("0x", "0X"):
        digits = text[2:]
        if not digits or not all(c in _HEX_DIGITS for c in digits):
            raise ValueError("not a number")
        value = int(digits, 16)
    elif len(text) > 1 and text[0] == "0":
        if not all(c in _OCT_DIGITS for c in text):
            raise ValueError("not a number (a leading 0 makes it octal)")
        value = int(text, 8)
    elif text.isdigit() and text.isascii():
        value = int(text)
    else:
        raise ValueError("not a number")
    if value >> bits:
        raise ValueError(f"out of range for {bits} bits")
    return value


def hex0(value: int) -> str:
    """C's ``%#x``: ``0`` for zero, else ``0x`` and lowercase hex digits."""
    return hex(value) if value else "0"


def parse_ipv6_strict(text: str) -> bytes:
    """An IPv6 address as ``inet_pton`` reads it (no scope id, no brackets)."""
    if not text or not all(c in _IPV6_CHARS for c in text):
        raise ValueError("not an IPv6 address")
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        raise ValueError("not an IPv6 address") from None


def parse_int_bytes(text: str, width: int) -> bytes:
    """A ``width``-byte big-endian value as OVS's ``parse_int_string`` reads it.

    ``0x`` and hex digits (right-aligned, leading zeros free), or a number C's
    ``strtoull`` accepts (decimal, or octal with a leading zero).
    """
    if text[:2] in ("0x", "0X"):
        digits = text[2:].lstrip("0")
        if not all(c in _HEX_DIGITS for c in text[2:]) or len(text) == 2:
            raise ValueError("not a hexadecimal number")
        if len(digits) > 2 * width:
            raise ValueError(f"too long for {width} bytes")
        return int(digits or "0", 16).to_bytes(width, "big")
    value = parse_cint(text, 64)
    if value >> (8 * width):
        raise ValueError(f"too long for {width} bytes")
    return value.to_bytes(width, "big")


def format_min_hex(data: bytes) -> str:
    """OVS's ``ds_put_hex``: ``0x`` and the bytes in hex without leading zero bytes."""
    value = int.from_bytes(data, "big")
    return hex(value) if value else "0"


def parse_hex_blob(text: str) -> bytes:
    """Bytes written as pairs of hex digits, optionally separated by spaces."""
    compact = text.replace(" ", "")
    if len(compact) % 2 or not all(c in _HEX_DIGITS for c in compact):
        raise ValueError("not pairs of hex digits")
    return bytes.fromhex(compact)

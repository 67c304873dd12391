"""Netlink attributes (``struct nlattr``): encoding helpers and a lean decoder.

The decoder sits under the flow codec, which must decode ~150k flow messages
a second in pure Python, so it yields plain ``(type, payload)`` tuples and
does its bounds checks with integer arithmetic only.  Every way malformed
input can fail ends in ``DecodeError``; nothing else escapes.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator

from odpctl.errors import DecodeError, UsageError

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF
NLA_ALIGNTO = 4
NLA_HDRLEN = 4

# Largest payload an nlattr can carry: nla_len is a u16 that counts the header.
NLA_MAX_PAYLOAD = 0xFFFF - NLA_HDRLEN

_HDR = struct.Struct("=HH")
# Header, value and padding in one pack() call: the fixed-size encoders are
# used for every key field of every flow, so one call beats three.
_NLA_U8 = struct.Struct("=HHB3x")
_NLA_U16 = struct.Struct("=HHH2x")
_NLA_U32 = struct.Struct("=HHI")
_NLA_U64 = struct.Struct("=HHQ")

_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")

# Indexed by len(payload) & 3: the zero bytes that pad a payload to NLA_ALIGNTO.
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")

_LITTLE = sys.byteorder == "little"


def _too_long(type_: int, size: int) -> UsageError:
    return UsageError(
        f"netlink attribute {type_}: payload of {size} bytes exceeds the "
        f"{NLA_MAX_PAYLOAD}-byte limit of nla_len"
    )


def attr(type_: int, payload: bytes) -> bytes:
    """One attribute: header, payload, zero padding to a 4-byte boundary."""
    size = len(payload)
    if size > NLA_MAX_PAYLOAD:
        raise _too_long(type_, size)
    try:
        hdr = _HDR.pack(size + NLA_HDRLEN, type_)
    except struct.error as e:
        raise UsageError(f"netlink attribute type {type_}: {e}") from None
    return hdr + payload + _PAD[size & 3]


def nested(type_: int, *payloads: bytes) -> bytes:
    """An attribute holding already-encoded attributes.

    NLA_F_NESTED is left clear, as OVS userspace does: the openvswitch module
    predates the flag and does not need it.
    """
    return attr(type_, b"".join(payloads))


def _bad_value(type_: int, value: int, e: struct.error) -> UsageError:
    return UsageError(f"netlink attribute {type_}: value {value!r}: {e}")


# The fixed-size encoders run for every key field of every flow encoded, so
# each is one pack() call inside a try (free on success in CPython 3.11+).
def attr_u8(type_: int, value: int) -> bytes:
    try:
        return _NLA_U8.pack(5, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_u16(type_: int, value: int) -> bytes:
    try:
        return _NLA_U16.pack(6, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_u32(type_: int, value: int) -> bytes:
    try:
        return _NLA_U32.pack(8, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_u64(type_: int, value: int) -> bytes:
    try:
        return _NLA_U64.pack(12, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


# Network-order payloads: on a little-endian host the whole attribute is
# packed big-endian in one call, with the two header fields byte-swapped
# beforehand so they still come out in host order (an out-of-range type
# becomes -1 for pack() to reject).  Faster than packing the header and the
# value separately and concatenating.
_BE_NLA_U16 = struct.Struct(">HHH2x")
_BE_NLA_U32 = struct.Struct(">HHI")
_BE_NLA_U64 = struct.Struct(">HHQ")


def attr_be16(type_: int, value: int) -> bytes:
    try:
        if _LITTLE:
            return _BE_NLA_U16.pack(
                0x0600, ((type_ & 0xFF) << 8 | type_ >> 8) if 0 <= type_ <= 0xFFFF else -1, value
            )
        return _NLA_U16.pack(6, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_be32(type_: int, value: int) -> bytes:
    try:
        if _LITTLE:
            return _BE_NLA_U32.pack(
                0x0800, ((type_ & 0xFF) << 8 | type_ >> 8) if 0 <= type_ <= 0xFFFF else -1, value
            )
        return _NLA_U32.pack(8, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_be64(type_: int, value: int) -> bytes:
    try:
        if _LITTLE:
            return _BE_NLA_U64.pack(
                0x0C00, ((type_ & 0xFF) << 8 | type_ >> 8) if 0 <= type_ <= 0xFFFF else -1, value
            )
        return _NLA_U64.pack(12, type_, value)
    except struct.error as e:
        raise _bad_value(type_, value, e) from None


def attr_flag(type_: int) -> bytes:
    """An attribute whose presence is the information."""
    return attr(type_, b"")


def attr_str(type_: int, value: str) -> bytes:
    """A NUL-terminated UTF-8 string, as NLA_NUL_STRING policies expect."""
    return attr(type_, value.encode() + b"\0")


def _bounds(data: bytes, start: int, end: int | None) -> int:
    size = len(data)
    if end is None:
        end = size
    if not 0 <= start <= end <= size:
        raise DecodeError(f"netlink attributes: range {start}..{end} outside a {size}-byte buffer")
    return end


def _short_header(off: int, end: int) -> DecodeError:
    return DecodeError(
        f"netlink attribute at offset {off}: {end - off} bytes left, header needs {NLA_HDRLEN}"
    )


def _bad_length(nla_type: int, nla_len: int, off: int, end: int) -> DecodeError:
    why = "below the header size" if nla_len < NLA_HDRLEN else f"runs past the end at {end}"
    return DecodeError(
        f"netlink attribute type {nla_type & NLA_TYPE_MASK} at offset {off}: length {nla_len} {why}"
    )


def iter_attrs(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(type, payload)`` for each attribute in ``data[start:end]``.

    The type has NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off.  The last
    attribute may lack its trailing padding, as some senders (the kernel
    among them) leave it out.
    """
    end = _bounds(data, start, end)
    unpack = _HDR.unpack_from
    off = start
    while off < end:
        if end - off < NLA_HDRLEN:
            raise _short_header(off, end)
        nla_len, nla_type = unpack(data, off)
        nxt = off + nla_len
        if nla_len < NLA_HDRLEN or nxt > end:
            raise _bad_length(nla_type, nla_len, off, end)
        yield nla_type & NLA_TYPE_MASK, data[off + NLA_HDRLEN : nxt]
        off += (nla_len + 3) & ~3


def attrs_to_dict(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attributes by type; a repeated type keeps its last value.

    Written out rather than ``dict(iter_attrs(...))``: skipping the generator
    is a measurable share of a flow decode.
    """
    end = _bounds(data, start, end)
    unpack = _HDR.unpack_from
    out: dict[int, bytes] = {}
    off = start
    while off < end:
        if end - off < NLA_HDRLEN:
            raise _short_header(off, end)
        nla_len, nla_type = unpack(data, off)
        nxt = off + nla_len
        if nla_len < NLA_HDRLEN or nxt > end:
            raise _bad_length(nla_type, nla_len, off, end)
        out[nla_type & NLA_TYPE_MASK] = data[off + NLA_HDRLEN : nxt]
        off += (nla_len + 3) & ~3
    return out


def _wrong_size(kind: str, want: int, payload: bytes) -> DecodeError:
    return DecodeError(f"netlink {kind} attribute: {len(payload)} bytes, expected {want}")


# The getters rely on Struct.unpack demanding the exact size; the try costs
# nothing on the success path in CPython 3.11+.
def get_u8(payload: bytes) -> int:
    try:
        value: int = _U8.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("u8", 1, payload) from None


def get_u16(payload: bytes) -> int:
    try:
        value: int = _U16.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("u16", 2, payload) from None


def get_u32(payload: bytes) -> int:
    try:
        value: int = _U32.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("u32", 4, payload) from None


def get_u64(payload: bytes) -> int:
    try:
        value: int = _U64.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("u64", 8, payload) from None


def get_be16(payload: bytes) -> int:
    try:
        value: int = _BE16.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("be16", 2, payload) from None


def get_be32(payload: bytes) -> int:
    try:
        value: int = _BE32.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("be32", 4, payload) from None


def get_be64(payload: bytes) -> int:
    try:
        value: int = _BE64.unpack(payload)[0]
        return value
    except struct.error:
        raise _wrong_size("be64", 8, payload) from None


def get_str(payload: bytes) -> str:
    """A string attribute up to its first NUL; bad UTF-8 is replaced, not fatal."""
    nul = payload.find(0)
    if nul >= 0:
        payload = payload[:nul]
    return payload.decode("utf-8", "replace")

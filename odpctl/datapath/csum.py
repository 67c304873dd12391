"""Internet checksums in pure Python, fast enough for the data path.

The one's-complement sum of 16-bit words equals the value of the bytes, read
as one big-endian integer, modulo 0xFFFF (because 2**16 is 1 modulo
0xFFFF), so summing a whole segment is one ``int.from_bytes`` and one ``%``
in C rather than a loop over words.  A zero remainder of non-zero data is
the one's-complement "negative zero", 0xFFFF.
"""

from __future__ import annotations

import struct

_BE16 = struct.Struct("!H")


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The one's-complement sum of ``data`` (padded to even length), folded to 16 bits."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    s = (value + start) % 0xFFFF
    return s if s or not (value or start) else 0xFFFF


def checksum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The Internet checksum of ``data``, ``start`` being a partial sum (pseudo-header)."""
    return ~ones_sum(data, start) & 0xFFFF


def update(check: int, old: bytes, new: bytes, *, partial: bool = False) -> int:
    """``check`` after the bytes ``old`` (even length) of what it covers became ``new``.

    RFC 1624's HC' = ~(~HC + ~m + m').  ``partial`` is for a checksum field
    that holds the not-yet-complemented pseudo-header sum of a packet whose
    checksum the NIC (or whoever receives the offload) will complete.
    """
    # ~m summed over the words of m is -sum(m), modulo 0xFFFF.
    old_sum = int.from_bytes(old, "big") % 0xFFFF
    new_sum = int.from_bytes(new, "big") % 0xFFFF
    base = check if partial else ~check & 0xFFFF
    s = (base - old_sum + new_sum) % 0xFFFF
    if partial:
        return s if s else 0xFFFF
    return ~s & 0xFFFF if s else 0


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The partial sum of an IPv4 or IPv6 pseudo-header (addresses as bytes)."""
    return (int.from_bytes(src + dst, "big") + proto + length) % 0xFFFF

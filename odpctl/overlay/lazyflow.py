"""Reading a dumped flow lazily: only where its key, actions and ``used`` lie.

A revalidation pass over 100,000 flows needs of each flow only a few bytes;
decoding it whole costs ~15 times more.  Even walking the attributes is most
of the cost, with the kernel's keys of ~20 attributes.  But a dump's flows
come in few layouts (the same attributes, of the same sizes, in the same
order), so each layout is walked once (which checks it), and a flow of the
same length is then checked against the layouts seen with one unpack of its
attribute headers, which must give exactly what the walk found: the wanted
attributes then lie where they lay before.
"""

from __future__ import annotations

import struct

from odpctl.errors import DecodeError
from odpctl.odp.uapi import FlowAttr, KeyAttr

_HDR = struct.Struct("=HH")
_U64 = struct.Struct("=Q")
_MAX_LAYOUTS = 64  # per reader: beyond, flows of new layouts are walked every time
_ETH_DST = 6  # in OVS_KEY_ATTR_ETHERNET's payload: eth_src, then eth_dst

Span = tuple[int, int]  # a payload's (start, end), relative to the run's start
_Layout = tuple[struct.Struct, tuple[int, ...], tuple[Span, ...]]


class Spans:
    """Where attributes of some types lie in runs of netlink attributes."""

    def __init__(self, what: str, kinds: tuple[int, ...]) -> None:
        self.what = what
        self.kinds = kinds
        self._layouts: dict[int, list[_Layout]] = {}
        self._learnt = 0

    def find(self, data: bytes, start: int, end: int) -> tuple[Span, ...]:
        """Each kind's payload span in ``data[start:end]``, relative to ``start``
        ((0, 0) if absent; the last one if given twice).  Raises DecodeError if
        the attributes are malformed."""
        if not 0 <= start <= end <= len(data):
            raise DecodeError(f"malformed {self.what}: no bytes {start}..{end} in {len(data)}")
        for headers, expected, spans in self._layouts.get(end - start, ()):
            if headers.unpack_from(data, start) == expected:
                return spans
        return self._walk(data, start, end)

    def _walk(self, data: bytes, start: int, end: int) -> tuple[Span, ...]:
        found: dict[int, Span] = {}
        offsets: list[int] = []
        expected: list[int] = []
        off = start
        while off < end:
            if end - off < 4:
                raise DecodeError(f"malformed {self.what}: {end - off} stray bytes at {off}")
            nla_len, nla_type = _HDR.unpack_from(data, off)
            stop = off + nla_len
            if nla_len < 4 or stop > end:
                raise DecodeError(
                    f"malformed {self.what}: attribute at offset {off} has bad length {nla_len}"
                )
            found[nla_type & 0x3FFF] = (off + 4 - start, stop - start)
            offsets.append(off - start)
            expected += (nla_len, nla_type)
            off = (stop + 3) & ~3
        spans = tuple(found.get(kind, (0, 0)) for kind in self.kinds)
        if self._learnt < _MAX_LAYOUTS:
            fmt, pos = "=", 0
            for at in offsets:
                fmt += f"{at - pos}xHH"
                pos = at + 4
            layout = (struct.Struct(fmt), tuple(expected), spans)
            self._layouts.setdefault(end - start, []).append(layout)
            self._learnt += 1
        return spans


class FlowReader:
    """What a revalidator reads of dumped flows (one reader per pass or longer:
    it keeps the layouts it learnt)."""

    def __init__(self) -> None:
        self._flow = Spans("flow", (int(FlowAttr.KEY), int(FlowAttr.ACTIONS), int(FlowAttr.USED)))
        self._key = Spans("flow key", (int(KeyAttr.TUNNEL), int(KeyAttr.ETHERNET)))

    def flow(self, data: bytes, start: int) -> tuple[int, int, int, int, int]:
        """(key start, key end, actions start, actions end, used) of the flow
        whose attributes are ``data[start:]``; a part that is absent is empty."""
        (k0, k1), (a0, a1), (u0, u1) = self._flow.find(data, start, len(data))
        used = 0
        if u1 != u0:
            if u1 - u0 != 8:
                raise DecodeError(f"malformed flow: used of {u1 - u0} bytes, expected 8")
            (used,) = _U64.unpack_from(data, start + u0)
        return start + k0, start + k1, start + a0, start + a1, used

    def key_facts(self, data: bytes, start: int, end: int) -> tuple[bytes | None, bool]:
        """What a verdict reads of a key: its tunnel attribute's bytes (None
        without one) and whether its Ethernet destination is multicast."""
        (t0, t1), (e0, e1) = self._key.find(data, start, end)
        tunnel = data[start + t0 : start + t1] if t1 else None
        multicast = e1 - e0 > _ETH_DST and bool(data[start + e0 + _ETH_DST] & 1)
        return tunnel, multicast

"""Flows: a key, its mask, actions and statistics, and their binary codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u32
from odpctl.odp.actions import Action, decode_actions, encode_actions
from odpctl.odp.keys import FlowKey, decode_key_at, encode_key
from odpctl.odp.uapi import FlowAttr

# struct ovs_flow_stats { __u64 n_packets; __u64 n_bytes; }
_FLOW_STATS = struct.Struct("=QQ")
_U64 = struct.Struct("=Q")
_U8 = struct.Struct("=B")
_HDR = struct.Struct("=HH")

UFID_SIZE = 16

# Plain ints: the decode loop compares against them for every attribute.
_KEY = int(FlowAttr.KEY)
_MASK = int(FlowAttr.MASK)
_ACTIONS = int(FlowAttr.ACTIONS)
_STATS = int(FlowAttr.STATS)
_USED = int(FlowAttr.USED)
_TCP_FLAGS = int(FlowAttr.TCP_FLAGS)
_UFID = int(FlowAttr.UFID)


@dataclass(slots=True)
class Flow:
    """A datapath flow.

    ``mask`` None means an exact-match flow (no ``OVS_FLOW_ATTR_MASK``).
    ``used`` is the datapath's monotonic clock in milliseconds at the last
    packet (0: never); ``tcp_flags`` is the OR of the TCP flags seen.
    """

    key: FlowKey
    mask: FlowKey | None = None
    actions: list[Action] = field(default_factory=list)
    ufid: bytes | None = None
    packets: int = 0
    bytes: int = 0
    used: int = 0
    tcp_flags: int = 0


def encode_flow_attrs(
    flow: Flow, *, actions: bool = True, ufid_flags: int = 0, clear: bool = False
) -> bytes:
    """The OVS_FLOW_ATTR_* attributes of a request for ``flow``."""
    parts = []
    if flow.ufid is not None:
        parts.append(attr(FlowAttr.UFID, flow.ufid))
    if ufid_flags:
        parts.append(attr_u32(FlowAttr.UFID_FLAGS, ufid_flags))
    if flow.key or flow.ufid is None:
        parts.append(attr(FlowAttr.KEY, encode_key(flow.key)))
    if flow.mask is not None:
        parts.append(attr(FlowAttr.MASK, encode_key(flow.mask)))
    if actions:
        parts.append(attr(FlowAttr.ACTIONS, encode_actions(flow.actions)))
    if clear:
        parts.append(attr(FlowAttr.CLEAR, b""))
    return b"".join(parts)


def _wrong_size(what: str, got: int, want: int) -> DecodeError:
    return DecodeError(f"malformed flow: {what} of {got} bytes, expected {want}")


def decode_flow_attrs(data: bytes) -> Flow:
    """A flow from the attributes of a reply, dump entry or notification.

    One pass over the attributes, decoding each where it lies (this is the
    inner loop of a dump).  An attribute type given twice keeps its last
    value; types this codec does not use (PAD, PROBE, future ones) are
    passed over.
    """
    key: FlowKey | None = None
    mask: FlowKey | None = None
    actions: list[Action] = []
    ufid: bytes | None = None
    packets = nbytes = used = tcp_flags = 0
    unpack_hdr = _HDR.unpack_from
    end = len(data)
    off = 0
    while off < end:
        if end - off < 4:
            raise DecodeError(f"malformed flow: {end - off} stray bytes at offset {off}")
        nla_len, nla_type = unpack_hdr(data, off)
        nxt = off + nla_len
        if nla_len < 4 or nxt > end:
            raise DecodeError(
                f"malformed flow: attribute type {nla_type & 0x3FFF} at offset {off} "
                f"has bad length {nla_len}"
            )
        kind = nla_type & 0x3FFF
        if kind == _KEY:
            key = decode_key_at(data, off + 4, nxt)
        elif kind == _MASK:
            mask = decode_key_at(data, off + 4, nxt)
        elif kind == _ACTIONS:
            actions = decode_actions(data[off + 4 : nxt])
        elif kind == _STATS:
            if nla_len != 4 + _FLOW_STATS.size:
                raise _wrong_size("stats", nla_len - 4, _FLOW_STATS.size)
            packets, nbytes = _FLOW_STATS.unpack_from(data, off + 4)
        elif kind == _USED:
            if nla_len != 12:
                raise _wrong_size("used", nla_len - 4, 8)
            (used,) = _U64.unpack_from(data, off + 4)
        elif kind == _TCP_FLAGS:
            if nla_len != 5:
                raise _wrong_size("tcp_flags", nla_len - 4, 1)
            (tcp_flags,) = _U8.unpack_from(data, off + 4)
        elif kind == _UFID:
            ufid = data[off + 4 : nxt]
        off = (nxt + 3) & ~3
    return Flow(
        key if key is not None else FlowKey(), mask, actions, ufid, packets, nbytes, used, tcp_flags
    )

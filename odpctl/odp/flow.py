"""Flows: a key, its mask, actions and statistics, and their binary codec."""

from __future__ import annotations

import dataclasses
import functools
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u32
from odpctl.odp.actions import Action, Set, SetMasked, decode_actions, encode_actions, new_set
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
_UFID_FLAGS = int(FlowAttr.UFID_FLAGS)
_CLEAR_ATTR = attr(FlowAttr.CLEAR, b"")


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
    ufid = flow.ufid
    if ufid is not None:
        parts.append(attr(_UFID, ufid))
    if ufid_flags:
        parts.append(attr_u32(_UFID_FLAGS, ufid_flags))
    if flow.key or ufid is None:
        parts.append(attr(_KEY, encode_key(flow.key)))
    if flow.mask is not None:
        parts.append(attr(_MASK, encode_key(flow.mask)))
    if actions:
        parts.append(attr(_ACTIONS, encode_actions(flow.actions)))
    if clear:
        parts.append(_CLEAR_ATTR)
    return b"".join(parts)


# --- masks and actions seen before ------------------------------------------------
#
# A datapath has few distinct masks (one per kind of flow: weave's 100,000 flows
# have two) and few distinct action lists (one per destination), so a dump
# decodes the same mask bytes and the same action bytes again and again.  Each
# is decoded once and kept by its bytes; a flow then gets a copy of it: its own
# FlowKey or list, its own copy of every mutable value inside (a Tunnel, an
# Nsh), sharing only immutable ones (ints, bytes, NamedTuples, frozen
# actions).  So what a caller gets is what decoding would have given it,
# object identity aside, and mutating it changes nothing for anyone else.
# Values it cannot copy that way (an encap() mask, nested mutable values) are
# simply decoded every time.
#
# Bytes that do not repeat would only fill the table: when it is full and has
# served fewer hits than it holds, it is emptied and rests for a while (no
# lookups, no new entries), so a dump of all-different action lists pays for
# the attempt on one flow in ten at most.

_MEMO_SIZE = 1024
_MEMO_REST = 8 * _MEMO_SIZE

_ATOMS = (int, float, str, bytes, type(None))  # bool and the IntEnums are ints


def _immutable(value: Any) -> bool:
    """Whether nothing reachable from ``value`` can be changed in place."""
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, tuple):  # NamedTuples too
        return all(_immutable(v) for v in value)
    params = getattr(type(value), "__dataclass_params__", None)
    if params is not None and params.frozen:
        return all(_immutable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _copy_maker(value: Any) -> Callable[[], Any] | None:
    """A function that makes copies of ``value`` (a mutable dataclass of
    immutable fields, such as Tunnel or Nsh), or None if there is no such copy.

    The copy is the class's own constructor given the field values as
    positional arguments (twice as fast as keywords), bound once: a copy costs
    no frame of our own.  Trailing arguments that are their field's default
    object are left out: the constructor puts that same object there.
    """
    cls = type(value)
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    if not fields or not all(f.init and not f.kw_only for f in fields):
        return None
    args = [getattr(value, f.name) for f in fields]
    if not all(_immutable(arg) for arg in args):
        return None
    while args and args[-1] is fields[len(args) - 1].default:
        args.pop()
    make: Callable[..., Any] = cls
    return functools.partial(make, *args)


def _fresh_value(value: Any) -> tuple[bool, Callable[[], Any] | None]:
    """(whether ``value`` can be handed out again, and the function that makes
    each copy of it if it needs one)."""
    if _immutable(value):
        return True, None
    make = _copy_maker(value)
    return make is not None, make


class _Memo:
    """Decoded values by their bytes, handed out as fresh copies (see above)."""

    __slots__ = ("decode", "entries", "hits", "misses", "plan", "resting")

    def __init__(
        self,
        decode: Callable[[bytes, int, int], Any],
        plan: Callable[[Any], Callable[[], Any] | None],
    ) -> None:
        self.decode = decode
        self.plan = plan
        # bytes -> a function that makes a fresh copy, or None: decode those anew
        self.entries: dict[bytes, Callable[[], Any] | None] = {}
        self.hits = self.misses = self.resting = 0

    def get(self, data: bytes, start: int, end: int) -> Any:
        """What ``data[start:end]`` decodes to."""
        if self.resting:
            self.resting -= 1
            return self.decode(data, start, end)
        raw = data[start:end]
        if type(raw) is not bytes:
            raw = bytes(raw)  # a bytearray's slice is no dict key
        fresh: Any = self.entries.get(raw, _UNSEEN)
        if fresh is not _UNSEEN:
            self.hits += 1
            return self.decode(data, start, end) if fresh is None else fresh()
        value = self.decode(data, start, end)  # first: malformed bytes raise here
        self.misses += 1
        entries = self.entries
        if len(entries) >= _MEMO_SIZE:
            if self.misses > self.hits:
                entries.clear()
                self.hits = self.misses = 0
                self.resting = _MEMO_REST
            return value
        plan = self.plan(value)
        entries[raw] = plan
        fresh = plan
        # The caller gets a copy: the value kept must stay as it was decoded.
        return value if fresh is None else fresh()


_UNSEEN = object()


def _plan_key(key: FlowKey) -> Callable[[], FlowKey] | None:
    fixes = []
    for kind, value in key.items():
        ok, make = _fresh_value(value)
        if not ok:
            return None
        if make is not None:
            fixes.append((kind, make))
    template = FlowKey(key)
    if not fixes:
        return functools.partial(FlowKey, template)

    def fresh() -> FlowKey:
        out = FlowKey(template)
        for kind, make in fixes:
            out[kind] = make()
        return out

    return fresh


def _plan_actions(actions: list[Action]) -> Callable[[], list[Action]] | None:
    fixes: list[tuple[int, Callable[[], Action]]] = []
    for i, action in enumerate(actions):
        if _immutable(action):
            continue
        make = _plan_set(action)
        if make is None:
            return None
        fixes.append((i, make))
    template = tuple(actions)
    if not fixes:
        return functools.partial(list, template)

    def fresh() -> list[Action]:
        out = list(template)
        for i, make in fixes:
            out[i] = make()
        return out

    return fresh


def _plan_set(action: Action) -> Callable[[], Action] | None:
    """How to remake a set() or set_masked() action with fresh copies of its
    mutable value and mask (a Tunnel); None for any other mutable action."""
    if type(action) is Set:
        ok, make = _fresh_value(action.value)
        if not ok or make is None:
            return None
        kind = action.kind
        return lambda: new_set(kind, make())
    if type(action) is SetMasked:
        ok, make_value = _fresh_value(action.value)
        ok_mask, make_mask = _fresh_value(action.mask)
        if not (ok and ok_mask):
            return None
        kind, value, mask = action.kind, action.value, action.mask
        return lambda: SetMasked(
            kind,
            value if make_value is None else make_value(),
            mask if make_mask is None else make_mask(),
        )
    return None


def _decode_actions_at(data: bytes, start: int, end: int) -> list[Action]:
    return decode_actions(data[start:end])


_MASKS = _Memo(decode_key_at, _plan_key)
_ACTION_LISTS = _Memo(_decode_actions_at, _plan_actions)


def _wrong_size(what: str, got: int, want: int) -> DecodeError:
    return DecodeError(f"malformed flow: {what} of {got} bytes, expected {want}")


# --- messages of a layout seen before ----------------------------------------------
#
# A dump's messages share few layouts: the same attributes, of the same sizes,
# in the same order (the key's size follows from its attributes, and those
# of weave's 100,000 flows come in two kinds).  A layout learnt from a message
# that decoded fine is checked on the next message of its size with one
# unpack of every attribute header, which must give exactly what was learnt;
# then each part is decoded where it lies, with no walk over the attributes.


@dataclass(frozen=True, slots=True)
class _Layout:
    headers: struct.Struct  # every (nla_len, nla_type), at its offset
    expected: tuple[int, ...]
    key: tuple[int, int] | None  # where each part's payload lies
    mask: tuple[int, int] | None
    actions: tuple[int, int] | None
    ufid: tuple[int, int] | None
    numbers: struct.Struct  # the fixed-size values, in message order
    # (packets, bytes, used, tcp_flags) from the numbers and a trailing 0
    pick: Callable[[tuple[int, ...]], tuple[int, int, int, int]]

    def build(self, data: bytes, start: int) -> Flow:
        key = self.key
        mask = self.mask
        actions = self.actions
        ufid = self.ufid
        packets, nbytes, used, tcp_flags = self.pick(
            self.numbers.unpack_from(data, start) + _NO_NUMBER
        )
        return Flow(
            FlowKey() if key is None else decode_key_at(data, start + key[0], start + key[1]),
            None if mask is None else _MASKS.get(data, start + mask[0], start + mask[1]),
            []
            if actions is None
            else _ACTION_LISTS.get(data, start + actions[0], start + actions[1]),
            None if ufid is None else data[start + ufid[0] : start + ufid[1]],
            packets,
            nbytes,
            used,
            tcp_flags,
        )


_NO_NUMBER = (0,)
# The attributes whose values are numbers: their format and Flow's fields.
_NUMBERS = {
    _STATS: ("QQ", ("packets", "bytes")),
    _USED: ("Q", ("used",)),
    _TCP_FLAGS: ("B", ("tcp_flags",)),
}
_MAX_LAYOUTS = 64
_LAYOUTS: dict[int, list[_Layout]] = {}
_layout_count = 0


def _learn_layout(data: bytes, start: int) -> None:
    """Learn the layout of the attributes ``data[start:]`` (which decoded fine)."""
    global _layout_count
    if _layout_count >= _MAX_LAYOUTS:
        return
    headers, numbers = ["="], ["="]
    expected: list[int] = []
    parts: dict[int, tuple[int, int]] = {}
    # Where each of Flow's number fields is in what `numbers` unpacks; absent
    # ones get the 0 appended after the last.
    index = {"packets": -1, "bytes": -1, "used": -1, "tcp_flags": -1}
    found = 0
    end = len(data)
    off = start
    while off < end:
        nla_len, nla_type = _HDR.unpack_from(data, off)
        kind = nla_type & 0x3FFF
        if kind in parts:
            return  # given twice: the walk keeps the last, not worth a layout
        headers.append(f"{off - start - struct.calcsize(''.join(headers))}xHH")
        expected += (nla_len, nla_type)
        if kind in _NUMBERS:
            number_format, fields = _NUMBERS[kind]
            numbers.append(f"{off + 4 - start - struct.calcsize(''.join(numbers))}x")
            numbers.append(number_format)
            for name in fields:
                index[name] = found
                found += 1
        parts[kind] = (off + 4 - start, off + nla_len - start)
        off = (off + nla_len + 3) & ~3
    layout = _Layout(
        struct.Struct("".join(headers)),
        tuple(expected),
        parts.get(_KEY),
        parts.get(_MASK),
        parts.get(_ACTIONS),
        parts.get(_UFID),
        struct.Struct("".join(numbers)),
        operator.itemgetter(*(found if i < 0 else i for i in index.values())),
    )
    _LAYOUTS.setdefault(end - start, []).append(layout)
    _layout_count += 1


def decode_flow_attrs(data: bytes, start: int = 0) -> Flow:
    """A flow from the attributes of a reply, dump entry or notification:
    ``data[start:]``, so that a message's payload need not be copied out.

    A message of a layout seen before is decoded by that layout (see above);
    any other in one pass over its attributes, decoding each where it lies.
    An attribute type given twice keeps its last value; types this codec
    does not use (PAD, PROBE, future ones) are passed over.
    """
    layouts = _LAYOUTS.get(len(data) - start)
    if layouts is not None:
        for layout in layouts:
            if layout.headers.unpack_from(data, start) == layout.expected:
                return layout.build(data, start)
    flow = _walk_flow_attrs(data, start)
    _learn_layout(data, start)
    return flow


def _walk_flow_attrs(data: bytes, start: int) -> Flow:
    key: FlowKey | None = None
    mask: FlowKey | None = None
    actions: list[Action] = []
    ufid: bytes | None = None
    packets = nbytes = used = tcp_flags = 0
    unpack_hdr = _HDR.unpack_from
    masks = _MASKS.get
    action_lists = _ACTION_LISTS.get
    end = len(data)
    off = start
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
            mask = masks(data, off + 4, nxt)
        elif kind == _ACTIONS:
            actions = action_lists(data, off + 4, nxt)
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

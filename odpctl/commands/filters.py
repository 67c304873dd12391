"""Which flows a dump shows, and in which order.

A filter is a partial flow match, evaluated on each flow's (masked) key the
way ``ovs-dpctl dump-flows filter=...`` does: a flow passes when every
attribute the filter names is in the flow and agrees with the filter on
every bit the filter masks.  It is written either in ODP syntax
(``in_port(2),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0)``) or as
``field=value`` pairs (``in_port=2,eth_type=0x0800,ipv4.src=10.0.0.0/8,tcp``),
where a field is an attribute, or ``attribute.field`` inside one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from odpctl.errors import ParseError, UsageError
from odpctl.odp.flow import Flow
from odpctl.odp.keys import FlowKey, Unknown

from .flowtext import PortLookup, parse_match


@dataclass(frozen=True)
class FlowFilter:
    key: FlowKey
    mask: FlowKey

    def matches(self, flow: Flow) -> bool:
        return _key_matches(flow.key, self.key, self.mask)


def _key_matches(key: FlowKey, fkey: FlowKey, fmask: FlowKey) -> bool:
    for kind, fvalue in fkey.items():
        if kind not in key:
            return False
        if not _value_matches(key[kind], fvalue, fmask.get(kind)):
            return False
    return True


def _value_matches(value: Any, fvalue: Any, fmask: Any) -> bool:
    """Whether ``value`` agrees with ``fvalue`` wherever ``fmask`` has bits."""
    if fmask is None or fmask is False:
        return True
    if isinstance(fmask, bool):
        return bool(value) == bool(fvalue)
    if isinstance(fmask, int):
        return ((value or 0) & fmask) == ((fvalue or 0) & fmask)
    if isinstance(fmask, bytes | Unknown):
        raws = [_raw(x) for x in (value, fvalue, fmask)]
        # Pad, so that a shorter value compares as zeros under the mask.
        n = max(len(r) for r in raws)
        v, f, m = (r.ljust(n, b"\0") for r in raws)
        return all((a & c) == (b & c) for a, b, c in zip(v, f, m, strict=False))
    if isinstance(fmask, FlowKey):
        return isinstance(value, FlowKey) and _key_matches(value, fvalue, fmask)
    if isinstance(fmask, tuple):
        if value is None or len(value) != len(fmask):
            return False
        return all(_value_matches(*t) for t in zip(value, fvalue, fmask, strict=True))
    if dataclasses.is_dataclass(fmask):
        if value is None:
            return False
        return all(
            _value_matches(getattr(value, f.name), getattr(fvalue, f.name), getattr(fmask, f.name))
            for f in dataclasses.fields(fmask)
        )
    return bool(value == fvalue)


def _raw(value: Any) -> bytes:
    data = value.data if isinstance(value, Unknown) else value
    return bytes(data or b"")


# --- the field=value form -----------------------------------------------------------

_ITEM = re.compile(r"\s*([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\s*(?:=\s*([^,\s]*))?\s*")


def _prefix_mask(value: str) -> str:
    """``10.0.0.0/8`` -> ``10.0.0.0/255.0.0.0`` (and the same for IPv6)."""
    addr, sep, length = value.partition("/")
    if not sep or not length.isdigit():
        return value
    try:
        net = ipaddress.ip_network(f"0.0.0.0/{length}" if "." in addr else f"::/{length}")
    except ValueError:
        return value
    return f"{addr}/{net.netmask}"


def _pairs_to_odp(text: str) -> tuple[str, dict[str, int]]:
    """``a=1,b.c=2`` -> ``a(1),b(c=2)``, and where each attribute began in ``text``."""
    groups: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    pos = 0
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if m is None or m.end() == pos:
            raise ParseError("expected field=value", text, pos + 1)
        attr, field, value = m[1], m[2], m[3]
        where.setdefault(attr, m.start(1) + 1)
        parts = groups.setdefault(attr, [])
        if value is not None:
            value = _prefix_mask(value.strip())
            parts.append(f"{field}={value}" if field else value)
        elif field:
            raise ParseError(f"'{attr}.{field}' needs a value", text, m.end() + 1)
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ParseError("expected ',' between fields", text, pos + 1)
            pos += 1
    return ",".join(f"{a}({','.join(p)})" for a, p in groups.items()), where


def parse_filter(text: str, lookup: PortLookup | None = None) -> FlowFilter:
    """A filter in ODP syntax, or in ``field=value`` pairs."""
    if "(" in text:
        return FlowFilter(*parse_match(text, lookup))
    odp, where = _pairs_to_odp(text)
    try:
        return FlowFilter(*parse_match(odp, lookup))
    except ParseError as exc:
        # Point at the attribute the operator typed, not into our rewrite of it.
        name = _attribute_at(odp, exc.column - 1)
        raise ParseError(exc.reason, text, where.get(name, 1)) from None


def _attribute_at(odp: str, pos: int) -> str:
    """The name of the top-level ``name(...)`` of ``odp`` that holds ``pos``."""
    depth = 0
    for i in range(min(pos, len(odp)) - 1, -1, -1):
        if odp[i] == ")":
            depth += 1
        elif odp[i] == "(":
            if depth == 0:
                m = re.search(r"\w+$", odp[:i])
                return m[0] if m else ""
            depth -= 1
    m = re.match(r"\w+", odp[pos:])
    return m[0] if m else ""


# --- time windows and order --------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``500ms``, ``5s``, ``2m``, ``1h``, ``1d`` or plain seconds -> seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise UsageError(f"invalid duration '{text}': use e.g. 500ms, 5s, 2m, 1h")
    return float(m[1]) * _UNIT_SECONDS[m[2]]


def used_within(seconds: float, now: int) -> Callable[[Flow], bool]:
    """Flows that matched a packet in the last ``seconds`` (of datapath time ``now``)."""
    limit = now - int(seconds * 1000)
    return lambda flow: flow.used != 0 and flow.used >= limit


class SortOrder(StrEnum):
    """Dump orders; ties are broken by the flow's match text, so output is stable."""

    key = "key"
    packets = "packets"
    bytes = "bytes"
    used = "used"
    none = "none"


def sort_flows(
    flows: Iterable[Flow], order: SortOrder, text_of: Callable[[Flow], str], *, reverse: bool
) -> list[Flow]:
    """Flows in ``order``: by in_port then match text (key), busiest first
    (packets, bytes), most recently used first (used), or as the datapath
    gave them (none)."""
    items = list(flows)
    if order is SortOrder.none:
        return items[::-1] if reverse else items
    texts = {id(f): text_of(f) for f in items}
    if order is SortOrder.key:
        items.sort(key=lambda f: (f.key.in_port is None, f.key.in_port or 0, texts[id(f)]))
    else:
        attr = {"packets": "packets", "bytes": "bytes", "used": "used"}[order.value]
        items.sort(key=lambda f: (-getattr(f, attr), texts[id(f)]))
    return items[::-1] if reverse else items

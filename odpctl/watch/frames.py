"""What one refresh of each view holds: flows, ports, datapath lookups.

Frames are plain data built from samples by the trackers; renderers (live,
lines, JSON, the shell's toolbar) only read them.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from odpctl.odp.datapath import Datapath
from odpctl.odp.flow import Flow
from odpctl.odp.upcalls import VportEvent
from odpctl.odp.vport import Vport

from .tracker import Entry, State, Tracker, counter_rate, sum_rates

# --- datapath lookups ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupRates:
    """Packets per second that hit a flow, missed (went up), or were lost."""

    hit: float
    missed: float
    lost: float

    @property
    def lookups(self) -> float:
        return self.hit + self.missed + self.lost

    @property
    def hit_ratio(self) -> float | None:
        """Percent of lookups that hit a flow; None when there were none."""
        total = self.lookups
        return self.hit / total * 100 if total else None


@dataclass(frozen=True, slots=True)
class StatsFrame:
    dp: Datapath
    time: float  # monotonic seconds of the sample
    wall: float  # time.time() of the sample
    interval: float | None  # seconds since the previous sample
    rates: LookupRates | None  # over the last interval
    average: LookupRates | None  # since the first sample
    history: tuple[LookupRates, ...]  # oldest first
    # The router's tunnel and fallback traffic refused unauthenticated, by reason
    # (None: no router answers here).
    refused: dict[str, int] | None = None
    # Frames the ports dropped on arrival (a full receive ring), summed.
    rx_dropped: int | None = None
    # Misses the router read but did not handle: drops and errors, by reason
    # (None: no router answers here).
    unhandled: dict[str, int] | None = None


def _lookup_rates(before: Datapath, after: Datapath, seconds: float) -> LookupRates | None:
    rates = [
        counter_rate(getattr(before, name), getattr(after, name), seconds)
        for name in ("hit", "missed", "lost")
    ]
    if any(r is None for r in rates):
        return None
    hit, missed, lost = (r or 0.0 for r in rates)
    return LookupRates(hit, missed, lost)


class StatsTracker:
    """Lookup rates of one datapath from sample to sample."""

    def __init__(self, history: int = 120) -> None:
        self._first: tuple[Datapath, float] | None = None
        self._prev: tuple[Datapath, float] | None = None
        self._history: deque[LookupRates] = deque(maxlen=history)

    def update(self, dp: Datapath, now: float, wall: float) -> StatsFrame:
        rates = average = None
        interval = None
        if self._prev is not None and self._first is not None:
            prev_dp, prev_t = self._prev
            interval = now - prev_t
            rates = _lookup_rates(prev_dp, dp, interval)
            first_dp, first_t = self._first
            average = _lookup_rates(first_dp, dp, now - first_t)
            if rates is not None:
                self._history.append(rates)
        else:
            self._first = (dp, now)
        self._prev = (dp, now)
        return StatsFrame(dp, now, wall, interval, rates, average, tuple(self._history))


# --- flows ----------------------------------------------------------------------------

PPS, BPS = 0, 1  # indexes of a flow entry's rates: packets and bytes per second


def flow_ident(flow: Flow) -> Hashable:
    """What names a flow from dump to dump: its UFID, else its key and mask.

    The key is made hashable as it is, not encoded: this runs for every flow
    of every dump, and encoding costs tens of microseconds a flow.
    """
    if flow.ufid is not None:
        return flow.ufid
    return (_frozen_key(flow.key), _frozen_key(flow.mask) if flow.mask is not None else None)


def _frozen_key(key: dict[int, Any]) -> Hashable:
    items = tuple(key.items())
    try:
        hash(items)  # the usual case: ints, bytes and NamedTuples only
    except TypeError:  # a tunnel, NSH or nested key inside
        return tuple((kind, _frozen(value)) for kind, value in items)
    return items


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return _frozen_key(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            *(_frozen(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    return value  # type: ignore[no-any-return]


def _flow_counters(flow: Flow) -> tuple[int, int]:
    return (flow.packets, flow.bytes)


def flow_tracker(linger: float = 3.0) -> Tracker[Flow]:
    return Tracker(flow_ident, _flow_counters, linger=linger)


@dataclass(slots=True)
class FlowFrame:
    datapath: str
    time: float
    wall: float
    interval: float | None
    entries: list[Entry[Flow]]
    total: int  # flows in the datapath, before filtering
    stats: StatsFrame | None = None

    def count(self, state: State) -> int:
        """Entries in ``state``; for removed, those that went since the previous refresh
        (the earlier ones still lingering are not counted again)."""
        if state is State.removed:
            return sum(1 for e in self.entries if e.state is state and e.gone_at == self.time)
        return sum(1 for e in self.entries if e.state is state)

    @property
    def shown(self) -> int:
        """Flows in the datapath that passed the filter (the leaving ones left out)."""
        return sum(1 for e in self.entries if e.state is not State.removed)

    @property
    def rates(self) -> tuple[float, float] | None:
        """Total packets and bytes per second of the flows shown."""
        total = sum_rates(self.entries, 2)
        return (total[PPS], total[BPS]) if total is not None else None


class FlowSort(StrEnum):
    """Orders of `odpctl watch flows`; ties go by match text, so rows hold still."""

    pps = "pps"
    bps = "bps"
    packets = "packets"
    bytes = "bytes"
    used = "used"
    age = "age"
    in_port = "in_port"
    match = "match"
    actions = "actions"


# Busiest, most recent, youngest first; text columns in alphabetical order.
_DESCENDING = {
    FlowSort.pps,
    FlowSort.bps,
    FlowSort.packets,
    FlowSort.bytes,
    FlowSort.used,
    FlowSort.age,
}


def sort_entries(
    entries: Iterable[Entry[Flow]],
    order: FlowSort,
    *,
    reverse: bool = False,
    match_text: Callable[[Flow], str],
    actions_text: Callable[[Flow], str],
) -> list[Entry[Flow]]:
    """Entries in ``order``; flows leaving sort as if idle."""
    items = list(entries)
    texts: dict[int, str] = {}

    def text(entry: Entry[Flow]) -> str:
        key = id(entry)
        if key not in texts:
            texts[key] = match_text(entry.item)
        return texts[key]

    def rate(entry: Entry[Flow], index: int) -> float:
        return entry.rates[index] if entry.rates is not None else -1.0

    primary: dict[FlowSort, Callable[[Entry[Flow]], Any]] = {
        FlowSort.pps: lambda e: rate(e, PPS),
        FlowSort.bps: lambda e: rate(e, BPS),
        FlowSort.packets: lambda e: e.item.packets,
        FlowSort.bytes: lambda e: e.item.bytes,
        FlowSort.used: lambda e: e.item.used,
        FlowSort.age: lambda e: e.first_seen,
        FlowSort.in_port: lambda e: (e.item.key.in_port is None, e.item.key.in_port or 0),
        FlowSort.match: text,
        FlowSort.actions: lambda e: actions_text(e.item),
    }
    key = primary[order]
    # Two stable sorts: the tie-breaker first, then the column (maybe descending).
    # Ties go by in_port, then by identity: stable from refresh to refresh, and
    # cheap (formatting every flow's match for ties would cost more than the dump).
    items.sort(key=lambda e: (e.item.key.in_port or 0, hash(e.ident)))
    items.sort(key=key, reverse=(order in _DESCENDING) != reverse)
    return items


# --- ports ------------------------------------------------------------------------------

# Indexes of a port entry's rates.
RX_PPS, TX_PPS, RX_BPS, TX_BPS, ERRORS, DROPS = range(6)


def _port_ident(vport: Vport) -> Hashable:
    # A number reused by another device after a delete is another port.
    return (vport.port_no, vport.name)


def _port_counters(vport: Vport) -> tuple[int, ...]:
    s = vport.stats
    if s is None:
        return (0, 0, 0, 0, 0, 0)
    return (
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        s.rx_errors + s.tx_errors,
        s.rx_dropped + s.tx_dropped,
    )


def port_tracker(linger: float = 3.0) -> Tracker[Vport]:
    return Tracker(_port_ident, _port_counters, linger=linger)


@dataclass(frozen=True, slots=True)
class TimedEvent:
    wall: float
    event: VportEvent


@dataclass(slots=True)
class PortFrame:
    datapath: str
    time: float
    wall: float
    interval: float | None
    entries: list[Entry[Vport]]
    events: Sequence[TimedEvent] = field(default_factory=tuple)  # recent, oldest first
    stats: StatsFrame | None = None

"""Counters between samples: per-second rates, and items coming and going.

A `Tracker` is fed one sample after another (every flow of a dump, every
port of a datapath), each item with a stable identity and a tuple of
monotonic counters.  For each sample it answers, per item: the rate of each
counter since the previous sample, and whether the item is new, was already
there, or has gone (a gone item stays, as "leaving", for ``linger`` seconds
so that a person sees it go).

The rules, which the tests pin down:

- the first sample has no rates (there is nothing to compare with), and its
  items are "present", not "new";
- an item that appears later is "new" for that one sample, and its rates
  count from zero: it did not exist at the previous sample, so everything
  it counted happened in between;
- a counter that went down was reset (a flow replaced, statistics cleared):
  it restarted from zero, so its rate is its value over the interval;
- an interval of zero or less (a clock that did not move) gives no rates.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")

Counters = tuple[int, ...]
Rates = tuple[float, ...]


class State(StrEnum):
    present = "present"  # there at the first sample
    new = "new"  # appeared since the previous sample
    live = "live"  # there at this sample and the one before
    removed = "removed"  # gone since an earlier sample; shown while it lingers


def counter_rate(before: int | None, after: int, seconds: float) -> float | None:
    """Per-second rate of a counter that went from ``before`` to ``after``.

    ``before`` None means the counter did not exist (counts from zero).
    """
    if seconds <= 0:
        return None
    return _delta(before, after) / seconds


def _delta(before: int | None, after: int) -> int:
    delta = after - (before or 0)
    # Gone down: reset, so it restarted from zero during the interval.
    return after if delta < 0 else delta


@dataclass(slots=True)
class Entry(Generic[T]):
    """One item in one sample, with what changed since the previous one."""

    ident: Hashable
    item: T
    state: State
    rates: Rates | None  # per counter; None on the first sample or while leaving
    first_seen: float  # sample time the item first appeared
    gone_at: float | None = None  # sample time it was first missing
    counters: Counters = ()  # the item's counters at this sample


class Tracker(Generic[T]):
    """Follows items from sample to sample (see the module's rules)."""

    def __init__(
        self,
        ident: Callable[[T], Hashable],
        counters: Callable[[T], Counters],
        *,
        linger: float = 3.0,
    ) -> None:
        self._ident = ident
        self._counters = counters
        self.linger = linger
        # The entries of the last sample, by identity: the next one's "before".
        self._known: dict[Hashable, Entry[T]] = {}
        self._last: float | None = None

    @property
    def last_time(self) -> float | None:
        return self._last

    def update(self, items: Iterable[T], now: float) -> list[Entry[T]]:
        """The entries of the sample taken at ``now`` (seconds, monotonic)."""
        # This runs for every flow of every dump: one lookup and one object per item.
        first = self._last is None
        seconds = 0.0 if self._last is None else now - self._last
        known = self._known
        ident_of, counters_of = self._ident, self._counters
        seen: dict[Hashable, Entry[T]] = {}
        fresh = State.present if first else State.new
        for item in items:
            ident = ident_of(item)
            counters = counters_of(item)
            prev = known.get(ident)
            if prev is not None and prev.gone_at is None:
                rates = None if first else _rates(prev.counters, counters, seconds)
                entry = Entry(ident, item, State.live, rates, prev.first_seen, None, counters)
            else:  # never seen, or seen leaving: it (re)appeared, counting from zero
                rates = None if first else _rates(None, counters, seconds)
                entry = Entry(ident, item, fresh, rates, now, None, counters)
            seen[ident] = entry
        for ident, prev in known.items():
            if ident in seen:
                continue
            gone_at = prev.gone_at if prev.gone_at is not None else now
            if now - gone_at < self.linger or prev.gone_at is None:
                seen[ident] = Entry(
                    ident, prev.item, State.removed, None, prev.first_seen, gone_at, prev.counters
                )
        self._known = seen
        self._last = now
        return list(seen.values())


def _rates(before: Counters | None, after: Counters, seconds: float) -> Rates | None:
    if seconds <= 0:
        return None
    if before is None or len(before) != len(after):
        return tuple([a / seconds for a in after])
    return tuple([_delta(b, a) / seconds for b, a in zip(before, after, strict=True)])


def sum_rates(entries: Sequence[Entry[T]], width: int) -> Rates | None:
    """Column sums of the rates of the entries that have them; None if none do."""
    total = [0.0] * width
    any_rates = False
    for entry in entries:
        if entry.rates is not None:
            any_rates = True
            for i, value in enumerate(entry.rates[:width]):
                total[i] += value
    return tuple(total) if any_rates else None

"""Rates between samples, on synthetic sample sequences."""

from __future__ import annotations

from typing import Any

import pytest

from odpctl.watch.tracker import State, Tracker, counter_rate, sum_rates

Item = tuple[str, int, int]  # name, packets, bytes


def tracker(linger: float = 3.0) -> Tracker[Item]:
    return Tracker(lambda i: i[0], lambda i: (i[1], i[2]), linger=linger)


def by_name(entries: list[Any]) -> dict[Any, Any]:
    return {e.ident: e for e in entries}


def test_first_sample_has_no_rates_and_nothing_is_new() -> None:
    t = tracker()
    entries = t.update([("a", 10, 1000), ("b", 0, 0)], now=100.0)
    assert [e.state for e in entries] == [State.present, State.present]
    assert all(e.rates is None for e in entries)


def test_rates_are_deltas_over_the_interval() -> None:
    t = tracker()
    t.update([("a", 10, 1000)], now=100.0)
    (a,) = t.update([("a", 30, 3000)], now=102.0)
    assert a.state is State.live
    assert a.rates == pytest.approx((10.0, 1000.0))
    (a,) = t.update([("a", 30, 3000)], now=103.0)
    assert a.rates == (0.0, 0.0)


def test_a_new_item_counts_from_zero() -> None:
    t = tracker()
    t.update([("a", 1, 1)], now=0.0)
    entries = by_name(t.update([("a", 1, 1), ("b", 5, 500)], now=0.5))
    assert entries["b"].state is State.new
    assert entries["b"].rates == pytest.approx((10.0, 1000.0))
    assert entries["b"].first_seen == 0.5
    # ... and is live at the next sample, keeping when it appeared.
    entries = by_name(t.update([("a", 1, 1), ("b", 6, 600)], now=1.5))
    assert entries["b"].state is State.live
    assert entries["b"].first_seen == 0.5
    assert entries["b"].rates == pytest.approx((1.0, 100.0))


def test_a_counter_that_went_down_was_reset() -> None:
    t = tracker()
    t.update([("a", 100, 10_000)], now=0.0)
    (a,) = t.update([("a", 4, 400)], now=2.0)
    assert a.rates == pytest.approx((2.0, 200.0))
    assert counter_rate(100, 4, 2.0) == pytest.approx(2.0)


def test_no_rates_when_the_clock_did_not_move() -> None:
    t = tracker()
    t.update([("a", 1, 1)], now=5.0)
    (a,) = t.update([("a", 2, 2)], now=5.0)
    assert a.rates is None
    assert counter_rate(1, 2, 0.0) is None
    assert counter_rate(None, 7, 1.0) == 7.0


def test_a_gone_item_lingers_then_leaves() -> None:
    t = tracker(linger=1.0)
    t.update([("a", 1, 1), ("b", 1, 1)], now=0.0)
    entries = by_name(t.update([("a", 2, 2)], now=0.5))
    gone = entries["b"]
    assert gone.state is State.removed and gone.gone_at == 0.5 and gone.rates is None
    assert gone.item == ("b", 1, 1)  # its last counters
    entries = by_name(t.update([("a", 2, 2)], now=1.0))
    assert entries["b"].state is State.removed and entries["b"].gone_at == 0.5
    entries = by_name(t.update([("a", 2, 2)], now=1.6))
    assert "b" not in entries


def test_a_gone_item_always_shows_once_even_without_linger() -> None:
    t = tracker(linger=0.0)
    t.update([("a", 1, 1)], now=0.0)
    assert [e.state for e in t.update([], now=1.0)] == [State.removed]
    assert t.update([], now=2.0) == []


def test_an_item_that_comes_back_is_new_again() -> None:
    t = tracker()
    t.update([("a", 50, 50)], now=0.0)
    t.update([], now=1.0)
    (a,) = t.update([("a", 3, 3)], now=2.0)
    assert a.state is State.new
    assert a.rates == pytest.approx((3.0, 3.0))  # from zero, over the last interval
    assert a.first_seen == 2.0


def test_sum_rates() -> None:
    t = tracker()
    t.update([("a", 0, 0), ("b", 0, 0), ("c", 0, 0)], now=0.0)
    entries = t.update([("a", 2, 20), ("b", 4, 40)], now=1.0)  # c went
    assert sum_rates(entries, 2) == pytest.approx((6.0, 60.0))
    assert sum_rates(tracker().update([("a", 1, 1)], 0.0), 2) is None

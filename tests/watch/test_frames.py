"""Frames: lookup rates, flow identity and order, port counters; the refresh clock."""

from __future__ import annotations

import pytest

from odpctl.present import odptext
from odpctl.watch.frames import (
    BPS,
    PPS,
    RX_PPS,
    TX_BPS,
    FlowSort,
    StatsTracker,
    flow_ident,
    port_tracker,
    sort_entries,
)
from odpctl.watch.sampler import Ticker
from odpctl.watch.tracker import State

from .samples import datapath, flow, flow_frames, vport


def test_lookup_rates_average_and_history() -> None:
    t = StatsTracker(history=2)
    first = t.update(datapath(hit=100, missed=10, lost=0), 0.0, 0.0)
    assert first.rates is None and first.average is None and first.interval is None
    second = t.update(datapath(hit=300, missed=20, lost=5), 2.0, 2.0)
    assert second.interval == 2.0
    assert second.rates is not None
    assert (second.rates.hit, second.rates.missed, second.rates.lost) == (100.0, 5.0, 2.5)
    assert second.rates.hit_ratio == pytest.approx(100 / 107.5 * 100)
    third = t.update(datapath(hit=300, missed=20, lost=5), 3.0, 3.0)
    assert third.rates is not None and third.average is not None
    assert third.rates.hit == 0.0 and third.rates.hit_ratio is None  # no lookups at all
    assert third.average.hit == pytest.approx(200 / 3)
    fourth = t.update(datapath(hit=301, missed=20, lost=5), 4.0, 4.0)
    assert [r.hit for r in fourth.history] == [0.0, 1.0]  # the last two only


def test_flow_identity_is_the_ufid_else_key_and_mask() -> None:
    a, b = flow(1), flow(1, packets=99)
    assert flow_ident(a) == flow_ident(b)  # statistics are not identity
    assert flow_ident(flow(2)) != flow_ident(a)
    ufid = bytes(range(16))
    assert flow_ident(flow(1, ufid=ufid)) == ufid


def test_flow_frame_totals() -> None:
    f1, f2 = flow(1), flow(2, "arp()")
    frames = flow_frames(
        [
            (0.0, [f1, f2], datapath(hit=0)),
            (
                1.0,
                [flow(1, packets=10, nbytes=1000), flow(3, packets=4, nbytes=400)],
                datapath(hit=14, missed=1),
            ),
        ]
    )
    last = frames[1]
    assert last.count(State.new) == 1 and last.count(State.removed) == 1
    assert last.count(State.live) == 1
    assert last.shown == 2 and last.total == 2
    assert last.rates == pytest.approx((14.0, 1400.0))
    assert last.stats is not None and last.stats.rates is not None
    assert last.stats.rates.missed == 1.0
    assert frames[0].rates is None


@pytest.mark.parametrize("order", list(FlowSort))
def test_every_sort_order(order: FlowSort) -> None:
    frames = flow_frames(
        [
            (0.0, [flow(1), flow(2), flow(3, "arp()")], datapath()),
            (
                1.0,
                [
                    flow(1, packets=5, nbytes=50, used=10),
                    flow(2, packets=9, nbytes=20, used=30),
                    flow(3, "arp()", packets=1, nbytes=900, used=20),
                ],
                datapath(),
            ),
        ]
    )
    entries = frames[1].entries
    rows = sort_entries(
        entries, order, match_text=odptext.match_text, actions_text=odptext.actions_text
    )
    ports = [e.item.key.in_port for e in rows]
    expected = {
        FlowSort.pps: [2, 1, 3],
        FlowSort.packets: [2, 1, 3],
        FlowSort.bps: [3, 1, 2],
        FlowSort.bytes: [3, 1, 2],
        FlowSort.used: [2, 3, 1],
        FlowSort.in_port: [1, 2, 3],
        FlowSort.match: [1, 2, 3],
    }
    if order in expected:
        assert ports == expected[order]
    reverse = sort_entries(
        entries,
        order,
        reverse=True,
        match_text=odptext.match_text,
        actions_text=odptext.actions_text,
    )
    if order in expected:
        assert [e.item.key.in_port for e in reverse] == expected[order][::-1]
    assert sorted(p or 0 for p in ports) == [1, 2, 3]


def test_leaving_flows_sort_below_idle_ones_by_rate() -> None:
    frames = flow_frames(
        [
            (0.0, [flow(1), flow(2)], datapath()),
            (1.0, [flow(1)], datapath()),
        ]
    )
    rows = sort_entries(
        frames[1].entries,
        FlowSort.pps,
        match_text=odptext.match_text,
        actions_text=odptext.actions_text,
    )
    assert [e.state for e in rows] == [State.live, State.removed]
    assert rows[0].rates is not None and rows[0].rates[PPS] == 0.0 and rows[0].rates[BPS] == 0.0


def test_port_rates() -> None:
    t = port_tracker()
    t.update([vport(1, "a", rx=10, tx=5)], 0.0)
    (entry,) = t.update([vport(1, "a", rx=30, tx=5)], 2.0)
    assert entry.rates is not None
    assert entry.rates[RX_PPS] == 10.0 and entry.rates[TX_BPS] == 0.0
    # The same number for another device is another port.
    entries = t.update([vport(1, "b")], 3.0)
    assert {(e.item.name, e.state) for e in entries} == {("b", State.new), ("a", State.removed)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ticker_keeps_to_its_grid() -> None:
    clock = FakeClock()
    ticker = Ticker(1.0, count=4, clock=clock)
    seen = []
    for i in ticker:
        seen.append((i, clock.now))
        assert ticker.remaining() == pytest.approx(101.0 + i - clock.now)
        clock.now += 0.25  # the work of a refresh
        if not ticker.finished:
            clock.now += ticker.remaining()
    assert seen == [(0, 100.0), (1, 101.0), (2, 102.0), (3, 103.0)]
    assert ticker.finished


def test_ticker_skips_slots_it_missed() -> None:
    clock = FakeClock()
    ticker = Ticker(1.0, clock=clock)
    it = iter(ticker)
    next(it)
    clock.now += 3.5  # a refresh that took three and a half intervals
    next(it)
    assert ticker.remaining() == pytest.approx(0.5)  # the next slot on the grid: 104
    assert not ticker.finished

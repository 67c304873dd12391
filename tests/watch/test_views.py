"""The live screens, drawn at a fixed size without colour."""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType

from odpctl.odp.upcalls import VportEvent
from odpctl.present import odptext
from odpctl.watch.frames import (
    FlowSort,
    PortFrame,
    StatsTracker,
    TimedEvent,
    port_tracker,
    sort_entries,
)
from odpctl.watch.views import FlowView, flow_table, port_table, sparkline, stats_table

from .samples import datapath, flow, flow_frames, vport


def draw(renderable: RenderableType, width: int = 140) -> list[str]:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text().splitlines()


def frames() -> list[Any]:
    return flow_frames(
        [
            (0.0, [flow(1, packets=1), flow(2), flow(3, "arp()")], datapath(hit=1)),
            (
                1.0,
                [flow(1, packets=11, nbytes=980), flow(2), flow(4, packets=2, nbytes=84)],
                datapath(hit=13, missed=1),
            ),
        ]
    )


def row(screen: list[str], text: str) -> str:
    (line,) = [line for line in screen if text in line]
    return line


def test_flow_screen() -> None:
    screen = draw(flow_table(frames()[1], rows=40))
    assert screen[0].startswith("odpctl watch flows  dp0  every 1s")
    assert "flows 3  new 1  removed 1  12 pkt/s  1.0 KiB/s" in screen[1]
    assert "lookups  hit 12/s  missed 1.0/s  lost 0/s  hit-ratio 92.3%  masks 2" in screen[2]
    assert "sort: pps ↓" in screen[3]
    new = row(screen, "in_port(4)")
    assert new.lstrip().startswith("+") and "2.0" in new and "84 B/s" in new
    gone = row(screen, "in_port(3)")
    assert gone.lstrip().startswith("-")
    busy = row(screen, "in_port(1)")
    assert " 10 " in busy and "980 B/s" in busy and "980 B" in busy
    order = [n for line in screen for n in (1, 2, 3, 4) if f"in_port({n})" in line]
    assert order == [1, 4, 2, 3]  # busiest first; the idle, then the leaving, last


def test_flow_screen_sorted_and_cut_to_the_room() -> None:
    screen = draw(flow_table(frames()[1], rows=8, order=FlowSort.in_port, reverse=True))
    assert "sort: in_port ↑" in screen[3]
    assert [n for line in screen for n in (1, 2, 3, 4) if f"in_port({n})" in line] == [4, 3]
    assert screen[-1] == "… 2 more"


def test_flow_screen_first_refresh_and_filter() -> None:
    screen = draw(flow_table(frames()[0], rows=40, filter_text="in_port=1"))
    assert "flows 3 (3 match in_port=1)" in screen[1]
    assert "(rates from the next refresh)" in screen[2]
    assert "-" in row(screen, "in_port(1)")


def test_stats_screen() -> None:
    t = StatsTracker()
    t.update(datapath(hit=0), 0.0, 0.0)
    t.update(datapath(hit=10, missed=5), 1.0, 1.0)
    screen = draw(stats_table(t.update(datapath(hit=30, missed=5, lost=1, flows=4), 2.0, 2.0)))
    assert screen[0].startswith("odpctl watch stats  dp0")
    assert "hit-ratio 95.2%   flows 4   masks 2" in screen[1]
    hit = row(screen, "hit  ")
    assert hit.split() == ["hit", "20", "15", "30", "▅█"]  # now, average, total, history
    assert row(screen, "lost ").split() == ["lost", "1.0", "0.5", "1", "▁█"]


def test_sparkline() -> None:
    assert sparkline([0, 1, 2, 4, 8], 10) == "▁▂▃▅█"
    assert sparkline([5, 5], 10) == "██"
    assert sparkline([0, 0], 10) == "▁▁"
    assert sparkline([1, 2, 3], 2) == "▆█"
    assert sparkline([], 5) == ""


def test_port_screen() -> None:
    t = port_tracker()
    t.update([vport(0, "dp0"), vport(1, "a")], 0.0)
    entries = t.update([vport(0, "dp0"), vport(1, "a", rx=10, tx=20), vport(2, "b")], 1.0)
    events = [TimedEvent(0.5, VportEvent("new", vport(2, "b")))]
    screen = draw(port_table(PortFrame("dp0", 1.0, 1.0, 1.0, entries), rows=30, events=events))
    assert "3 ports" in screen[1]
    a = row(screen, " a  ")
    assert a.split() == [
        "1",
        "a",
        "netdev",
        "10",
        "1000",
        "B/s",
        "20",
        "2.0",
        "KiB/s",
        "0",
        "0",
        "10",
        "20",
    ]
    assert row(screen, " b  ").split()[:3] == ["+", "2", "b"]
    assert row(screen, "new port 2: b (netdev)")


class FramesWatcher:
    """Stands for a `FlowWatcher`: gives the frames it was made with, in turn."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = iter(frames)

    def frame(self) -> object:
        return next(self.frames)


def test_new_flows_stay_highlighted_a_while_and_keys_change_the_order() -> None:
    frames = flow_frames(
        [
            (0.0, [flow(1)], datapath()),
            (1.0, [flow(1), flow(2)], datapath()),
            (2.0, [flow(1), flow(2)], datapath()),
            (9.0, [flow(1), flow(2)], datapath()),
        ]
    )
    view = FlowView(FramesWatcher(frames), 1.0, highlight=3.0)  # type: ignore[arg-type]

    def styles() -> dict[int, str]:
        frame = view.sample()
        table = view.render(frame, rows=20).renderables[4]  # type: ignore[union-attr]
        ports = [
            e.item.key.in_port or 0
            for e in sort_entries(
                frame.entries,
                view.order,
                reverse=view.reverse,
                match_text=odptext.match_text,
                actions_text=odptext.actions_text,
            )
        ]
        return {port: str(row.style or "") for port, row in zip(ports, table.rows, strict=True)}

    assert styles() == {1: ""}  # there from the start: not new
    assert styles()[2] == "bold green"  # new
    assert styles()[2] == "bold green"  # still, a second later
    assert styles()[2] == "dim"  # long since: idle like the rest

    def order() -> FlowSort:  # read anew: each key changes it
        return view.order

    assert view.key("s") and order() is FlowSort.bps
    assert view.key("S") and order() is FlowSort.pps
    assert view.key("S") and order() is FlowSort.actions  # it wraps around
    assert view.key("r") and view.reverse
    assert not view.key("x")

"""What the live views draw: rich renderables of frames, top-like.

Renderers take a frame and the room there is (rows) and return a
renderable; they print nothing, so that tests draw them at a fixed size.
A view (`FlowView`, `StatsView`, `PortView`) pairs a watcher with its
renderer and the keys it answers to; `odpctl.watch.live` runs any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from odpctl.odp.flow import Flow
from odpctl.odp.packet import Upcall
from odpctl.odp.vport import Vport
from odpctl.present import odptext, tables
from odpctl.present.jsonout import display_type
from odpctl.present.units import NO_RATE, byte_rate, clock, count_rate, percent

from .frames import (
    BPS,
    DROPS,
    ERRORS,
    PPS,
    RX_BPS,
    RX_PPS,
    TX_BPS,
    TX_PPS,
    FlowFrame,
    FlowSort,
    LookupRates,
    PortFrame,
    StatsFrame,
    TimedEvent,
    sort_entries,
)
from .lines import refused_text, upcall_fields
from .sampler import FlowWatcher, PortWatcher, StatsWatcher
from .tracker import Entry, State

NEW_STYLE = "bold green"
GONE_STYLE = "red dim"
IDLE_STYLE = "dim"
HEADER_ROWS = 6  # title, totals, lookups, keys, the table's header and rule


def _title(what: str, datapath: str, wall: float, interval: float) -> Text:
    return Text.assemble(
        (f"odpctl watch {what}", "bold"),
        "  ",
        (datapath, "bold cyan"),
        (f"  every {interval:g}s  {clock(wall)[:8]}", "dim"),
    )


def _lookups(rates: LookupRates | None, masks: int | None = None) -> Text:
    if rates is None:
        return Text("lookups  (rates from the next refresh)", style="dim")
    text = Text.assemble(
        ("lookups  ", "bold"),
        f"hit {count_rate(rates.hit)}/s  ",
        ("missed ", "yellow" if rates.missed else ""),
        f"{count_rate(rates.missed)}/s  ",
        ("lost ", "bold red" if rates.lost else ""),
        f"{count_rate(rates.lost)}/s  ",
        f"hit-ratio {percent(rates.hit_ratio)}",
    )
    if masks is not None:
        text.append(f"  masks {masks}")
    return text


def _table(*columns: str, right: Sequence[str]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold", expand=True
    )
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
    return table


def _rate_cells(rates: tuple[float, ...] | None, pairs: Sequence[tuple[int, bool]]) -> list[str]:
    """Cells of ``rates`` at the given indexes; True marks a byte rate."""
    if rates is None:
        return [NO_RATE] * len(pairs)
    return [byte_rate(rates[i]) if is_bytes else count_rate(rates[i]) for i, is_bytes in pairs]


def _marker(entry: Entry[Any], fresh: Set[object] = frozenset()) -> str:
    """ "+" for a new entry (and while it is highlighted), "-" for one leaving."""
    if entry.state is State.removed:
        return "-"
    return "+" if entry.state is State.new or entry.ident in fresh else " "


class _Quiet:
    """What a view without keys or events of its own answers."""

    def key(self, _key: str) -> bool:
        """Answer a key; whether to redraw."""
        return False

    def fileno(self) -> int | None:
        """A file to wait on besides the clock (events), or None."""
        return None

    def ready(self) -> bool:
        """Take what arrived on `fileno`; whether to redraw."""
        return False


# --- flows -------------------------------------------------------------------------------


@dataclass
class FlowView(_Quiet):
    """``watch flows``: the flow table, busiest first."""

    watcher: FlowWatcher
    interval: float
    order: FlowSort = FlowSort.pps
    reverse: bool = False
    port_names: Mapping[int, str] | None = None
    highlight: float = 3.0  # seconds a new flow stays highlighted
    filter_text: str | None = None
    _start: float | None = None  # time of the first sample

    def sample(self) -> FlowFrame:
        frame = self.watcher.frame()
        if self._start is None:
            self._start = frame.time
        return frame

    def key(self, key: str) -> bool:
        columns = list(FlowSort)
        if key in "sS":
            step = 1 if key == "s" else -1
            self.order = columns[(columns.index(self.order) + step) % len(columns)]
        elif key == "r":
            self.reverse = not self.reverse
        else:
            return False
        return True

    def render(self, frame: FlowFrame, rows: int) -> RenderableType:
        return flow_table(
            frame,
            rows=rows,
            order=self.order,
            reverse=self.reverse,
            port_names=self.port_names,
            interval=self.interval,
            # Highlighted a while: flows that came after the start, recently.
            fresh={
                e.ident
                for e in frame.entries
                if e.first_seen != self._start and frame.time - e.first_seen < self.highlight
            },
            filter_text=self.filter_text,
        )


def flow_table(
    frame: FlowFrame,
    *,
    rows: int,
    order: FlowSort = FlowSort.pps,
    reverse: bool = False,
    port_names: Mapping[int, str] | None = None,
    interval: float = 1.0,
    fresh: set[object] | None = None,
    filter_text: str | None = None,
) -> RenderableType:
    """The whole screen of `watch flows`: header, then as many flows as fit in ``rows``."""
    now_ms = odptext.now_ms()

    def match(flow: Flow) -> str:
        return odptext.match_text(flow, port_names=port_names)

    def actions(flow: Flow) -> str:
        return odptext.actions_text(flow, port_names)

    entries = sort_entries(
        frame.entries, order, reverse=reverse, match_text=match, actions_text=actions
    )
    rates = frame.rates
    shown = f"flows {tables.count(frame.total)}"
    if filter_text:
        shown += f" ({tables.count(frame.shown)} match {filter_text})"
    totals = Text.assemble(
        (shown, "bold"),
        ("  new ", ""),
        (str(frame.count(State.new)), NEW_STYLE if frame.count(State.new) else ""),
        ("  removed ", ""),
        (str(frame.count(State.removed)), GONE_STYLE if frame.count(State.removed) else ""),
        f"  {count_rate(rates[PPS]) if rates else NO_RATE} pkt/s"
        f"  {byte_rate(rates[BPS]) if rates else NO_RATE}",
    )
    stats = frame.stats
    masks = stats.dp.masks if stats is not None else None
    arrow = "↑" if reverse else "↓"
    help_line = Text(
        f"sort: {order.value} {arrow}   s/S: sort by next/previous column   r: reverse   q: quit",
        style="dim",
    )
    table = _table(
        "",
        "pkt/s",
        "B/s",
        "Packets",
        "Bytes",
        "Used",
        "Match",
        "Actions",
        right=("pkt/s", "B/s", "Packets", "Bytes", "Used"),
    )
    table.columns[6].ratio = 3
    table.columns[6].overflow = "ellipsis"
    table.columns[7].ratio = 1
    table.columns[7].overflow = "ellipsis"
    room = max(rows - HEADER_ROWS, 1)
    fresh = fresh or set()
    for entry in entries[:room]:
        flow = entry.item
        style = _style(entry, fresh)
        table.add_row(
            _marker(entry, fresh),
            *_rate_cells(entry.rates, ((PPS, False), (BPS, True))),
            tables.count(flow.packets),
            tables.size(flow.bytes),
            tables.ago(odptext.used_seconds(flow, now_ms)),
            match(flow),
            actions(flow),
            style=style,
        )
    parts: list[RenderableType] = [
        _title("flows", frame.datapath, frame.wall, interval),
        totals,
        _lookups(stats.rates if stats else None, masks),
        help_line,
        table,
    ]
    if len(entries) > room:
        parts.append(Text(f"… {len(entries) - room} more", style="dim"))
    return Group(*parts)


def _style(entry: Entry[Any], fresh: set[object]) -> str:
    if entry.state is State.removed:
        return GONE_STYLE
    if entry.state is State.new or entry.ident in fresh:
        return NEW_STYLE
    if entry.rates is not None and not any(entry.rates):
        return IDLE_STYLE
    return ""


# --- datapath statistics -----------------------------------------------------------------

_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as bars, scaled to their maximum."""
    values = list(values)[-width:] if width > 0 else []
    top = max(values, default=0.0)
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(
        _SPARKS[min(int(v / top * (len(_SPARKS) - 1) + 0.5), len(_SPARKS) - 1)] for v in values
    )


@dataclass
class StatsView(_Quiet):
    """``watch stats``: hit, miss and lost rates with their recent history."""

    watcher: StatsWatcher
    interval: float

    def sample(self) -> StatsFrame:
        return self.watcher.frame()

    def render(self, frame: StatsFrame, _rows: int) -> RenderableType:
        return stats_table(frame, interval=self.interval)


def stats_table(frame: StatsFrame, *, interval: float = 1.0, spark: int = 40) -> RenderableType:
    dp = frame.dp
    table = _table(
        "Lookups",
        "Now /s",
        "Average /s",
        "Total",
        "History",
        right=("Now /s", "Average /s", "Total"),
    )
    styles = {"hit": "green", "missed": "yellow", "lost": "red"}
    for name in ("hit", "missed", "lost"):
        now = getattr(frame.rates, name) if frame.rates is not None else None
        avg = getattr(frame.average, name) if frame.average is not None else None
        history = [getattr(r, name) for r in frame.history]
        table.add_row(
            Text(name, style="bold"),
            count_rate(now),
            count_rate(avg),
            tables.count(getattr(dp, name)),
            Text(sparkline(history, spark), style=styles[name]),
        )
    ratio = frame.rates.hit_ratio if frame.rates is not None else None
    facts = Text.assemble(
        ("hit-ratio ", "bold"),
        percent(ratio),
        ("   flows ", "bold"),
        tables.count(dp.flows),
        ("   masks ", "bold"),
        f"{dp.masks} (hit/pkt {dp.masks_hit_per_packet:.2f})",
        ("   mask cache ", "bold"),
        f"{dp.cache_hit_rate:.1f}%",
    )
    if frame.refused is not None:
        # Drops of unauthenticated tunnel traffic: an attack, or a peer out of step.
        facts.append("   refused ", style="bold")
        facts.append(refused_text(frame.refused), style="red" if frame.refused else "")
    if frame.rx_dropped is not None:
        facts.append("   rx-dropped ", style="bold")
        facts.append(str(frame.rx_dropped), style="red" if frame.rx_dropped else "")
    if frame.unhandled is not None:
        facts.append("   unhandled ", style="bold")
        facts.append(refused_text(frame.unhandled), style="red" if frame.unhandled else "")
    return Group(
        _title("stats", dp.name, frame.wall, interval),
        facts,
        Text(""),
        table,
        Text("q: quit", style="dim"),
    )


# --- ports ---------------------------------------------------------------------------------


@dataclass
class PortView(_Quiet):
    """``watch vports``: per-port rates, and port events as they come."""

    watcher: PortWatcher
    interval: float

    def sample(self) -> PortFrame:
        return self.watcher.frame()

    def fileno(self) -> int | None:
        return self.watcher.fileno()

    def ready(self) -> bool:
        return bool(self.watcher.poll_events(0))

    def render(self, frame: PortFrame, rows: int) -> RenderableType:
        return port_table(
            frame, rows=rows, interval=self.interval, events=list(self.watcher.events)
        )


def port_table(
    frame: PortFrame,
    *,
    rows: int,
    interval: float = 1.0,
    events: Sequence[TimedEvent] = (),
) -> RenderableType:
    table = _table(
        "",
        "Port",
        "Name",
        "Type",
        "RX pkt/s",
        "RX B/s",
        "TX pkt/s",
        "TX B/s",
        "Err/s",
        "Drop/s",
        "RX packets",
        "TX packets",
        right=(
            "Port",
            "RX pkt/s",
            "RX B/s",
            "TX pkt/s",
            "TX B/s",
            "Err/s",
            "Drop/s",
            "RX packets",
            "TX packets",
        ),
    )
    entries = sorted(frame.entries, key=lambda e: (e.item.port_no or 0, e.item.name))
    for entry in entries:
        vport: Vport = entry.item
        s = vport.stats
        table.add_row(
            _marker(entry),
            str(vport.port_no),
            vport.name,
            display_type(vport),
            *_rate_cells(
                entry.rates,
                (
                    (RX_PPS, False),
                    (RX_BPS, True),
                    (TX_PPS, False),
                    (TX_BPS, True),
                    (ERRORS, False),
                    (DROPS, False),
                ),
            ),
            tables.count(s.rx_packets) if s else "?",
            tables.count(s.tx_packets) if s else "?",
            style=_style(entry, set()),
        )
    room = max(rows - HEADER_ROWS - len(entries) - 3, 0)
    log = Table.grid(padding=(0, 1))
    log.add_column(style="dim")
    log.add_column()
    for timed in list(events)[-room:] if room else []:
        vport, kind = timed.event.vport, timed.event.kind
        style = {"new": NEW_STYLE, "del": GONE_STYLE}.get(kind, "")
        log.add_row(
            clock(timed.wall),
            Text(f"{kind} port {vport.port_no}: {vport.name} ({display_type(vport)})", style=style),
        )
    stats = frame.stats
    parts: list[RenderableType] = [
        _title("vports", frame.datapath, frame.wall, interval),
        Text(f"{len(frame.entries)} ports", style="bold"),
        _lookups(stats.rates if stats else None),
        Text("q: quit", style="dim"),
        table,
        Text("events", style="bold"),
        log if events else Text("(none yet)", style="dim"),
    ]
    return Group(*parts)


# --- upcalls -------------------------------------------------------------------------------

_KIND_STYLES = {"miss": "yellow", "action": "cyan"}


def upcall_text(wall: float, upcall: Upcall, port_names: Mapping[int, str] | None = None) -> Text:
    """One upcall as a coloured line: time, kind, packet summary, then its key."""
    f = upcall_fields(upcall, port_names)
    text = Text.assemble(
        (clock(wall), "dim"),
        " ",
        (f"{f.kind:<6}", _KIND_STYLES.get(f.kind, "")),
        " ",
        (f.summary, "bold"),
        ("  ", ""),
        (f.key, "dim"),
    )
    if f.userdata is not None:
        text.append(f"  userdata:{f.userdata}", style="cyan")
    return text

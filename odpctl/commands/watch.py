"""``odpctl watch``: a datapath as it moves: flows, upcalls, ports, lookup rates.

On a terminal each view is a live, top-like screen; off one (a pipe, a
file) or with --lines it prints lines, and with --json one JSON object a
line, flushed at each refresh.  Ctrl-C (or q on the live screen) stops it
cleanly, with exit status 0.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.errors import EXIT_FAILURE, OdpError, UsageError
from odpctl.odp.flow import Flow
from odpctl.present import tables
from odpctl.watch import lines
from odpctl.watch.frames import FlowSort
from odpctl.watch.live import LiveLoop, View
from odpctl.watch.sampler import FlowWatcher, PortWatcher, StatsWatcher, Ticker
from odpctl.watch.sources import Source, UpcallSource, open_source
from odpctl.watch.views import FlowView, PortView, StatsView, upcall_text

from .filters import parse_duration, parse_filter
from .options import OptionalDp
from .session import Session, session

C = TypeVar("C", bound=Callable[..., Any])

app = typer.Typer(
    help="""Watch a datapath as it moves: flows, upcalls, ports and lookup rates.

    On a terminal each view is a live screen, refreshed every --interval
    seconds (q or Ctrl-C quits). Off a terminal, or with --lines, it prints
    lines instead, flushed at each refresh so that they can be piped; --json
    prints one JSON object a line, each with "time" (seconds since the epoch),
    "event" (totals, flow, stats, port, port_rates or upcall) and "datapath".
    --count and --duration stop it on their own; Ctrl-C stops it cleanly,
    exit status 0.""",
    no_args_is_help=True,
)

Interval = Annotated[
    float,
    typer.Option(
        "--interval", "-i", metavar="SECONDS", min=0.05, help="Seconds between refreshes."
    ),
]
Count = Annotated[
    int | None,
    typer.Option(
        "--count",
        "-c",
        metavar="N",
        min=1,
        show_default=False,
        help="Stop after N refreshes (upcalls: after N upcalls).",
    ),
]
Duration = Annotated[
    str | None,
    typer.Option(
        "--duration",
        "-d",
        metavar="DURATION",
        show_default=False,
        help="Stop after DURATION (500ms, 10s, 5m).",
    ),
]
Lines = Annotated[bool, typer.Option("--lines", help="Print lines even on a terminal.")]
Every = Annotated[
    bool,
    typer.Option(
        "--all",
        "-a",
        help="Lines: print every item at each refresh, idle ones too "
        "(default: the new, the gone and the busy).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object a line.")]
Names = Annotated[
    bool, typer.Option("--names/--no-names", help="Show port names instead of numbers.")
]
Filter = Annotated[
    str | None,
    typer.Option(
        "--filter",
        metavar="MATCH",
        show_default=False,
        help="Only flows (upcalls) whose key agrees with MATCH: field=value pairs "
        "('in_port=2,eth_type=0x0800,ipv4.src=10.0.0.0/8,tcp') or ODP syntax.",
    ),
]


# --- plumbing shared by the views ---------------------------------------------------------


def stoppable(command: C) -> C:
    """Ctrl-C, SIGTERM and SIGHUP end the command cleanly: finally blocks run, exit 0.

    SIGTERM and SIGHUP are turned into KeyboardInterrupt while it runs so
    that what a watch changed (borrowed upcall PIDs) is put back on those too.
    The whole command is covered, setting up included.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _interruptible():
            return command(*args, **kwargs)

    return cast(C, run)


@contextmanager
def _interruptible() -> Iterator[None]:
    previous: dict[signal.Signals, Any] = {}

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _live(json: bool, lines_: bool) -> bool:
    return not (json or lines_) and sys.stdout.isatty()


def _ticker(interval: float, count: int | None, duration: str | None) -> Ticker:
    if duration is not None:
        seconds = parse_duration(duration)
        # Refreshes at 0, interval, 2*interval, ... up to and including the end.
        by_time = int(seconds / interval) + 1
        count = by_time if count is None else min(count, by_time)
    return Ticker(interval, count)


def _port_names(s: Session, dp: str, names: bool) -> Mapping[int, str] | None:
    return s.port_names(dp) if names else None


def _run_lines(ticker: Ticker, emit: Callable[[], None]) -> None:
    for _ in ticker:
        emit()
        if not ticker.finished:
            time.sleep(ticker.remaining())


def _run_live(view: View[Any], ticker: Ticker) -> None:
    LiveLoop(view, ticker).run()


# --- the views ------------------------------------------------------------------------------


@app.command("flows")
@stoppable
def flows(
    ctx: typer.Context,
    dp: OptionalDp = None,
    filter_text: Filter = None,
    order: Annotated[
        FlowSort,
        typer.Option(
            "--sort",
            help="Column to sort by: rates, counters and used busiest or "
            "latest first, age youngest first, text columns alphabetically "
            "(live: s/S cycles, r reverses).",
        ),
    ] = FlowSort.pps,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    names: Names = False,
    every: Every = False,
    interval: Interval = 1.0,
    count: Count = None,
    duration: Duration = None,
    lines_: Lines = False,
    json: Json = False,
) -> None:
    """A live table of the flows with packet and byte rates, busiest first.

    Rates are counted between two dumps. A flow that appeared since the last
    refresh is marked + and highlighted for a few seconds; a flow that went is
    marked - and shown leaving for a few seconds. The header has the totals
    and the datapath's hit, miss and lost rates. Lines: a totals line per
    refresh, then a line per flow that is new, removed or moved packets
    (--all: every flow), its state first.
    """
    s = session(ctx)
    name = s.dp_name(dp)
    keep = parse_filter(filter_text, s.port_numbers(name)).matches if filter_text else None
    port_names = _port_names(s, name, names)
    watcher = FlowWatcher(s.dpif(), name, keep)
    ticker = _ticker(interval, count, duration)
    if _live(json, lines_):
        _run_live(
            FlowView(watcher, interval, order, reverse, port_names, filter_text=filter_text), ticker
        )
        return
    _run_lines(
        ticker,
        lambda: lines.write(
            sys.stdout,
            lines.flow_lines(watcher.frame(), as_json=json, every=every, port_names=port_names),
        ),
    )


RouterControl = Annotated[
    Path | None,
    typer.Option(
        "--control",
        metavar="PATH",
        show_default=False,
        help="The router's control socket (default: this namespace's).",
    ),
]


@app.command("stats")
@stoppable
def stats(
    ctx: typer.Context,
    dp: OptionalDp = None,
    interval: Interval = 1.0,
    count: Count = None,
    duration: Duration = None,
    lines_: Lines = False,
    json: Json = False,
    control: RouterControl = None,
) -> None:
    """The datapath's hit, miss and lost rates, per refresh and on average.

    hit: packets that matched a flow; missed: packets sent up as upcalls;
    lost: misses nobody received (no handler, or its socket full);
    rx-dropped: frames the ports dropped on arrival (a full receive ring).
    Lines: one per refresh (the first has the counters, as there is no rate
    yet). With a router running here, refused: the tunnel and fallback
    traffic it dropped unauthenticated (forged, replayed, or plaintext where
    the mesh has a password), by reason; unhandled: the misses it read and
    dropped or failed on, by reason.
    """
    s = session(ctx)
    path = control or default_socket_path(s.netns)
    watcher = StatsWatcher(
        s.dpif(),
        s.dp_name(dp),
        refused=_router_counts(path, "encryption", "drops"),
        unhandled=_router_counts(path, "misses", "unhandled"),
    )
    ticker = _ticker(interval, count, duration)
    if _live(json, lines_):
        _run_live(StatsView(watcher, interval), ticker)
        return
    _run_lines(
        ticker, lambda: lines.write(sys.stdout, lines.stats_lines(watcher.frame(), as_json=json))
    )


def _router_counts(path: Path, request: str, key: str) -> Callable[[], dict[str, int] | None]:
    """Counters by reason the router at ``path`` answers to ``request`` under ``key``
    (None: no router answers)."""

    def ask() -> dict[str, int] | None:
        if not path.exists():
            return None
        try:
            result = ControlClient(path, timeout=1).request(request)
        except OdpError:
            return None
        counts = result.get(key) if isinstance(result, Mapping) else None
        if not isinstance(counts, Mapping):
            return None
        return {str(why): int(n) for why, n in counts.items()}

    return ask


@app.command("vports")
@stoppable
def vports(
    ctx: typer.Context,
    dp: OptionalDp = None,
    every: Every = False,
    interval: Interval = 1.0,
    count: Count = None,
    duration: Duration = None,
    lines_: Lines = False,
    json: Json = False,
) -> None:
    """Port events (added, changed, deleted) as they happen, and per-port rates.

    Lines: each event when it happens; at each refresh, a line per port that
    is new, gone or moved packets (--all: every port).
    """
    s = session(ctx)
    name = s.dp_name(dp)
    watcher = PortWatcher(s.dpif(), name)
    ticker = _ticker(interval, count, duration)
    try:
        if _live(json, lines_):
            _run_live(PortView(watcher, interval), ticker)
            return
        for _ in ticker:
            lines.write(
                sys.stdout, lines.port_rate_lines(watcher.frame(), as_json=json, every=every)
            )
            # Events as they come, until the next refresh is due.
            while not ticker.finished and (left := ticker.remaining()) > 0:
                events = watcher.poll_events(left)
                lines.write(sys.stdout, lines.port_event_lines(events, name, as_json=json))
    finally:
        watcher.close()


@app.command("upcalls")
@stoppable
def upcalls(
    ctx: typer.Context,
    dp: OptionalDp = None,
    filter_text: Filter = None,
    source: Annotated[
        Source,
        typer.Option(
            "--source",
            help="auto: the router's mirror if a router runs here, "
            "else tap; router: only the router's mirror; tap: borrow the "
            "datapath's upcall PIDs.",
        ),
    ] = Source.auto,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="tap: take upcall PIDs whose owner cannot be "
            "checked (a userspace datapath's clients).",
        ),
    ] = False,
    control: RouterControl = None,
    names: Names = False,
    count: Count = None,
    duration: Duration = None,
    lines_: Lines = False,
    json: Json = False,
) -> None:
    """Misses and userspace() upcalls as they happen: each as its ODP key and
    a one-line summary of the packet.

    A datapath sends each upcall to one socket only, so watching must not
    take them from whoever handles them. With a router running here, the
    upcalls are copies from the router's upcall mirror, and the router keeps
    handling them. Without one, the tap borrows the datapath's upcall PIDs:
    only if each is unset or points at a socket nobody holds any more (it
    refuses, naming the process, if a live socket holds one); it receives the
    misses without forwarding the packets (nobody was), also for ports added
    meanwhile, and gives every PID it still holds back on exit, even on
    Ctrl-C or SIGTERM. userspace() actions name their own PID, so the tap sees
    only those aimed at it. What the watch does is said on stderr at the start.
    """
    s = session(ctx)
    name = s.dp_name(dp)
    keep = parse_filter(filter_text, s.port_numbers(name)).matches if filter_text else None
    port_names = _port_names(s, name, names)
    deadline = time.monotonic() + parse_duration(duration) if duration is not None else None
    console = tables.make_console() if _live(json, lines_) else None
    src = open_source(s.dpif(), name, source, force=force, control=control)
    print(f"odpctl: {src.description}", file=sys.stderr)
    try:
        _show_upcalls(src, name, keep, port_names, count, deadline, json, console)
    finally:
        # Given back on every way out, Ctrl-C included (see `stoppable`).
        problems = src.close()
        for problem in problems:
            print(f"odpctl: error: could not give back {problem}", file=sys.stderr)
    if problems:
        raise typer.Exit(EXIT_FAILURE)


def _show_upcalls(
    src: UpcallSource,
    dp: str,
    keep: Callable[[Flow], bool] | None,
    port_names: Mapping[int, str] | None,
    count: int | None,
    deadline: float | None,
    as_json: bool,
    console: Console | None,
) -> None:
    seen = 0
    while count is None or seen < count:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        got = src.receive(min(left, 1.0) if left is not None else 1.0)
        if got is None:
            if src.ended:
                raise UsageError("the router closed the upcall mirror (it stopped?)")
            continue
        wall, upcall = got
        if keep is not None and not keep(Flow(upcall.key)):
            continue
        seen += 1
        if console is not None:
            console.print(upcall_text(wall, upcall, port_names), soft_wrap=True)
        else:
            lines.write(
                sys.stdout,
                [lines.upcall_line(wall, upcall, dp, as_json=as_json, port_names=port_names)],
            )

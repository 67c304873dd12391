"""``odpctl flow``: flows in ovs-dpctl's ODP syntax.

Each command takes the datapath as an optional first word, as ovs-dpctl
does: ``flow add [DP] FLOW ACTIONS`` tells the two forms apart by counting.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from odpctl.errors import (
    AlreadyExistsError,
    NotFoundError,
    OdpError,
    PermissionDeniedError,
    UsageError,
)
from odpctl.odp.actions import decode_actions, encode_actions
from odpctl.odp.flow import Flow
from odpctl.odp.keys import FlowKey, decode_key, encode_key
from odpctl.odp.text.actions import format_actions, parse_actions
from odpctl.odp.text.keys import format_key, parse_key
from odpctl.present import jsonout, odptext, tables

from . import bulk
from .filters import SortOrder, parse_duration, parse_filter, sort_flows, used_within
from .flowtext import is_ufid_only, parse_flow, parse_flow_actions
from .options import Format, FormatOption, JsonFlag, OptionalDp, output_format, split_dp
from .session import Session, session

app = typer.Typer(
    help="""Add, show and delete datapath flows; parse ODP flow text.

    FLOW is a flow key in the ODP syntax of `ovs-dpctl dump-flows`, attributes
    separated by commas: `in_port(1),eth(src=02:00:00:00:00:01),eth_type(0x0800),`
    `ipv4(src=10.0.0.0/255.0.0.0,proto=6),tcp(dst=80)`. A field left out, or an
    attribute written empty like `eth()`, matches anything; `value/mask`
    matches the bits of mask. `in_port` may name its port. A leading
    `ufid:UUID,` installs the flow under that unique id; where a command names
    one flow, `ufid:UUID` alone names it too. Quote flows for the shell.

    ACTIONS are in the same syntax: port numbers to output to (`2,3`), `drop`,
    `set(tunnel(tun_id=0x2a,dst=192.0.2.2,ttl=64,tp_dst=4789)),3`,
    `push_vlan(vid=10,pcp=0),2`, `userspace(pid=1234)`, `recirc(1)` and the rest
    of the kernel's actions.

    With --file, add, mod and del read many flows, one a line, as `ovs-dpctl
    add-flows` reads them: `[add|modify|delete] FLOW [ACTIONS]`, where FLOW has
    no blanks, the first word may change the command for that line, # starts a
    comment and blank lines are skipped. Lines go to the datapath in batches;
    each failed line is reported on standard error with its number, and the
    exit status is that of the first failure.

    These commands are ovs-dpctl's dump-flows, get-flow, add-flow, mod-flow,
    del-flow, del-flows, add-flows, mod-flows and parse-actions.""",
    no_args_is_help=True,
)

_FLOW_HELP = (
    "The flow's key in ODP syntax, e.g. 'in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1)', "
    "optionally led by 'ufid:UUID,'; in_port may name its port."
)
_DUMP_HINT = "`odpctl flow dump -m` shows each flow's UFID"

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        metavar="FILE",
        show_default=False,
        help="Read one flow a line, as `ovs-dpctl add-flows` does ('-': stdin); "
        "then only [DP] is given on the command line.",
    ),
]
MoreOption = Annotated[
    bool, typer.Option("--more", "-m", help="Show UFIDs and every field, wildcards too.")
]
NamesOption = Annotated[
    bool | None,
    typer.Option(
        "--names/--no-names",
        show_default=False,
        help="Show port names instead of numbers (default: with --more).",
    ),
]


# --- reading -------------------------------------------------------------------------


@app.command("dump")
def dump(
    ctx: typer.Context,
    dp: OptionalDp = None,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            metavar="MATCH",
            show_default=False,
            help="Only flows that agree with MATCH: field=value pairs "
            "('in_port=2,eth_type=0x0800,ipv4.src=10.0.0.0/8,tcp') or ODP syntax.",
        ),
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--used-within",
            metavar="DURATION",
            show_default=False,
            help="Only flows that matched a packet in the last DURATION (500ms, 5s, 2m, 1h).",
        ),
    ] = None,
    order: Annotated[
        SortOrder,
        typer.Option(
            "--sort",
            help="key: by in_port, then match; packets, bytes: busiest "
            "first; used: most recent first; none: as the datapath gives them.",
        ),
    ] = SortOrder.key,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    more: MoreOption = False,
    names: NamesOption = None,
    fmt: FormatOption = Format.table,
    json: JsonFlag = False,
) -> None:
    """Show a datapath's flows with their statistics.

    --format odp prints each flow as `ovs-dpctl dump-flows` does (with -m as
    `dump-flows -m`).  JSON: {"datapath": NAME, "flows": [FLOW, ...],
    "total": flows before filtering}.
    """
    s = session(ctx)
    tests: list[Callable[[Flow], bool]] = []
    if filter_text is not None:
        tests.append(parse_filter(filter_text, s.port_numbers(dp)).matches)
    window = parse_duration(within) if within is not None else None
    name = s.dp_name(dp)
    now = odptext.now_ms()
    if window is not None:
        tests.append(used_within(window, now))
    port_names = s.port_names(name) if (more if names is None else names) else None
    fmt = output_format(fmt, json)
    total = 0

    def selected() -> Iterator[Flow]:
        nonlocal total
        for flow in s.dpif().dump_flows(name):
            total += 1
            if all(test(flow) for test in tests):
                yield flow

    if fmt is Format.odp and order is SortOrder.none and not reverse:
        # Stream: a dump of 100,000 flows should not wait to be sorted.
        _write_lines(
            odptext.flow_line(f, now, verbose=more, port_names=port_names) for f in selected()
        )
        return
    # Formatting a match costs more than sorting by it: do it once, for both.
    texts: dict[int, str] = {}

    def text_of(flow: Flow) -> str:
        text = texts.get(id(flow))
        if text is None:
            text = texts[id(flow)] = odptext.match_text(flow)
        return text

    flows = sort_flows(selected(), order, text_of, reverse=reverse)
    plain = text_of if not more and port_names is None else None
    _show_flows(
        name, flows, now, fmt, more=more, port_names=port_names, total=total, match_of=plain
    )


_LINES_PER_WRITE = 256


def _write_lines(lines: Iterable[str]) -> None:
    # Lines go out a batch at a time: with stdout unbuffered (PYTHONUNBUFFERED)
    # or line-buffered (a terminal), a write per line is a system call per
    # line, which made a dump of 100,000 flows several times slower.
    out = sys.stdout
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == _LINES_PER_WRITE:
            batch.append("")
            out.write("\n".join(batch))
            batch.clear()
    if batch:
        batch.append("")
        out.write("\n".join(batch))


def _show_flows(
    dp: str,
    flows: list[Flow],
    now: int,
    fmt: Format,
    *,
    more: bool,
    port_names: dict[int, str] | None,
    total: int,
    match_of: Callable[[Flow], str] | None = None,
) -> None:
    """Flows in ``fmt``; ``match_of`` gives a flow's match text already made."""

    def match(f: Flow) -> str | None:
        return match_of(f) if match_of is not None else None

    if fmt is Format.json:
        jsonout.emit(
            {
                "datapath": dp,
                "flows": [
                    jsonout.flow_json(f, now, verbose=more, port_names=port_names, match=match(f))
                    for f in flows
                ],
                "total": total,
            }
        )
    elif fmt is Format.odp:
        _write_lines(
            odptext.flow_line(f, now, verbose=more, port_names=port_names, match=match(f))
            for f in flows
        )
    else:
        tables.make_console().print(
            tables.flow_table(flows, now, total=total, verbose=more, port_names=port_names)
        )


FlowArgs = Annotated[
    list[str] | None, typer.Argument(metavar="[DP] FLOW", help=_FLOW_HELP, show_default=False)
]
FlowActionArgs = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[DP] FLOW ACTIONS",
        show_default=False,
        help=_FLOW_HELP + " ACTIONS in ODP syntax, e.g. '2' or "
        "'set(tunnel(tun_id=0x2a,dst=10.0.0.2,ttl=64)),3' or 'drop'.",
    ),
]


def _not_found(dp: str, what: str, ufid: bytes | None) -> NotFoundError:
    hint = (
        None
        if ufid is not None
        else ("a flow installed with a UFID is found by `ufid:ID` only; " + _DUMP_HINT)
    )
    return NotFoundError(f"no such flow in datapath {dp}: {what}", hint=hint)


def _flow_ref(s: Session, dp: str | None, text: str) -> tuple[FlowKey | None, bytes | None]:
    """The key (or None) and UFID (or None) that name a flow."""
    if is_ufid_only(text):
        return None, parse_flow(text)[0]
    ufid, key, _mask = parse_flow(text, s.port_numbers(dp))
    return key, ufid


@app.command("get")
def get(
    ctx: typer.Context,
    args: FlowArgs = None,
    more: MoreOption = False,
    names: NamesOption = None,
    fmt: FormatOption = Format.table,
    json: JsonFlag = False,
) -> None:
    """Show one flow, named by its key or by `ufid:UUID`, with its statistics.

    JSON: {"datapath": NAME, "flow": FLOW}.
    """
    s = session(ctx)
    dp, (text,) = split_dp(args or [], ("FLOW",))
    key, ufid = _flow_ref(s, dp, text)
    name = s.dp_name(dp)
    now = odptext.now_ms()
    try:
        flow = s.dpif().get_flow(name, key, ufid=ufid)
    except NotFoundError:
        raise _not_found(name, text, ufid) from None
    port_names = s.port_names(name) if (more if names is None else names) else None
    fmt = output_format(fmt, json)
    if fmt is Format.json:
        jsonout.emit(
            {
                "datapath": name,
                "flow": jsonout.flow_json(flow, now, verbose=more, port_names=port_names),
            }
        )
    else:
        _show_flows(name, [flow], now, fmt, more=more, port_names=port_names, total=1)


# --- changing -----------------------------------------------------------------------


@contextmanager
def _open_lines(path: Path) -> Iterator[TextIO]:
    if str(path) == "-":
        yield sys.stdin
        return
    try:
        stream = path.open()
    except OSError as exc:
        what = f"cannot read {path}: {exc.strerror}"
        if exc.errno == errno.ENOENT:
            raise NotFoundError(what) from None
        if exc.errno == errno.EACCES:
            raise PermissionDeniedError(what) from None
        raise OdpError(what) from None
    with stream:
        yield stream


def _run_file(
    ctx: typer.Context,
    args: list[str] | None,
    path: Path,
    default: bulk.Op,
    json: bool,
    *,
    clear: bool = False,
    may_create: bool = False,
) -> None:
    if args and len(args) > 1:
        raise UsageError("with --file, give at most the datapath on the command line")
    s = session(ctx)
    name = s.dp_name(args[0] if args else None)
    with _open_lines(path) as lines:
        out = bulk.apply(
            s.dpif(),
            name,
            bulk.read_lines(lines, default),
            s.port_numbers(name),
            clear=clear,
            may_create=may_create,
        )
    where = "stdin" if str(path) == "-" else str(path)
    for e in out.errors:
        at = f"{where}:{e['line']}: " if e["line"] is not None else ""
        first, _, rest = e["error"].partition("\n")
        print(f"odpctl: error: {at}{first}", file=sys.stderr)
        if rest:
            print("  " + rest.replace("\n", "\n  "), file=sys.stderr)
    _report(out, json)
    if out.exit_code:
        raise typer.Exit(out.exit_code)


def _report(out: bulk.Outcome, json: bool, *, now: int | None = None) -> None:
    """Counts, as JSON, or as one line for people when there is more than one flow."""
    if json:
        jsonout.emit(
            {
                "datapath": out.datapath,
                "added": out.added,
                "modified": out.modified,
                "deleted": out.deleted,
                "failed": len(out.errors),
                "errors": out.errors,
                "flows": [jsonout.flow_json(f, now or odptext.now_ms()) for f in out.flows],
            }
        )
        return
    done = [
        f"{n} {verb}"
        for n, verb in ((out.added, "added"), (out.modified, "modified"), (out.deleted, "deleted"))
        if n
    ]
    failed = f"{len(out.errors)} failed" if out.errors else ""
    print(f"{', '.join(done) or 'no flows changed'}{', ' + failed if failed else ''}")


@app.command("add")
def add(
    ctx: typer.Context,
    args: FlowActionArgs = None,
    file: FileOption = None,
    json: JsonFlag = False,
) -> None:
    """Add a flow (or, with --file, many).  A flow that exists, or that overlaps
    one that does, is refused.

    JSON: {"datapath", "added", "modified", "deleted", "failed", "errors", "flows"}.
    """
    if file is not None:
        _run_file(ctx, args, file, bulk.Op.add, json)
        return
    s = session(ctx)
    dp, (flow_text, actions_text) = split_dp(args or [], ("FLOW", "ACTIONS"))
    flow = _parse_one(s, dp, flow_text, actions_text)
    name = s.dp_name(dp)
    try:
        s.dpif().add_flow(name, flow)
    except AlreadyExistsError as exc:
        raise AlreadyExistsError(
            f"{exc.message}: a flow with this key, or one overlapping it, is installed",
            errno=exc.errno,
            hint="change it with `odpctl flow mod`, or delete it first",
        ) from None
    if json:
        _report(bulk.Outcome(name, added=1), json)


def _parse_one(s: Session, dp: str | None, flow_text: str, actions_text: str) -> Flow:
    if "(" not in flow_text and not flow_text.startswith("ufid:"):
        raise UsageError(f"'{flow_text}' is not a flow: expected [DP] FLOW ACTIONS")
    ports = s.port_numbers(dp)
    ufid, key, mask = parse_flow(flow_text, ports)
    return Flow(key, mask or None, parse_flow_actions(actions_text, ports), ufid=ufid)


@app.command("mod")
def modify(
    ctx: typer.Context,
    args: FlowActionArgs = None,
    clear: Annotated[
        bool, typer.Option("--clear", "-z", help="Zero the flow's statistics too.")
    ] = False,
    may_create: Annotated[
        bool, typer.Option("--may-create", "-c", help="Add the flow if it is not there.")
    ] = False,
    file: FileOption = None,
    json: JsonFlag = False,
) -> None:
    """Replace the actions of an existing flow (or, with --file, of many).

    JSON: as for `flow add`.
    """
    if file is not None:
        _run_file(ctx, args, file, bulk.Op.modify, json, clear=clear, may_create=may_create)
        return
    s = session(ctx)
    dp, (flow_text, actions_text) = split_dp(args or [], ("FLOW", "ACTIONS"))
    flow = _parse_one(s, dp, flow_text, actions_text)
    name = s.dp_name(dp)
    out = bulk.Outcome(name)
    try:
        s.dpif().modify_flow(name, flow, clear_stats=clear)
        out.modified = 1
    except NotFoundError:
        if not may_create:
            raise _not_found(name, flow_text, flow.ufid) from None
        s.dpif().add_flow(name, flow)
        out.added = 1
    if json:
        _report(out, json)


@app.command("del")
def delete(
    ctx: typer.Context,
    args: FlowArgs = None,
    stats: Annotated[
        bool, typer.Option("--statistics", "-s", help="Print the flow's final statistics.")
    ] = False,
    file: FileOption = None,
    json: JsonFlag = False,
) -> None:
    """Delete a flow, named by its key or by `ufid:UUID` (or, with --file, many).

    JSON: as for `flow add`; "flows" holds the deleted flow with its final statistics.
    """
    if file is not None:
        _run_file(ctx, args, file, bulk.Op.delete, json)
        return
    s = session(ctx)
    dp, (text,) = split_dp(args or [], ("FLOW",))
    key, ufid = _flow_ref(s, dp, text)
    name = s.dp_name(dp)
    now = odptext.now_ms()
    try:
        flow = s.dpif().delete_flow(name, key, ufid=ufid)
    except NotFoundError:
        raise _not_found(name, text, ufid) from None
    if json:
        _report(bulk.Outcome(name, deleted=1, flows=[flow]), json, now=now)
    elif stats:
        print(odptext.stats_text(flow, now))


@app.command("flush")
def flush(ctx: typer.Context, dp: OptionalDp = None, json: JsonFlag = False) -> None:
    """Delete every flow of a datapath.  JSON: {"datapath": NAME, "flushed": true}."""
    s = session(ctx)
    name = s.dp_name(dp)
    s.dpif().flush_flows(name)
    if json:
        jsonout.emit({"datapath": name, "flushed": True})


# --- text only ----------------------------------------------------------------------


class ParseWhat(StrEnum):
    keys = "keys"
    actions = "actions"


def canonical_key(text: str) -> str:
    """``text`` as Open vSwitch prints it, after a trip through the binary form."""
    key, mask = parse_key(text)
    return format_key(decode_key(encode_key(key)), decode_key(encode_key(mask)))


def canonical_actions(text: str) -> str:
    return format_actions(decode_actions(encode_actions(parse_actions(text))))


def _canonical_lines(
    lines: Iterable[str],
    canonical: Callable[[str], str],
    collect: list[dict[str, object]] | None = None,
) -> bool:
    """Print each line's canonical text (or its error), or with ``collect``
    gather them for --json; True if all parsed."""
    ok = True
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            if collect is None:
                print(line)
            continue
        text: str | None = None
        error: str | None = None
        try:
            text = canonical(line.strip())
        except OdpError as exc:
            error = str(exc)
            ok = False
        if collect is None:
            print(text if error is None else f"error: {error}")
        else:
            collect.append(
                {"line": number, "text": line.strip(), "canonical": text, "error": error}
            )
    return ok


@app.command("parse")
def parse(
    what: Annotated[
        ParseWhat,
        typer.Argument(metavar="keys|actions", help="What each line holds: keys or actions."),
    ],
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="[FILE]",
            help="Read lines from FILE instead of standard input.",
            show_default=False,
        ),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Print each line's canonical ODP text after a round trip through the binary
    encoding; a line that does not parse prints `error: REASON` and the exit
    status is 1.  Blank lines and `#` comments pass through.

    JSON: {"lines": [{"line", "text", "canonical", "error"}, ...]}, comments and
    blank lines left out; "canonical" or "error" is null."""
    canonical = canonical_key if what is ParseWhat.keys else canonical_actions
    collect: list[dict[str, object]] | None = [] if json else None
    if file is None:
        ok = _canonical_lines(sys.stdin, canonical, collect)
    else:
        try:
            with file.open() as lines:
                ok = _canonical_lines(lines, canonical, collect)
        except BrokenPipeError:
            raise  # our reader went away: not a file we could not read
        except OSError as exc:
            raise OdpError(f"cannot read {file}: {exc.strerror}") from None
    if collect is not None:
        jsonout.emit({"lines": collect})
    if not ok:
        raise typer.Exit(1)

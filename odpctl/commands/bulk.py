"""``odpctl flow add|mod|del --file F``: many flows, batched.

Lines are what ``ovs-dpctl add-flows`` reads: ``[add|modify|delete] FLOW
[ACTIONS]``, where the command word (any prefix of it) overrides the file's
default, FLOW has no blanks, ACTIONS is the rest of the line, ``#`` starts a
comment and blank lines are skipped.  Unlike ovs-dpctl, a run of lines with
the same command goes to the datapath as one batch of requests, and every
line's outcome is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from typing import Any

from odpctl.errors import EXIT_USAGE, NotFoundError, OdpError, ParseError
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow

from .flowtext import parse_flow, parse_flow_actions

# Requests per batch: bounds memory, not speed (the library pipelines them).
BATCH = 2000


class Op(StrEnum):
    add = "add"
    modify = "modify"
    delete = "delete"


@dataclass
class FlowLine:
    number: int | None
    op: Op
    flow: str
    actions: str | None = None
    parsed: Flow | None = None


@dataclass
class Outcome:
    """Counts and errors of a run, as ``--json`` prints them."""

    datapath: str
    added: int = 0
    modified: int = 0
    deleted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)

    def fail(self, line: FlowLine, exc: OdpError) -> None:
        message = str(exc)
        if isinstance(exc, ParseError) and exc.text and exc.column:
            message += "\n" + exc.caret()
        self.errors.append(
            {
                "line": line.number,
                "flow": line.flow,
                "error": message,
                "exit_code": exc.exit_code,
            }
        )

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first failure."""
        return int(self.errors[0]["exit_code"]) if self.errors else 0


def _op_for(word: str) -> Op | None:
    for op in Op:
        if word and op.value.startswith(word):
            return op
    return None


def read_lines(lines: Iterable[str], default: Op) -> Iterator[FlowLine | tuple[int, str]]:
    """FlowLines, or (line number, problem) for a line that is not one."""
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        words = text.split(None, 1)
        first = words[0]
        op = default
        command = first.split(",", 1)[0]
        explicit = _op_for(command) if "(" not in command else None
        if explicit is not None and command == first:
            op = explicit
            text = words[1] if len(words) > 1 else ""
        parts = text.split(None, 1)
        if not parts:
            yield number, "no flow on the line"
            continue
        flow = parts[0]
        actions = parts[1].strip() if len(parts) > 1 else None
        if op is Op.delete and actions is not None:
            yield number, "a delete line takes a flow and no actions"
        elif op is not Op.delete and actions is None:
            yield number, f"an {op.value} line needs actions after the flow"
        else:
            yield FlowLine(number, op, flow, actions)


def parse_line(line: FlowLine, ports: Mapping[str, int]) -> Flow:
    ufid, key, mask = parse_flow(line.flow, ports)
    actions = parse_flow_actions(line.actions, ports) if line.actions is not None else []
    return Flow(key, mask or None, actions, ufid=ufid)


def apply(
    dpif: Dpif,
    dp: str,
    items: Iterable[FlowLine | tuple[int, str]],
    ports: Mapping[str, int],
    *,
    clear: bool = False,
    may_create: bool = False,
) -> Outcome:
    """Parse and send every line, a batch per run of one command."""
    out = Outcome(dp)

    def parsed() -> Iterator[FlowLine]:
        for item in items:
            if isinstance(item, tuple):
                number, problem = item
                out.fail(FlowLine(number, Op.add, ""), OdpError(problem))
                out.errors[-1]["exit_code"] = EXIT_USAGE
                continue
            try:
                item.parsed = parse_line(item, ports)
            except OdpError as exc:
                out.fail(item, exc)
                continue
            yield item

    for op, run in groupby(parsed(), key=lambda line: line.op):
        batch: list[FlowLine] = []
        for line in run:
            batch.append(line)
            if len(batch) >= BATCH:
                _send(dpif, dp, op, batch, out, clear=clear, may_create=may_create)
                batch = []
        if batch:
            _send(dpif, dp, op, batch, out, clear=clear, may_create=may_create)
    return out


def _per_flow(op: Op, exc: OdpError) -> OdpError:
    """The batch's error, told about this one flow ("add flow: File exists")."""
    reason = re.sub(r"^\w+ flows: ", "", exc.message)
    return type(exc)(f"{op.value} flow: {reason}", errno=exc.errno, hint=exc.hint)


def _send(
    dpif: Dpif,
    dp: str,
    op: Op,
    batch: list[FlowLine],
    out: Outcome,
    *,
    clear: bool,
    may_create: bool,
) -> None:
    flows = [line.parsed for line in batch if line.parsed is not None]
    if op is Op.add:
        results = dpif.add_flows(dp, flows)
    elif op is Op.modify:
        results = dpif.modify_flows(dp, flows, clear_stats=clear)
    else:
        results = dpif.delete_flows(dp, flows)
    missing = []
    for line, error in zip(batch, results, strict=True):
        if error is None:
            if op is Op.add:
                out.added += 1
            elif op is Op.modify:
                out.modified += 1
            else:
                out.deleted += 1
        elif may_create and op is Op.modify and isinstance(error, NotFoundError):
            missing.append(line)
        else:
            out.fail(line, _per_flow(op, error))
    if missing:
        # `--may-create`: what was not there to modify is added instead.
        _send(dpif, dp, Op.add, missing, out, clear=False, may_create=False)

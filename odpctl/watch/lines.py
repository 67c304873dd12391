"""``odpctl watch`` off a terminal: one line per event, or one JSON object a line.

Lines are for pipes (``grep``, ``jq``, a log): each starts with the time of
day, then what happened.  A refresh prints a totals line and a line for each
flow (or port) that is new, gone, or moved packets since the last one;
``every`` adds the idle ones.  The first refresh shows everything there is.

The ``*_KEYS`` tables document the JSON objects and are the contract, as
`odpctl.present.jsonout`'s are: keys are only ever added; tests check that
each object has exactly these keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from odpctl.odp.flow import Flow
from odpctl.odp.packet import Upcall
from odpctl.odp.vport import Vport
from odpctl.present import jsonout, odptext
from odpctl.present.status import reasons_text
from odpctl.present.units import byte_rate, clock, count_rate, percent

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
    LookupRates,
    PortFrame,
    StatsFrame,
    TimedEvent,
)
from .summary import summarize
from .tracker import Entry, State

COMMON_KEYS: dict[str, str] = {
    "time": "when the sample was taken (or the event seen), seconds since the epoch",
    "event": "what the object is: totals, flow, stats, port, port_rates or upcall",
    "datapath": "datapath name",
}
TOTALS_KEYS: dict[str, str] = {
    "interval": "seconds since the previous refresh, or null on the first",
    "flows": "flows in the datapath",
    "shown": "flows that pass the filter",
    "new": "flows that appeared since the previous refresh",
    "removed": "flows that went away since the previous refresh",
    "rate": 'object: "packets", "bytes" per second of the flows shown, or null',
    "lookups": 'object: "hit", "missed", "lost" packets per second, or null',
}
FLOW_EVENT_KEYS: dict[str, str] = {
    "state": "present (first refresh), new, active (moved packets), idle, or removed",
    "rate": 'object: "packets", "bytes" per second since the previous refresh, or null',
    **jsonout.FLOW_KEYS,
}
STATS_KEYS: dict[str, str] = {
    "interval": "seconds since the previous refresh, or null on the first",
    "rates": 'object: "hit", "missed", "lost" packets per second, or null on the first',
    "hit_ratio": "percent of lookups in the interval that hit a flow, or null",
    "average": 'object: "hit", "missed", "lost" packets per second since the start, or null',
    "lookups": 'object: the "hit", "missed", "lost" counters',
    "flows": "number of flows",
    "masks": "masks in use",
    "refused": "object: the router's tunnel and fallback traffic dropped unauthenticated, "
    "by reason (counters), or null when no router answers here",
    "rx_dropped": "frames the datapath's ports dropped on arrival (receive ring full), summed",
    "unhandled": "object: misses the router read but dropped or failed on, by reason "
    "(counters), or null when no router answers here",
}
PORT_EVENT_KEYS: dict[str, str] = {
    "kind": "new, set or del",
    "port": "the port, as `odpctl vport list --json` shows it",
}
PORT_RATES_KEYS: dict[str, str] = {
    "port_no": "port number",
    "name": "port name",
    "state": "present, new, active, idle or removed",
    "rates": 'object: "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "errors", '
    '"dropped" per second, or null',
}
UPCALL_KEYS: dict[str, str] = {
    "type": "miss (no flow matched) or action (a userspace() action)",
    "in_port": "input port number, or null",
    "key": "the packet's flow key in ODP syntax",
    "summary": "the packet in one line",
    "length": "the packet's length in bytes",
    "userdata": "a userspace() action's cookie in hex, or null",
}


def _state(entry: Entry[Any], active: bool) -> str:
    if entry.state is State.live:
        return "active" if active else "idle"
    return entry.state.value


def _moved(entry: Entry[Any]) -> bool:
    return entry.rates is not None and any(entry.rates)


def _shows(entry: Entry[Any], now: float, every: bool) -> bool:
    """Whether a refresh at ``now`` prints the entry."""
    if entry.state is State.removed:
        return entry.gone_at == now  # once, when it goes
    return every or entry.state is not State.live or _moved(entry)


def _lookups(rates: LookupRates | None) -> dict[str, float] | None:
    if rates is None:
        return None
    return {
        "hit": round(rates.hit, 3),
        "missed": round(rates.missed, 3),
        "lost": round(rates.lost, 3),
    }


def _lookups_text(rates: LookupRates | None) -> str:
    if rates is None:
        return ""
    return (
        f"hit {count_rate(rates.hit)}/s missed {count_rate(rates.missed)}/s "
        f"lost {count_rate(rates.lost)}/s"
    )


# --- flows ------------------------------------------------------------------------------


def flow_lines(
    frame: FlowFrame,
    *,
    as_json: bool,
    every: bool = False,
    port_names: Mapping[int, str] | None = None,
) -> Iterator[str]:
    """The lines of one refresh of `watch flows`."""
    rates = frame.rates
    lookups = frame.stats.rates if frame.stats is not None else None
    new, removed = frame.count(State.new), frame.count(State.removed)
    now_ms = odptext.now_ms()
    if as_json:
        yield _json(
            {
                "time": round(frame.wall, 3),
                "event": "totals",
                "datapath": frame.datapath,
                "interval": _round(frame.interval),
                "flows": frame.total,
                "shown": frame.shown,
                "new": new,
                "removed": removed,
                "rate": None
                if rates is None
                else {"packets": round(rates[PPS], 3), "bytes": round(rates[BPS], 3)},
                "lookups": _lookups(lookups),
            }
        )
    else:
        head = f"{clock(frame.wall)} {frame.datapath} flows {frame.total}"
        if frame.shown != frame.total:
            head += f" ({frame.shown} shown)"
        head += f" new {new} removed {removed}"
        if rates is not None:
            head += f" {count_rate(rates[PPS])} pkt/s {byte_rate(rates[BPS])}"
        if lookups is not None:
            head += " | " + _lookups_text(lookups)
        yield head
    for entry in frame.entries:
        if not _shows(entry, frame.time, every):
            continue
        state = _state(entry, _moved(entry))
        if as_json:
            yield _json(
                {
                    "time": round(frame.wall, 3),
                    "event": "flow",
                    "datapath": frame.datapath,
                    "state": state,
                    "rate": _flow_rate(entry),
                    **jsonout.flow_json(entry.item, now_ms, port_names=port_names),
                }
            )
        else:
            yield _flow_text(frame.wall, state, entry, port_names)


def _flow_rate(entry: Entry[Flow]) -> dict[str, float] | None:
    if entry.rates is None:
        return None
    return {"packets": round(entry.rates[PPS], 3), "bytes": round(entry.rates[BPS], 3)}


def _flow_text(
    wall: float, state: str, entry: Entry[Flow], port_names: Mapping[int, str] | None
) -> str:
    flow = entry.item
    pps = count_rate(entry.rates[PPS]) if entry.rates else "-"
    bps = byte_rate(entry.rates[BPS]) if entry.rates else "-"
    return (
        f"{clock(wall)} {state:<7} {pps} pkt/s {bps} "
        f"{odptext.match_text(flow, port_names=port_names)} "
        f"actions:{odptext.actions_text(flow, port_names)}"
    )


# --- datapath statistics --------------------------------------------------------------------


def stats_lines(frame: StatsFrame, *, as_json: bool) -> Iterator[str]:
    dp = frame.dp
    ratio = frame.rates.hit_ratio if frame.rates is not None else None
    if as_json:
        yield _json(
            {
                "time": round(frame.wall, 3),
                "event": "stats",
                "datapath": dp.name,
                "interval": _round(frame.interval),
                "rates": _lookups(frame.rates),
                "hit_ratio": None if ratio is None else round(ratio, 3),
                "average": _lookups(frame.average),
                "lookups": {"hit": dp.hit, "missed": dp.missed, "lost": dp.lost},
                "flows": dp.flows,
                "masks": dp.masks,
                "refused": frame.refused,
                "rx_dropped": frame.rx_dropped,
                "unhandled": frame.unhandled,
            }
        )
        return
    line = f"{clock(frame.wall)} {dp.name} "
    if frame.rates is None:
        line += f"hit {dp.hit} missed {dp.missed} lost {dp.lost} (totals)"
    else:
        line += f"{_lookups_text(frame.rates)} hit-ratio {percent(ratio)}"
    line += f" flows {dp.flows} masks {dp.masks}"
    if frame.rx_dropped is not None:
        line += f" rx-dropped {frame.rx_dropped}"
    if frame.refused is not None:
        line += " refused " + refused_text(frame.refused)
    if frame.unhandled is not None:
        line += " unhandled " + refused_text(frame.unhandled)
    yield line


def refused_text(refused: Mapping[str, int]) -> str:
    """``3 (vxlan: plaintext VXLAN 2, fallback: replay 1)``, or ``0``."""
    return reasons_text(sum(refused.values()), refused)


# --- ports ---------------------------------------------------------------------------------


def port_event_lines(events: list[TimedEvent], datapath: str, *, as_json: bool) -> Iterator[str]:
    for timed in events:
        vport = timed.event.vport
        if as_json:
            yield _json(
                {
                    "time": round(timed.wall, 3),
                    "event": "port",
                    "datapath": datapath,
                    "kind": timed.event.kind,
                    "port": jsonout.port_json(vport),
                }
            )
        else:
            yield (
                f"{clock(timed.wall)} port {timed.event.kind} "
                f"{vport.port_no}: {vport.name} ({jsonout.display_type(vport)})"
            )


_PORT_RATE_NAMES = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "errors", "dropped")


def port_rate_lines(frame: PortFrame, *, as_json: bool, every: bool = False) -> Iterator[str]:
    for entry in frame.entries:
        if not _shows(entry, frame.time, every):
            continue
        vport: Vport = entry.item
        state = _state(entry, _moved(entry))
        if as_json:
            rates = (
                None
                if entry.rates is None
                else {n: round(r, 3) for n, r in zip(_PORT_RATE_NAMES, entry.rates, strict=True)}
            )
            yield _json(
                {
                    "time": round(frame.wall, 3),
                    "event": "port_rates",
                    "datapath": frame.datapath,
                    "port_no": vport.port_no,
                    "name": vport.name,
                    "state": state,
                    "rates": rates,
                }
            )
            continue
        line = f"{clock(frame.wall)} port {vport.port_no} {vport.name} {state}"
        r = entry.rates
        if r is not None:
            line += (
                f" rx {count_rate(r[RX_PPS])} pkt/s {byte_rate(r[RX_BPS])}"
                f" tx {count_rate(r[TX_PPS])} pkt/s {byte_rate(r[TX_BPS])}"
            )
            if r[ERRORS] or r[DROPS]:
                line += f" errors {count_rate(r[ERRORS])}/s dropped {count_rate(r[DROPS])}/s"
        yield line


# --- upcalls --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpcallFields:
    """What every face shows of an upcall."""

    kind: str  # miss or action
    summary: str
    key: str
    length: int
    userdata: str | None


def upcall_fields(upcall: Upcall, port_names: Mapping[int, str] | None = None) -> UpcallFields:
    length = upcall.length if upcall.length is not None else len(upcall.packet)
    return UpcallFields(
        upcall.cmd.name.lower(),
        summarize(upcall.key, length),
        odptext.match_text(Flow(upcall.key), port_names=port_names),
        length,
        upcall.userdata.hex() if upcall.userdata is not None else None,
    )


def upcall_line(
    wall: float,
    upcall: Upcall,
    datapath: str,
    *,
    as_json: bool,
    port_names: Mapping[int, str] | None = None,
) -> str:
    f = upcall_fields(upcall, port_names)
    if as_json:
        return _json(
            {
                "time": round(wall, 3),
                "event": "upcall",
                "datapath": datapath,
                "type": f.kind,
                "in_port": upcall.key.in_port,
                "key": f.key,
                "summary": f.summary,
                "length": f.length,
                "userdata": f.userdata,
            }
        )
    line = f"{clock(wall)} {f.kind:<6} {f.summary} | {f.key}"
    if f.userdata is not None:
        line += f" userdata:{f.userdata}"
    return line


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(", ", ": "))


def write(out: TextIO, lines: Iterator[str] | list[str]) -> None:
    """Write and flush, so that a reader down the pipe sees each refresh at once."""
    for line in lines:
        out.write(line)
        out.write("\n")
    out.flush()

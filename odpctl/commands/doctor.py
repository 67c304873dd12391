"""``odpctl doctor``: see odpctl.doctor."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from odpctl.control.client import default_socket_path
from odpctl.errors import OdpError
from odpctl.present import jsonout

from .options import JsonFlag
from .router import ControlOption
from .session import session


def doctor(
    ctx: typer.Context,
    control: ControlOption = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", metavar="S", min=0.1, help="How long to watch the datapath's counters."
        ),
    ] = 1.0,
    json: JsonFlag = False,
) -> None:
    """Find what is wrong with the overlay on this host, and say how to fix it.

    Checks the datapath (which one, upcall dispatch, lost upcalls, flow
    count), the router (running, miss handlers, its datapath), each peer (TCP;
    UDP 6784 both ways by the router's heartbeats; path MTU; encryption;
    clock skew), the ports (MTU above the overlay's, link down, device gone)
    and the host (firewall rules dropping 6783/6784, rp_filter, forwarding).
    Each check says ok, warn or problem, with its evidence and a fix.
    Exit status 0: no problem (warnings allowed); 1: a problem; 2: could not
    run. JSON: {"checks": [CHECK, ...], "summary", "exit_code"}.
    """
    # Imported here: the doctor's facts need pyroute2, and no other command does.
    from odpctl.doctor import Level, diagnose

    s = session(ctx)
    try:
        control = control or default_socket_path(s.netns)
        report, facts = diagnose(s.netns, control, s.datapath, interval)
    except OdpError as exc:
        print(f"odpctl doctor: could not run: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if json:
        jsonout.emit(report.to_json())
        raise typer.Exit(report.exit_code)
    status = facts.status or {}
    who = f"{status.get('nickname')} ({status.get('name')})" if status else "no router"
    print(f"odpctl doctor: {who}" + (f", netns {s.netns}" if s.netns else ""))
    width = max((len(c.subject) for c in report.checks), default=0)
    for c in report.checks:
        print(f"{c.level:<8} {c.area:<9} {c.subject:<{width}}  {c.name:<11} {c.evidence}")
        if c.fix:
            print(f"{'':<8} {'':<9} {'':<{width}}  {'fix:':<11} {c.fix}")
    counts = {level: report.count(level) for level in Level}
    print(
        f"{counts[Level.problem]} problem(s), {counts[Level.warn]} warning(s), "
        f"{counts[Level.ok]} ok"
    )
    raise typer.Exit(report.exit_code)

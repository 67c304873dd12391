"""``odpctl demo``: see odpctl.demo."""

from __future__ import annotations

import typer
from rich.console import Console

from odpctl.commands.session import Session
from odpctl.errors import UsageError


def demo(ctx: typer.Context) -> None:
    """Build three hosts in network namespaces, each running `odpctl router start`
    with two containers; ping between every pair of containers on different hosts
    through the overlay; show a router's status and the flows it installed; and
    tear everything down, even when interrupted. The kernel datapath where the
    module is, else the userspace datapath (--datapath chooses)."""
    # Imported here: the overlay lab (routers, mesh, pyroute2) is half of
    # every other command's start-up otherwise.
    try:
        from odpctl.demo.run import run_demo
    except ModuleNotFoundError as exc:
        if exc.name != "pyroute2":
            raise
        raise UsageError("odpctl demo needs pyroute2, which is not installed",
                         hint="pip install 'odpctl[demo]'") from None

    session: Session = ctx.obj
    if not run_demo(session.datapath, Console()):
        raise typer.Exit(1)

"""``odpctl demo``: see odpctl.demo."""

from __future__ import annotations

import typer
from rich.console import Console

from odpctl.commands.session import Session


def demo(ctx: typer.Context) -> None:
    """Build three hosts in network namespaces, each running `odpctl router start`
    with two containers; ping between every pair of containers on different hosts
    through the overlay; show a router's status and the flows it installed; and
    tear everything down, even when interrupted. The kernel datapath where the
    module is, else the userspace datapath (--datapath chooses)."""
    # Imported here: the overlay lab (routers, mesh, pyroute2) is half of
    # every other command's start-up otherwise.
    from odpctl.demo.run import run_demo

    session: Session = ctx.obj
    if not run_demo(session.datapath, Console()):
        raise typer.Exit(1)

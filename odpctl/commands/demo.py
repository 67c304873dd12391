"""``odpctl demo``: see odpctl.demo."""

from __future__ import annotations

import typer
from rich.console import Console

from odpctl.commands.session import Session
from odpctl.demo import run_demo


def demo(ctx: typer.Context) -> None:
    """Build three hosts in network namespaces, each running `odpctl router start`
    with two containers; ping between every pair of containers on different hosts
    through the overlay; show a router's status and the flows it installed; and
    tear everything down, even when interrupted. The kernel datapath where the
    module is, else the userspace datapath (--datapath chooses)."""
    session: Session = ctx.obj
    if not run_demo(session.datapath, Console()):
        raise typer.Exit(1)

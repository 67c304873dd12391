"""``odpctl demo``: see odpctl.demo."""

from __future__ import annotations

import typer
from rich.console import Console

from odpctl.commands.session import Session
from odpctl.demo import run_demo


def demo(ctx: typer.Context) -> None:
    """Build three hosts around a datapath, switch their pings through it with a
    learning switch, show the flows it installed, and tear everything down."""
    session: Session = ctx.obj
    if not run_demo(session.datapath, Console()):
        raise typer.Exit(1)

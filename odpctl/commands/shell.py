"""``odpctl shell``: the interactive REPL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cmdtree import build
from .options import OptionalDp
from .session import RUNNER, session


def shell(
    ctx: typer.Context,
    dp: OptionalDp = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            metavar="FILE",
            show_default=False,
            help="History file (default: $XDG_STATE_HOME/odpctl/history, "
            "else ~/.local/state/odpctl/history).",
        ),
    ] = None,
) -> None:
    """An interactive shell: every odpctl command without `odpctl`, with completion.

    Tab (and typing) completes commands, options, datapath and port names,
    and inside a flow its key fields and actions; a grey suggestion from the
    history is taken with the right arrow. `use DP` picks the current
    datapath, which the commands that take one get when the line leaves it
    out (not the dp commands). The bottom toolbar shows the datapath, its
    flow count and its hit, miss and lost rates, refreshed every second.
    `watch` runs inside; q or Ctrl-C returns to the prompt. An error never
    ends the shell; exit, quit or Ctrl-D do.
    """
    # Imported here: prompt-toolkit is not worth loading for every other command.
    from odpctl import repl

    s = session(ctx)
    root = ctx.find_root()
    raise typer.Exit(
        repl.main(
            root.meta[RUNNER],
            build(root.command),
            netns=s.netns,
            datapath=s.datapath,
            use=dp,
            history=history,
        )
    )

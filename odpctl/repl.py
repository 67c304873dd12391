"""The entry of ``odpctl shell``: a `Shell` on a datapath, with history, until exit.

The shell runs each line as the command line would, so it needs the
command's tree (for completion) and its runner (for errors, exit statuses);
both are given by the caller, since the command itself sits above the shell.
"""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from odpctl.commands.cmdtree import CommandSpec
from odpctl.shell.app import Runner, Shell, default_history
from odpctl.shell.state import ShellState


def main(
    run: Runner,
    tree: CommandSpec,
    *,
    netns: str | None = None,
    datapath: str | None = None,
    use: str | None = None,
    history: Path | None = None,
    input: Input | None = None,
    output: Output | None = None,
    toolbar_interval: float = 1.0,
) -> int:
    """Run the shell until exit; the status to exit with."""
    state = ShellState(netns=netns, datapath=datapath)
    if use is not None:
        state.use(use)  # a wrong name fails here, before the prompt
    elif len(dps := state.datapaths()) == 1:
        state.use(dps[0])
    path = history or default_history()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        hist: History = FileHistory(str(path))
    except OSError:
        hist = InMemoryHistory()  # an unwritable home must not keep the shell from starting
    shell = Shell(
        state,
        run,
        tree,
        history=hist,
        input=input,
        output=output,
        toolbar_interval=toolbar_interval,
    )
    return shell.run()

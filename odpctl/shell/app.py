"""``odpctl shell``: the REPL.

Each line is an odpctl command without the ``odpctl`` (``flow dump``,
``watch flows``), run in this process exactly as the command line runs it
(same output, same errors, the exit status shown when it is not 0), with
the shell's --netns and --datapath, and the current datapath slipped in
where the line leaves it out.  The shell's own words: ``use DP``, ``help``,
``exit``.  Nothing a line does ends the shell but ``exit``, ``quit`` or
Ctrl-D; Ctrl-C clears the line being typed, or stops the command running.
"""

from __future__ import annotations

import os
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style

from odpctl.commands.cmdtree import CommandSpec
from odpctl.errors import OdpError

from .completer import BUILTINS, ShellCompleter
from .state import ShellState
from .toolbar import Toolbar
from .words import with_datapath

STYLE = Style.from_dict(
    {
        "prompt": "bold",
        "prompt.dp": "bold ansicyan",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "toolbar.dp": "bold ansicyan",
        "toolbar.dim": "#909090",
        "toolbar.miss": "ansiyellow",
        "toolbar.lost": "bold ansired",
        "toolbar.error": "ansired",
    }
)

# Runs one odpctl command line, as the command line would; its exit status.
Runner = Callable[[Sequence[str]], int]

BANNER = (
    "odpctl shell: commands without `odpctl` (flow dump, watch flows); use DP, help; "
    "Tab completes; exit or Ctrl-D leaves."
)


def default_history() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "odpctl" / "history"


class Exit(Exception):
    """``exit`` or ``quit`` was typed."""


class Shell:
    """The REPL; ``run_command`` runs one odpctl command line (`odpctl.cli.run`)."""

    def __init__(
        self,
        state: ShellState,
        run_command: Runner,
        root: CommandSpec,
        *,
        history: History | None = None,
        toolbar_interval: float = 1.0,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.state = state
        self.run_command = run_command
        self.root = root
        self.toolbar = Toolbar(state.open_dpif, lambda: state.current, interval=toolbar_interval)
        self.last_status = 0
        self.session: PromptSession[str] = PromptSession(
            message=self._prompt,
            history=history or InMemoryHistory(),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ShellCompleter(root, state),
            complete_while_typing=True,
            bottom_toolbar=self.toolbar,
            refresh_interval=toolbar_interval,
            style=STYLE,
            input=input,
            output=output,
        )

    def _prompt(self) -> StyleAndTextTuples:
        dp = self.state.current
        parts: StyleAndTextTuples = [("class:prompt", "odpctl")]
        if dp is not None:
            parts += [("", " "), ("class:prompt.dp", dp)]
        return [*parts, ("class:prompt", "> ")]

    def run(self) -> int:
        print(BANNER)
        self.toolbar.start()
        try:
            while True:
                try:
                    line = self.session.prompt()
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                except EOFError:
                    break
                try:
                    self.execute(line)
                except Exit:
                    break
        finally:
            self.toolbar.stop()
            self.state.close()
        return 0

    def execute(self, line: str) -> int:
        """Run one line; its status.  Raises `Exit` for exit and quit, nothing else."""
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as exc:
            return self._error(f"cannot read the line: {exc}")
        if argv[:1] == ["odpctl"]:
            argv = argv[1:]
        if not argv:
            return 0
        if argv[0] in BUILTINS:
            return self._builtin(argv)
        if argv[0] == "shell":
            return self._error("this is the shell already")
        argv = [*self.state.global_options(), *with_datapath(self.root, argv, self.state.current)]
        try:
            status = self.run_command(argv)
        except KeyboardInterrupt:
            print("^C", file=sys.stderr)
            status = 130
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # a bug must not end the shell: say it, and go on
            traceback.print_exc()
            status = self._error(f"internal error: {exc!r}")
        finally:
            self.state.forget()
        self.last_status = status
        return status

    def _error(self, message: str, status: int = 1) -> int:
        print(f"odpctl: error: {message}", file=sys.stderr)
        self.last_status = status
        return status

    def _builtin(self, argv: list[str]) -> int:
        word, args = argv[0], argv[1:]
        if word in ("exit", "quit"):
            raise Exit
        if word == "help":
            return self.execute(shlex.join([*args, "--help"]))
        return self._use(args)

    def _use(self, args: list[str]) -> int:
        if len(args) > 1:
            return self._error("use takes one datapath name (or - for none)", 2)
        if not args:
            dp = self.state.current
            print(f"using {dp}" if dp else "no current datapath (`use DP` picks one)")
            return 0
        try:
            self.state.use(None if args[0] == "-" else args[0])
        except OdpError as exc:
            return self._error(str(exc), exc.exit_code)
        print(f"using {self.state.current}" if self.state.current else "no current datapath")
        return 0

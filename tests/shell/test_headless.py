"""The shell without a terminal: prompt-toolkit's pipe input and dummy output.

Keys go in as a terminal would send them (Tab, the right arrow, Ctrl-C,
Ctrl-D), so completion, suggestions and the key bindings are the real
ones; commands go to a recorder, or (at the end) to a real userspace
datapath.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from odpctl.cli import command
from odpctl.commands.cmdtree import build
from odpctl.errors import NotFoundError, OdpError
from odpctl.odp.datapath import Datapath
from odpctl.odp.vport import Vport
from odpctl.shell.app import Exit, Shell
from odpctl.shell.state import ShellState

ROOT = build(command())
TAB, RIGHT, CTRL_C, CTRL_D = "\t", "\x1b[C", "\x03", "\x04"


class FakeDpif:
    """What the shell asks of a datapath: two of them, with two ports each."""

    def get_datapath(self, dp: str) -> Datapath:
        if dp not in ("dp0", "dp1"):
            raise NotFoundError(f"no datapath {dp}")
        return Datapath(dp, 7)

    def list_datapaths(self) -> list[Datapath]:
        return [Datapath("dp0", 7), Datapath("dp1", 8)]

    def list_vports(self, dp: str) -> list[Vport]:
        return [Vport(f"{dp}-a", port_no=1), Vport(f"{dp}-b", port_no=2)]

    def close(self) -> None:
        pass


class Recorder:
    """Stands for `odpctl.cli.run`: records each command line, answers ``status``."""

    def __init__(self) -> None:
        self.lines: list[list[str]] = []
        self.status = 0
        self.raises: BaseException | None = None

    def __call__(self, argv: Sequence[str]) -> int:
        self.lines.append(list(argv))
        if self.raises is not None:
            exc, self.raises = self.raises, None
            raise exc
        return self.status


def make_state(netns: str | None) -> ShellState:
    return ShellState(netns=netns, datapath="kernel", opener=FakeDpif)  # type: ignore[arg-type]


def run_keys(
    *chunks: str,
    netns: str | None = "ns1",
    recorder: Recorder | None = None,
    history: FileHistory | None = None,
    pause: float = 0.3,
) -> tuple[Shell, Recorder]:
    """A fresh shell, run until it ends on keys typed in ``chunks``, ``pause`` seconds
    apart (completion and suggestions are computed in the background, as a person
    pauses for them); the last should end with exit or Ctrl-D."""
    rec = recorder or Recorder()
    with create_pipe_input() as pipe:
        shell = Shell(
            make_state(netns),
            rec,
            ROOT,
            history=history,
            toolbar_interval=0.05,
            input=pipe,
            output=DummyOutput(),
        )

        def type_keys() -> None:
            for chunk in chunks:
                time.sleep(pause)
                pipe.send_text(chunk)

        typist = threading.Thread(target=type_keys, daemon=True)
        typist.start()
        assert shell.run() == 0
        typist.join(10)
    return shell, rec


def test_commands_run_without_the_prefix_with_the_shells_options() -> None:
    _, rec = run_keys("flow dump\nodpctl dp list --json\n\nexit\n")
    assert rec.lines == [
        ["--netns", "ns1", "--datapath", "kernel", "flow", "dump"],
        ["--netns", "ns1", "--datapath", "kernel", "dp", "list", "--json"],
    ]


def test_use_picks_the_datapath_commands_get(capsys: pytest.CaptureFixture[str]) -> None:
    shell, rec = run_keys(
        "use dp1\nflow dump\nvport add veth0\ndp show\nuse\nuse nosuch\nuse -\nflow dump\nquit\n",
        netns=None,
    )
    assert rec.lines == [
        ["--datapath", "kernel", "flow", "dump", "dp1"],
        ["--datapath", "kernel", "vport", "add", "dp1", "veth0"],
        ["--datapath", "kernel", "dp", "show"],
        ["--datapath", "kernel", "flow", "dump"],
    ]
    out, err = capsys.readouterr()
    assert "using dp1" in out and "no current datapath" in out
    assert "odpctl: error: no datapath nosuch" in err
    assert shell.state.current is None


def test_nothing_a_line_does_ends_the_shell(capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder()
    rec.status = 3
    shell, _ = run_keys("flow dump\nflow add 'unclosed\nshell\nexit\n", recorder=rec)
    assert shell.last_status == 1
    for exc in (RuntimeError("a bug"), SystemExit(4), KeyboardInterrupt(), OdpError("x")):
        rec.raises = exc
        shell.execute("flow dump")
    assert len(rec.lines) == 5
    with pytest.raises(Exit):
        shell.execute("exit")
    _, err = capsys.readouterr()
    assert "cannot read the line: No closing quotation" in err
    assert "this is the shell already" in err
    assert "internal error: RuntimeError('a bug')" in err
    assert "^C" in err


def test_help_runs_the_commands_help() -> None:
    _, rec = run_keys("help\nhelp watch flows\nexit\n", netns=None)
    assert [line[2:] for line in rec.lines] == [["--help"], ["watch", "flows", "--help"]]


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves() -> None:
    _, rec = run_keys(f"flow flush{CTRL_C}dp list\n{CTRL_D}")
    assert [line[4:] for line in rec.lines] == [["dp", "list"]]


def test_tab_completes_as_you_type() -> None:
    _, rec = run_keys("wat", TAB, " fl", TAB, "\n", "exit\n", netns=None)
    assert rec.lines[0][2:4] == ["watch", "flows"]


def test_history_file_and_suggestions_from_it(tmp_path: Path) -> None:
    path = tmp_path / "history"
    run_keys("flow dump dp1 --sort bytes\nexit\n", history=FileHistory(str(path)), netns=None)
    assert "flow dump dp1 --sort bytes" in path.read_text()
    # A new shell suggests the rest of that line from the history; the right arrow takes it.
    _, rec = run_keys("flow d", RIGHT, "\nexit\n", history=FileHistory(str(path)), netns=None)
    assert rec.lines == [["--datapath", "kernel", "flow", "dump", "dp1", "--sort", "bytes"]]


def test_the_prompt_shows_the_current_datapath() -> None:
    shell = Shell(make_state(None), Recorder(), ROOT)
    assert "".join(f[1] for f in shell._prompt()) == "odpctl> "
    shell.state.use("dp0")
    assert "".join(f[1] for f in shell._prompt()) == "odpctl dp0> "

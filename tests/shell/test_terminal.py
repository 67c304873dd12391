"""The shell in a real terminal (tmux): keys in, the screen read back.

Against the userspace datapath with hosts and traffic (tests/watch/fixtures.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from watch.fixtures import Hosted
from watch.tmux import Tmux

ODPCTL = str(Path(sys.executable).with_name("odpctl"))
PROMPT = "odpctl dp0>"  # capture-pane drops the blank after it


@pytest.fixture
def shell(hosted: Hosted, tmp_path: Path) -> Iterator[Tmux]:
    term = Tmux(
        [ODPCTL, *hosted.bed.options, "shell", "--history", str(tmp_path / "history")],
        width=150,
        height=30,
    )
    try:
        term.wait(PROMPT, timeout=60)
        yield term
    finally:
        term.close()


def last_prompt_line(screen: str) -> str:
    return [line for line in screen.splitlines() if line.startswith("odpctl")][-1]


def test_completion_commands_and_errors(shell: Tmux, hosted: Hosted, tmp_path: Path) -> None:
    bed = hosted.bed
    # The toolbar: the only datapath was made current, with its flows and rates.
    screen = shell.wait(lambda s: re.search(r" dp0 +0 flows │ hit 0/s", s) is not None)
    assert screen.rstrip().splitlines()[-1].lstrip().startswith("dp0")
    shell.type("flow d")
    shell.wait(lambda s: "dump" in s and "del" in s)  # the menu, while typing
    shell.type("u")
    shell.wait(lambda s: "del" not in s)
    shell.send("Tab")
    shell.wait(lambda s: last_prompt_line(s).rstrip() == PROMPT + " flow dump")
    shell.send("Enter")
    shell.wait(lambda s: "0 flows" in s and last_prompt_line(s).rstrip() == PROMPT)
    pa, pb = bed.hosts[hosted.a], bed.hosts[hosted.b]
    shell.type(f"flow add in_port({pa}),eth(),eth_t")
    shell.wait("eth_type(  attribute")  # the menu, with the one field that fits
    shell.send("Tab")
    shell.wait(lambda s: "eth_type(" in last_prompt_line(s))
    shell.type(f"0x0800),ipv4() {pb}")
    shell.send("Enter")
    shell.type("vport list -s")
    shell.send("Enter")
    shell.wait("3 ports")
    shell.type("nonsense")
    shell.send("Enter")
    shell.wait("odpctl: error: no such command 'nonsense'")
    shell.type("flow dump --json")
    shell.send("Enter")
    shell.wait('"match": "in_port(1),eth(),eth_type(0x0800)"')
    # A suggestion from the history, taken with the right arrow.
    shell.type("vport l")
    shell.wait(lambda s: last_prompt_line(s).rstrip() == PROMPT + " vport list -s")
    shell.send("Right", "Enter")
    # Ctrl-D once the prompt is back: typed ahead, the terminal would eat it as EOF.
    shell.wait(
        lambda s: (
            "3 ports" in s.split("vport list -s")[-1] and last_prompt_line(s).rstrip() == PROMPT
        )
    )
    shell.send("C-d")
    screen = shell.wait("EXIT=0")
    history = (tmp_path / "history").read_text()
    assert "+flow dump --json" in history and history.count("+vport list -s") == 2


def test_toolbar_is_live_and_watch_runs_inside(shell: Tmux, hosted: Hosted) -> None:
    bed, a, b = hosted.bed, hosted.a, hosted.b
    bed.connect(a, b)
    with bed.pinging(a, b):
        # The toolbar refreshes by itself: hit rates appear with no key pressed.
        shell.wait(lambda s: re.search(r"4 flows │ hit [1-9]", s) is not None)
        shell.type("watch flows -i 0.5")
        shell.send("Enter")
        shell.wait("odpctl watch flows  dp0  every 0.5s")
        shell.wait(
            lambda s: re.search(r"^\s+[1-9]\d*\s.*in_port\(1\)", s, re.MULTILINE) is not None
        )
        shell.type("q")
        shell.wait(lambda s: last_prompt_line(s).rstrip() == PROMPT)
        shell.type("watch stats -i 0.3")
        shell.send("Enter")
        shell.wait("odpctl watch stats  dp0")
        shell.send("C-c")  # stops the watch, not the shell
        shell.wait(lambda s: last_prompt_line(s).rstrip() == PROMPT)
    shell.type("use -")
    shell.send("Enter")
    shell.wait("no current datapath")
    shell.type("exit")
    shell.send("Enter")
    shell.wait("EXIT=0")

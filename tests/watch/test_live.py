"""The live screens in a real terminal (tmux), on the userspace datapath with traffic."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.odp.actions import Output
from odpctl.odp.flow import Flow
from odpctl.odp.text.keys import parse_key
from odpctl.odp.vport import Vport

from .bed import ip
from .fixtures import Hosted
from .tmux import Tmux

ODPCTL = str(Path(sys.executable).with_name("odpctl"))


@pytest.fixture
def terminal(hosted: Hosted) -> Iterator[list[Tmux]]:  # noqa: ARG001 - needs the hosts up
    opened: list[Tmux] = []
    yield opened
    for term in opened:
        term.close()


def start(terminal: list[Tmux], hosted: Hosted, *argv: str) -> Tmux:
    term = Tmux([ODPCTL, *hosted.bed.options, *argv])
    terminal.append(term)
    return term


def busy_row(port: int) -> re.Pattern[str]:
    """A flow row of in_port(port) with a packet rate above zero (the first rate column)."""
    return re.compile(
        rf"^\s+(\d+\.?\d*k?)\s.*in_port\({port}\),eth\(\),eth_type\(0x0800\)", re.MULTILINE
    )


def has_busy_row(screen: str, port: int) -> bool:
    return any(float(m.group(1).rstrip("k")) > 0 for m in busy_row(port).finditer(screen))


def test_watch_flows_live(hosted: Hosted, terminal: list[Tmux]) -> None:
    bed, a, b = hosted.bed, hosted.a, hosted.b
    bed.connect(a, b)
    pa, pb = bed.hosts[a], bed.hosts[b]
    with bed.pinging(a, b):
        term = start(terminal, hosted, "watch", "flows", "--interval", "0.5")
        # A slow start in the guest: a minute to show up.
        screen = term.wait("odpctl watch flows  dp0  every 0.5s", timeout=60)
        screen = term.wait(lambda s: has_busy_row(s, pa) and has_busy_row(s, pb))
        assert re.search(r"lookups  hit \d.*/s", screen), screen
        assert "sort: pps ↓" in screen
        key, mask = parse_key(f"in_port({pb}),eth(),eth_type(0x86dd),ipv6()")
        bed.dpif.add_flow(bed.dp, Flow(key, mask, [Output(pa)]))
        term.wait(
            lambda s: any(line.startswith("+") and "0x86dd" in line for line in s.splitlines())
        )
        bed.dpif.delete_flow(bed.dp, key)
        term.wait(
            lambda s: any(line.startswith("-") and "0x86dd" in line for line in s.splitlines())
        )
        term.type("s")
        term.wait("sort: bps ↓")
        term.type("r")
        term.wait("sort: bps ↑")
        term.type("q")
        screen = term.wait("EXIT=0")
    assert "odpctl watch flows" not in screen  # the screen is given back, as top does


def test_watch_stats_live_stops_on_ctrl_c(hosted: Hosted, terminal: list[Tmux]) -> None:
    bed, a, b = hosted.bed, hosted.a, hosted.b
    bed.connect(a, b)
    with bed.pinging(a, b):
        term = start(terminal, hosted, "watch", "stats", "--interval", "0.3")
        term.wait(lambda s: re.search(r"^hit\s+[1-9]", s, re.MULTILINE) is not None, timeout=60)
        term.send("C-c")
        screen = term.wait("EXIT=")
    assert "EXIT=0" in screen and "Traceback" not in screen


def test_watch_vports_live_shows_events(hosted: Hosted, terminal: list[Tmux]) -> None:
    bed = hosted.bed
    term = start(terminal, hosted, "watch", "vports", "--interval", "0.5")
    term.wait("odpctl watch vports  dp0", timeout=60)
    ip("-n", bed.ns, "link", "add", "wy0", "type", "veth", "peer", "name", "wy1")
    for end in ("wy0", "wy1"):
        ip("-n", bed.ns, "link", "set", end, "up")
    bed.dpif.add_vport(bed.dp, Vport("wy0"))
    term.wait("new port 3: wy0 (netdev)")
    term.type("q")
    term.wait("EXIT=0")

"""The bottom toolbar: what it says, and its sampling thread."""

from __future__ import annotations

import time
from typing import cast

from prompt_toolkit.formatted_text import StyleAndTextTuples

from odpctl.errors import DatapathUnavailableError
from odpctl.odp.datapath import Datapath
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport
from odpctl.shell.toolbar import Toolbar, toolbar_fragments
from odpctl.watch.frames import StatsTracker


def text(fragments: StyleAndTextTuples) -> str:
    return "".join(f[1] for f in fragments)


def test_what_it_says() -> None:
    assert "no datapath: `use DP` picks one" in text(toolbar_fragments(None, None, None))
    assert text(toolbar_fragments("dp0", None, "gone away")) == " dp0  gone away "
    t = StatsTracker()
    first = t.update(Datapath("dp0", 7, hit=10, flows=3), 0.0, 0.0)
    assert text(toolbar_fragments("dp0", first, None)) == " dp0  3 flows  rates in a moment "
    frame = t.update(Datapath("dp0", 7, hit=1210, missed=3, lost=1, flows=3), 1.0, 1.0)
    fragments = toolbar_fragments("dp0", frame, None)
    assert text(fragments) == (
        " dp0  3 flows │ hit 1.2k/s missed 3.0/s lost 1.0/s │ hit-ratio 99.7% "
    )
    styles = {f[1].split()[0]: f[0] for f in fragments if f[1].strip()}
    assert styles["missed"] == "class:toolbar.miss" and styles["lost"] == "class:toolbar.lost"


class CountingDpif:
    """A datapath whose hit counter goes up by 100 at each look."""

    def __init__(self, fail: bool = False) -> None:
        self.hit = 0
        self.fail = fail
        self.closed = False

    def list_datapaths(self) -> list[Datapath]:
        return [Datapath("only", 7)]

    def get_datapath(self, dp: str) -> Datapath:
        if self.fail:
            raise DatapathUnavailableError("the datapath went away")
        self.hit += 100
        return Datapath(dp, 7, hit=self.hit, flows=2)

    def list_vports(self, _dp: str) -> list[Vport]:
        return []

    def close(self) -> None:
        self.closed = True


def wait_for(bar: Toolbar, want: str) -> str:
    deadline = time.monotonic() + 5
    while want not in (now := text(bar())):
        assert time.monotonic() < deadline, f"toolbar still says {now!r}"
        time.sleep(0.02)
    return now


def test_it_samples_in_the_background_and_follows_the_current_datapath() -> None:
    current: list[str | None] = [None]
    dpif = CountingDpif()
    bar = Toolbar(lambda: cast(Dpif, dpif), lambda: current[0], interval=0.05)
    bar.start()
    try:
        # No current datapath: the only one there is.
        assert "only" in wait_for(bar, "hit-ratio 100.0%")
        current[0] = "dp7"
        wait_for(bar, " dp7 ")
        wait_for(bar, "/s")
    finally:
        bar.stop()
    assert dpif.closed


def test_an_unavailable_datapath_is_shown_not_raised() -> None:
    bar = Toolbar(lambda: cast(Dpif, CountingDpif(fail=True)), lambda: "dp0", interval=0.05)
    bar.start()
    try:
        wait_for(bar, "the datapath went away")
    finally:
        bar.stop()

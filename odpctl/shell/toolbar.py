"""The shell's bottom toolbar: current datapath, flows, hit/miss/lost rates, live.

A thread of its own samples the datapath every ``interval`` seconds with a
client of its own (the prompt's thread is never made to wait on the
datapath), computing rates with the same `StatsTracker` as `watch stats`;
the prompt redraws the toolbar from the latest text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prompt_toolkit.formatted_text import StyleAndTextTuples

from odpctl.errors import OdpError
from odpctl.odp.dpif import Dpif
from odpctl.present.tables import plural
from odpctl.present.units import count_rate, percent
from odpctl.watch.frames import StatsFrame
from odpctl.watch.sampler import StatsWatcher


def toolbar_fragments(
    dp: str | None,
    frame: StatsFrame | None,
    error: str | None,
) -> StyleAndTextTuples:
    """What the toolbar shows for datapath ``dp`` and its latest sample."""
    if dp is None:
        return [("class:toolbar.dim", " no datapath: `use DP` picks one ")]
    out: StyleAndTextTuples = [("class:toolbar.dp", f" {dp} ")]
    if error is not None:
        return [*out, ("class:toolbar.error", f" {error} ")]
    if frame is None:
        return [*out, ("class:toolbar.dim", " … ")]
    out.append(("", f" {plural(frame.dp.flows, 'flow')} "))
    rates = frame.rates
    if rates is None:
        out.append(("class:toolbar.dim", " rates in a moment "))
        return out
    out += [
        ("", f"│ hit {count_rate(rates.hit)}/s "),
        ("class:toolbar.miss" if rates.missed else "", f"missed {count_rate(rates.missed)}/s "),
        ("class:toolbar.lost" if rates.lost else "", f"lost {count_rate(rates.lost)}/s "),
        ("", f"│ hit-ratio {percent(rates.hit_ratio)} "),
    ]
    return out


class Toolbar:
    """Samples in the background; calling it gives the toolbar's fragments."""

    def __init__(
        self,
        open_dpif: Callable[[], Dpif],
        current: Callable[[], str | None],
        interval: float = 1.0,
    ) -> None:
        self._open = open_dpif
        self._current = current
        self.interval = interval
        self._fragments: StyleAndTextTuples = toolbar_fragments(None, None, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="odpctl-toolbar", daemon=True)
        self.samples = 0

    def __call__(self) -> StyleAndTextTuples:
        return self._fragments

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        dpif: Dpif | None = None
        watcher: StatsWatcher | None = None
        while True:
            dp = None
            try:
                if dpif is None:
                    dpif = self._open()
                dp = self._current() or _only_datapath(dpif)
                if dp is None:
                    self._fragments = toolbar_fragments(None, None, None)
                else:
                    if watcher is None or watcher.dp != dp:
                        watcher = StatsWatcher(dpif, dp, history=1)
                    self._fragments = toolbar_fragments(dp, watcher.frame(), None)
            except (OdpError, OSError) as exc:
                self._fragments = toolbar_fragments(dp, None, getattr(exc, "message", str(exc)))
                if dpif is not None:
                    dpif.close()
                dpif = watcher = None
            self.samples += 1
            if self._stop.wait(self.interval):
                break
        if dpif is not None:
            dpif.close()


def _only_datapath(dpif: Dpif) -> str | None:
    """With no current datapath, commands act on the only one there is: show it."""
    dps = dpif.list_datapaths()
    return dps[0].name if len(dps) == 1 else None

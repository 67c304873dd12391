"""Reading samples from a datapath, and the clock that paces them.

Each watcher owns the trackers of one view and turns what the datapath says
now into a frame.  The sample's time is taken just before the datapath is
asked, so that the intervals between samples are those between the
datapath's own counter reads, however long a big dump takes.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.upcalls import VportEvents

from .frames import (
    FlowFrame,
    PortFrame,
    StatsFrame,
    StatsTracker,
    TimedEvent,
    flow_tracker,
    port_tracker,
)


def _now() -> tuple[float, float]:
    return time.monotonic(), time.time()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a big sample is read and tracked.

    A dump of 100,000 flows makes millions of small objects, none in a cycle
    (reference counting frees them); the collector would walk them all again
    and again as they are made, which costs more than the dump itself.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class StatsWatcher:
    """Lookup rates of datapath ``dp``, and what its router refused (``refused``)."""

    def __init__(
        self,
        dpif: Dpif,
        dp: str,
        history: int = 120,
        refused: Callable[[], dict[str, int] | None] = lambda: None,
        unhandled: Callable[[], dict[str, int] | None] = lambda: None,
    ) -> None:
        self.dpif = dpif
        self.dp = dp
        self.tracker = StatsTracker(history)
        self.refused = refused
        self.unhandled = unhandled

    def frame(self) -> StatsFrame:
        now, wall = _now()
        frame = self.tracker.update(self.dpif.get_datapath(self.dp), now, wall)
        rx_dropped = sum(
            v.stats.rx_dropped for v in self.dpif.list_vports(self.dp) if v.stats is not None
        )
        return dataclasses.replace(
            frame, refused=self.refused(), rx_dropped=rx_dropped, unhandled=self.unhandled()
        )


class FlowWatcher:
    """The flows of ``dp`` that pass ``keep``, with rates; and the lookup rates."""

    def __init__(
        self,
        dpif: Dpif,
        dp: str,
        keep: Callable[[Flow], bool] | None = None,
        *,
        linger: float = 3.0,
    ) -> None:
        self.dpif = dpif
        self.dp = dp
        self.keep = keep
        self.tracker = flow_tracker(linger)
        self.stats = StatsWatcher(dpif, dp)

    def frame(self) -> FlowFrame:
        stats = self.stats.frame()
        now, wall = _now()
        with _gc_paused():
            flows = list(self.dpif.dump_flows(self.dp))
            total = len(flows)
            if self.keep is not None:
                flows = [f for f in flows if self.keep(f)]
            entries = self.tracker.update(flows, now)
        return FlowFrame(self.dp, now, wall, stats.interval, entries, total, stats)


class PortWatcher:
    """The ports of ``dp`` with rates, and port events as they come."""

    def __init__(
        self,
        dpif: Dpif,
        dp: str,
        *,
        events: bool = True,
        keep_events: int = 200,
        linger: float = 3.0,
    ) -> None:
        self.dpif = dpif
        self.dp = dp
        self.dp_ifindex = dpif.dp_ifindex(dp)
        self.tracker = port_tracker(linger)
        self.stats = StatsWatcher(dpif, dp)
        self.events: deque[TimedEvent] = deque(maxlen=keep_events)
        self._listener: VportEvents | None = dpif.watch_vports() if events else None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def fileno(self) -> int | None:
        """What to wait on for events (None: no events)."""
        return self._listener.fileno() if self._listener is not None else None

    def poll_events(self, timeout: float = 0.0) -> list[TimedEvent]:
        """Events of this datapath that arrived within ``timeout`` seconds."""
        if self._listener is None:
            if timeout > 0:
                time.sleep(timeout)
            return []
        out: list[TimedEvent] = []
        deadline = time.monotonic() + timeout
        wait = timeout
        while True:
            event = self._listener.receive(timeout=wait)
            if event is None:
                break
            if event.vport.dp_ifindex == self.dp_ifindex:
                timed = TimedEvent(time.time(), event)
                out.append(timed)
                self.events.append(timed)
            wait = 0.0 if out else max(deadline - time.monotonic(), 0.0)
        return out

    def frame(self) -> PortFrame:
        stats = self.stats.frame()
        now, wall = _now()
        entries = self.tracker.update(self.dpif.list_vports(self.dp), now)
        return PortFrame(self.dp, now, wall, stats.interval, entries, tuple(self.events), stats)


class Ticker:
    """Refresh times: now, then every ``interval`` seconds, ``count`` times at most.

    Times are fixed on a grid from the start, so a slow sample does not push
    every later one back; a sample later than a whole interval skips the
    missed slots rather than bunching up.
    """

    def __init__(
        self,
        interval: float,
        count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.count = count
        self.clock = clock
        self.done = 0
        self._next = clock()

    def __iter__(self) -> Iterator[int]:
        while not self.finished:
            self.done += 1
            # The next slot is scheduled before this refresh runs, so that
            # `remaining` counts from the grid, not from when work ended.
            self._next += self.interval
            now = self.clock()
            if self._next < now:
                self._next += (int((now - self._next) / self.interval) + 1) * self.interval
            yield self.done - 1

    @property
    def finished(self) -> bool:
        return self.count is not None and self.done >= self.count

    def remaining(self) -> float:
        """Seconds until the next refresh is due (0 if it is)."""
        return max(self._next - self.clock(), 0.0)

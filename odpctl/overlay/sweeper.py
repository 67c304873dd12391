"""Revalidation passes on a thread of their own, paced so misses come first.

The router's event loop only asks for a pass (`request`): with the current
view, the peers within their grace period, and whether the view changed.
Requests that arrive during a pass are merged into the next one.  A pass
runs on its own datapath connection, so the loop's requests never wait for
a dump of 100,000 flows.

The interpreter runs one thread at a time, so a pass that never paused
would make every miss handler wait for it (up to the switch interval, 5 ms,
at each system call it returns from).  Every `SLICE` flows the pass pauses:

- at least ``MIN_PAUSE``, which hands the interpreter to a waiting handler;
- longer if the miss handlers worked since the last pause (a burst of
  misses: they come first), until they stop or ``MAX_YIELD`` passed;
- longer still if the pass would end well before the interval: its slices
  are spread over ``SPREAD`` of the interval rather than run back to back.

A pass longer than the interval (at the slices' pace) is followed by the
next at once, so revalidation runs continuously, at the pace that leaves
room for the miss path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from odpctl.errors import DatapathUnavailableError, OdpError
from odpctl.mesh.names import PeerName
from odpctl.odp.dpif import QUIET_BATCH_WINDOW, Dpif

from .revalidate import SLICE, Revalidator
from .view import MeshView
from .worker import DatapathWorker

log = logging.getLogger("odpctl.router")

MIN_PAUSE = 0.0002
# While misses come in: the dump waits (each of its datagrams costs the userspace
# datapath server milliseconds, during which it forwards nothing).
BUSY_PAUSE = 0.02
MAX_YIELD = 0.25  # the longest a slice waits for the misses to stop
SPREAD = 0.5  # of the interval, over which a pass that fits is spread


class Stopped(Exception):
    """The sweeper is stopping: the pass under way is abandoned."""


class Pacer:
    """Called between slices of a pass: sleeps as the module's docstring says
    (and abandons the pass, raising Stopped, once ``stop`` is set)."""

    def __init__(
        self,
        busy: Callable[[], int],
        per_slice: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.busy = busy
        self.stop = stop
        self.per_slice = per_slice  # the pass's budget for one slice, its work included
        self._seen = busy()
        self._mark = time.perf_counter()

    def __call__(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        now = time.perf_counter()
        pause = max(MIN_PAUSE, self.per_slice - (now - self._mark))
        seen = self.busy()
        if seen != self._seen:
            self._seen = seen
            pause = max(pause, BUSY_PAUSE)
        time.sleep(pause)
        # Misses still coming in: wait for a lull, but not for ever (a pass
        # must still end under a steady stream of misses).
        waited = pause
        while waited < MAX_YIELD and not (self.stop is not None and self.stop.is_set()):
            seen = self.busy()
            if seen == self._seen:
                break
            self._seen = seen
            time.sleep(BUSY_PAUSE)
            waited += BUSY_PAUSE
        self._mark = time.perf_counter()


class Sweeper(DatapathWorker):
    join_timeout = 5.0

    def __init__(
        self,
        revalidator: Revalidator,
        dpif: Dpif,
        dp: str | int,
        busy: Callable[[], int],
        interval: float,
    ) -> None:
        super().__init__("revalidator", dpif)
        self.revalidator = revalidator
        self.dp = dp
        self.busy = busy  # grows whenever the miss handlers handle a round
        self.interval = interval
        self.running = False  # a pass is under way
        self._request: tuple[MeshView, frozenset[PeerName], bool] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def _interrupt(self) -> None:
        self._wake.set()

    def request(self, view: MeshView, vanished: frozenset[PeerName], view_changed: bool) -> None:
        """Ask for a pass with this view (a view change is remembered until a pass ran)."""
        with self._lock:
            if self._request is not None:
                view_changed = view_changed or self._request[2]
            self._request = (view, vanished, view_changed)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                request, self._request = self._request, None
            if request is None or self._stop.is_set():
                continue
            view, vanished, view_changed = request
            last = self.revalidator.last_pass
            slices = (last.flows // SLICE + last.flows // QUIET_BATCH_WINDOW) if last else 0
            pacer = Pacer(self.busy, SPREAD * self.interval / slices if slices else 0.0, self._stop)
            self.running = True
            try:
                report = self.revalidator.revalidate(
                    self.dpif, self.dp, view, vanished, view_changed, pacer
                )
            except Stopped:
                return
            except DatapathUnavailableError as exc:
                self.lost = exc.message
                return
            except OdpError as exc:
                self.revalidator.last_error = str(exc)
                log.warning("revalidation: %s", exc)
                continue
            except Exception as exc:  # a bug: the next pass may do better, say so loudly
                self.revalidator.last_error = f"internal error: {exc!r}"
                log.exception("revalidation")
                continue
            finally:
                self.running = False
            if report.stale or report.idle:
                log.debug(
                    "revalidation: %d of %d flow(s) deleted (%d stale, %d idle) in %.3f s",
                    report.stale + report.idle,
                    report.flows,
                    report.stale,
                    report.idle,
                    report.seconds,
                )

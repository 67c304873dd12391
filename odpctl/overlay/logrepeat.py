"""Identical warnings said once, then counted: a router's log stays readable under a fault.

A fault that fails every miss, tick or event (a datapath gone, a full disk)
would otherwise write the same line thousands of times a second.  The first
of a run of identical records (same logger, level and text) passes; the
others within ``window`` seconds are only counted, and the count comes out as
one line, "... (repeated N more times ...)", with the next such record after
the window or at the first `flush` after it.  Records below WARNING always pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_Key = tuple[str, int, str]


@dataclass
class _Run:
    since: float
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()  # miss handlers log from their own threads
        self._runs: dict[_Key, _Run] = {}
        self.suppressed = 0  # records kept out of the log, in all

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "repeat_summary", False):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            run = self._runs.get(key)
            if run is None or now - run.since >= self.window:
                self._runs[key] = _Run(now)
                if run is not None and run.suppressed:
                    record.msg = (
                        f"{key[2]} (repeated {run.suppressed} more times "
                        f"in the {self.window:g} s before)"
                    )
                    record.args = None
                return True
            run.suppressed += 1
            self.suppressed += 1
            return False

    def flush(self) -> None:
        """Say how often each run that ended (its window over) repeated."""
        now = self._clock()
        with self._lock:
            ended = [
                (key, run) for key, run in self._runs.items() if now - run.since >= self.window
            ]
            for key, _ in ended:
                del self._runs[key]
        for (name, level, text), run in ended:
            if run.suppressed:
                logging.getLogger(name).log(
                    level,
                    "%s (repeated %d more times)",
                    text,
                    run.suppressed,
                    extra={"repeat_summary": True},
                )

    def install(self, *loggers: str) -> None:
        for name in loggers:
            logging.getLogger(name).addFilter(self)

    def uninstall(self, *loggers: str) -> None:
        for name in loggers:
            logging.getLogger(name).removeFilter(self)

"""The router's datapath, supervised: since when it is gone, why, and when to try again.

A datapath can vanish under a running router: the userspace datapath it
started is killed, one someone else runs is stopped, a kernel datapath is
deleted (`ovs-dpctl del-dp`).  The router then has nothing to install flows
in and every socket it holds to the datapath is dead: left alone, its
threads would spin on them.  It notices within a second, says so once,
drops what it held, and tries again, sooner at first and then at most every
``max_delay`` seconds, until the datapath is back; `router status` tells
the outage meanwhile.  This module keeps that account; the router does the
work.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class Outage:
    reason: str
    since: float  # time.time(), for people
    began: float  # time.monotonic(), for durations
    attempts: int = 0
    last_error: str | None = None

    @property
    def since_text(self) -> str:
        return datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class DatapathSupervisor:
    def __init__(self, first_delay: float = 0.25, max_delay: float = 5.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.outage: Outage | None = None
        self.outages = 0
        self.restarts = 0  # of a userspace datapath this router started itself
        self.last: dict[str, Any] | None = None  # the latest outage that ended
        self._next_try = 0.0

    def lost(self, reason: str) -> None:
        """The datapath is gone, for ``reason``: the first try is right away."""
        self.outage = Outage(reason, time.time(), time.monotonic())
        self.outages += 1
        self._next_try = 0.0

    def due(self) -> bool:
        return self.outage is not None and time.monotonic() >= self._next_try

    def failed(self, error: str) -> float:
        """A try failed; the seconds until the next one (doubling, up to ``max_delay``)."""
        assert self.outage is not None
        outage = self.outage
        outage.attempts += 1
        outage.last_error = error
        delay = min(self.max_delay, self.first_delay * 2.0 ** min(outage.attempts - 1, 16))
        self._next_try = time.monotonic() + delay
        return delay

    def recovered(self, *, restarted: bool) -> float:
        """The datapath is back; how many seconds it was gone."""
        assert self.outage is not None
        outage, self.outage = self.outage, None
        down = time.monotonic() - outage.began
        self.restarts += restarted
        self.last = {
            "reason": outage.reason,
            "since": outage.since_text,
            "seconds": round(down, 3),
            "attempts": outage.attempts + 1,
            "restarted": restarted,
        }
        return down

    def problem(self) -> str | None:
        """The outage in a few words, for the status line; None while the datapath is there."""
        if self.outage is None:
            return None
        return f"datapath unreachable since {self.outage.since_text} ({self.outage.reason})"

    def status(self) -> dict[str, Any]:
        outage = self.outage
        return {
            "unreachable_since": outage.since_text if outage else None,
            "unreachable_reason": outage.reason if outage else None,
            "attempts": outage.attempts if outage else 0,
            "last_error": outage.last_error if outage else None,
            "outages": self.outages,
            "restarts": self.restarts,
            "last_outage": self.last,
        }


def exit_reason(proc: subprocess.Popen[bytes]) -> str | None:
    """Why the userspace datapath ``proc`` ended (reaping it), None while it runs."""
    code = proc.poll()
    if code is None:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"the userspace datapath (pid {proc.pid}) was killed by signal {-code} ({name})"
    return f"the userspace datapath (pid {proc.pid}) exited with status {code}"

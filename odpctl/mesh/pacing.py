"""How a node paces itself: the event loop's lag (its overload) and a token bucket."""

from __future__ import annotations

import asyncio
import time
import weakref


class LoopLag:
    """How late the event loop runs timers: the measure of a router's overload.

    One per event loop, shared by the nodes on it (a benchmark runs a hundred).
    """

    INTERVAL = 0.2
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the registry's value must not keep its own key (the loop) alive.
        self._loop = weakref.ref(loop)
        self.lag = 0.0
        self._due = loop.time() + self.INTERVAL
        loop.call_at(self._due, self._tick)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopLag:
        monitor = cls._by_loop.get(loop)
        if monitor is None:
            monitor = cls._by_loop[loop] = cls(loop)
        return monitor

    def _tick(self) -> None:
        loop = self._loop()
        if loop is None:
            return
        now = loop.time()
        late = now - self._due
        # Rise at once, fall gently: one quick tick does not end an overload.
        self.lag = late if late > self.lag else 0.7 * self.lag + 0.3 * late
        if loop.is_closed():
            return
        self._due = now + self.INTERVAL
        loop.call_at(self._due, self._tick)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

"""The node's pacing helpers: the event loop's lag and the accept token bucket."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

from odpctl.mesh.pacing import LoopLag, TokenBucket


def test_loop_lag_releases_a_closed_loop() -> None:
    loop = asyncio.new_event_loop()

    async def measure() -> float:
        return LoopLag.of(asyncio.get_running_loop()).lag

    assert loop.run_until_complete(measure()) == 0.0
    assert loop in LoopLag._by_loop
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None, "the registry keeps a closed loop (and its monitor) alive"
    assert all(not key.is_closed() for key in LoopLag._by_loop)


def test_loop_lag_measures_a_late_timer() -> None:
    async def blocked() -> float:
        lag = LoopLag.of(asyncio.get_running_loop())
        await asyncio.sleep(0)
        time.sleep(LoopLag.INTERVAL + 0.3)  # hold the loop past the next tick
        await asyncio.sleep(0.05)
        return lag.lag

    assert asyncio.run(blocked()) >= 0.2


def test_token_bucket_spends_its_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]

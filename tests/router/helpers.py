"""Small helpers of the router tests, on the host and in the guest."""

from __future__ import annotations

import time
from collections.abc import Callable

from odpctl.demo.overlaylab import OverlayLab
from odpctl.odp.actions import Output


def wait_until(predicate: Callable[[], object], timeout: float = 15.0) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def flows_naming(overlay: OverlayLab, i: int, port: int) -> int:
    """How many flows of router ``i``'s datapath come in on ``port`` or output to it."""
    with overlay.dpif(i) as dpif:
        return sum(
            1
            for f in dpif.dump_flows("odp-router")
            if f.key.in_port == port
            or any(isinstance(a, Output) and a.port == port for a in f.actions)
        )

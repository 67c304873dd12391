"""Fixtures for the overlay router's tests: a 3-host overlay on the kernel datapath."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    """3 hosts x 2 containers on a bridge, routers not started; all removed afterwards."""
    lab = Lab("odpr")
    try:
        built = OverlayLab(lab, datapath="kernel")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def router_logs(overlay: OverlayLab) -> str:
    return "\n".join(
        f"--- router {h.index}\n{overlay.log_tail(h.index, 40)}" for h in overlay.hosts
    )

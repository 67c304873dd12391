"""With a mesh password, what crosses the underlay is sealed: userspace datapath, on this host.

The scenarios are in `wire_check`, shared with the kernel datapath's test in the guest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab

from .wire import Capture
from .wire_check import (  # noqa: F401  (capture_fixture: a fixture, by name)
    capture_fixture,
    check_relay,
    check_sealed_wire,
    check_trusted_subnets,
)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odps")
    try:
        built = OverlayLab(lab, datapath="userspace", containers=1)
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_sealed_wire_refuses_replays_forgeries_and_wrong_passwords(
    overlay: OverlayLab, capture: Capture, tmp_path: Path
) -> None:
    check_sealed_wire(overlay, capture, tmp_path)


def test_trusted_subnets_keep_plaintext_vxlan(
    overlay: OverlayLab, capture: Capture, tmp_path: Path
) -> None:
    check_trusted_subnets(overlay, capture, tmp_path)


def test_a_relay_opens_and_seals_again(
    overlay: OverlayLab, capture: Capture, tmp_path: Path
) -> None:
    check_relay(overlay, capture, tmp_path)

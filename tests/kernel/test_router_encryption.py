"""With a mesh password, what crosses the underlay is sealed: kernel datapath, in the guest.

This router sets up no ESP, so the connections take the sealed fallback here too;
the scenario is the userspace datapath's (`tests/router/wire_check`), whose test
also covers --trusted-subnets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from router.wire import Capture
from router.wire_check import capture_fixture, check_sealed_wire  # noqa: F401

from odpctl.demo.overlaylab import OverlayLab

from .router_fixtures import overlay_fixture  # noqa: F401  (fixture by name)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]


def test_sealed_wire_refuses_replays_forgeries_and_wrong_passwords(
    overlay: OverlayLab, capture: Capture, tmp_path: Path
) -> None:
    check_sealed_wire(overlay, capture, tmp_path)


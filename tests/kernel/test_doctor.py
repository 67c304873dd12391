"""``odpctl doctor`` on the kernel datapath, in the guest: healthy, then ovs-dpctl's trap."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from router.helpers import wait_until

from odpctl.cli import run
from odpctl.demo.overlaylab import OverlayLab

from .router_fixtures import overlay_fixture, router_logs  # noqa: F401  (fixture by name)

pytestmark = pytest.mark.timeout(300)


def test_doctor_on_the_kernel_datapath(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str], ovs_dpctl: Callable[..., str]
) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    host = overlay.hosts[0]

    def doctor() -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = run(
            [
                "--netns",
                host.ns,
                "doctor",
                "--control",
                str(host.control),
                "--interval",
                "0.3",
                "--json",
            ]
        )
        return code, json.loads(capsys.readouterr().out)

    assert wait_until(lambda: doctor()[0] == 0, timeout=30), (doctor()[1], router_logs(overlay))
    checks = {(c["area"], c["name"]): c for c in doctor()[1]["checks"]}
    assert checks[("datapath", "kind")]["evidence"].startswith("kernel datapath")
    assert "openvswitch module is loaded" in checks[("datapath", "kind")]["evidence"]

    # Open vSwitch's own tool switches the datapath to per-CPU upcall dispatch when
    # it merely opens it; the router switches it back, and the doctor tells.
    ovs_dpctl("show", "system@odp-router", netns=host.ns)
    assert wait_until(lambda: overlay.status(0)["router"]["dispatch_resets"] > 0)
    _, report = doctor()
    (dispatch,) = [c for c in report["checks"] if c["name"] == "dispatch"]
    assert dispatch["level"] in ("warn", "problem"), dispatch
    assert "ovs-dpctl" in dispatch["evidence"] + dispatch["fix"]

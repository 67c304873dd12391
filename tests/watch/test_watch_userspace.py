"""`odpctl watch` against the userspace datapath with real traffic (this machine)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from odpctl.errors import EXIT_REFUSED

from . import scenarios
from .fixtures import Hosted, Result

ODPCTL = str(Path(sys.executable).with_name("odpctl"))


def test_flows(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.flows_show_rates_new_and_removed_flows(hosted.bed, hosted.a, hosted.b, odpctl)


def test_stats(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.stats_show_hit_rates(hosted.bed, hosted.a, hosted.b, odpctl)


def test_vports(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.vports_show_events_and_rates(hosted.bed, hosted.a, hosted.b, odpctl)


def test_upcalls(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.upcalls_tap_shows_misses_and_gives_back(
        hosted.bed, hosted.a, hosted.b, odpctl, "--force"
    )


def test_upcalls_refuses_pids_it_cannot_check(
    hosted: Hosted, odpctl: Callable[..., Result]
) -> None:
    bed = hosted.bed
    port = bed.hosts[hosted.a]
    bed.dpif.set_vport(bed.dp, port, upcall_pids=[4242])
    result = odpctl("watch", "upcalls", "--count", "1")
    assert result.code == EXIT_REFUSED
    assert "port ids 4242 of a client of the userspace datapath" in result.err
    assert "--force takes them anyway" in result.err
    assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (4242,)
    # --force takes them, and gives them back.
    result = odpctl("watch", "upcalls", "--force", "--duration", "300ms")
    assert result.code == 0, result.err
    assert bed.dpif.get_vport(bed.dp, port).upcall_pids == (4242,)


@pytest.mark.usefixtures("hosted")
def test_no_router_means_tap_and_router_only_fails(
    odpctl: Callable[..., Result], tmp_path: object
) -> None:
    result = odpctl(
        "watch",
        "upcalls",
        "--source",
        "router",
        "--control",
        f"{tmp_path}/none.sock",
        "--count",
        "1",
    )
    assert result.code != 0 and "no router is running here" in result.err
    result = odpctl("watch", "upcalls", "--control", f"{tmp_path}/none.sock", "--duration", "200ms")
    assert result.code == 0 and "borrowing the upcall PIDs" in result.err


def _watch_process(hosted: Hosted, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ODPCTL, *hosted.bed.options, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _borrowed(hosted: Hosted) -> bool:
    return any(v.upcall_pids != (0,) for v in hosted.bed.dpif.list_vports(hosted.bed.dp))


def test_ctrl_c_and_sigterm_stop_cleanly_and_give_pids_back(hosted: Hosted) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = _watch_process(hosted, "watch", "upcalls", "--lines")
        deadline = time.monotonic() + 20
        while not _borrowed(hosted):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the watch never borrowed the PIDs"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, (sig, err)
        assert "Traceback" not in err
        assert not _borrowed(hosted), f"PIDs not given back after {sig.name}"


def test_ctrl_c_ends_a_lines_watch_with_status_0(hosted: Hosted) -> None:
    proc = _watch_process(hosted, "watch", "flows", "--interval", "0.2")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert " dp0 flows 0 " in first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == ""

"""The router's datapath dying under it, on the userspace datapath, on this machine.

Two hosts with one container each.  The datapath the router started itself is
restarted when it dies; one someone else started is waited for, and the
router says so meanwhile.  Either way: no spinning, a bounded log, no zombie.
Needs root (network namespaces).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.cli import run
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError
from odpctl.odp.dpif import Dpif
from odpctl.odp.endpoint import default_datapath_socket

from .helpers import wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odps")
    try:
        built = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _state(pid: int) -> str | None:
    """The process's state letter (Z: a zombie), None once it is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_lines(overlay: OverlayLab, i: int) -> int:
    return len(overlay.hosts[i].log.read_bytes().splitlines())


def _ready(overlay: OverlayLab) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    a, b = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(a, b), overlay.log_tail(0, 40)


def _pings(overlay: OverlayLab) -> bool:
    a, b = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
    return overlay.ping(a, b, count=1, wait=1)


def test_killed_datapath_is_restarted_and_traffic_recovers(overlay: OverlayLab) -> None:
    _ready(overlay)
    router = overlay.hosts[0].router
    assert router is not None
    (child,) = _children(router.pid)
    lines = _log_lines(overlay, 0)
    killed = time.monotonic()
    os.kill(child, signal.SIGKILL)
    assert wait_until(lambda: _pings(overlay), 30), overlay.log_tail(0, 40)
    recovered = time.monotonic() - killed
    logged = _log_lines(overlay, 0) - lines
    print(f"traffic back {recovered:.1f} s after kill -9, {logged} log lines meanwhile")
    assert logged <= 10, overlay.log_tail(0, 40)
    assert _state(child) is None, "the dead datapath was not reaped"
    status = overlay.status(0)["router"]
    assert status["summary"].startswith("ok"), status["summary"]
    assert status["datapath"]["restarts"] == 1
    assert "signal 9" in status["datapath"]["last_outage"]["reason"]
    assert sorted(status["datapath"]["ifaces"]) == ["c0"]
    assert status["datapath"]["vxlan_port"] is not None


def test_datapath_started_by_others_is_waited_for_and_reported(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str]
) -> None:
    host = overlay.hosts[0]
    log = (overlay.tmp / "dp0.log").open("ab")
    argv = ["ip", "netns", "exec", host.ns, sys.executable, "-m", "odpctl.datapath"]
    served = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: served.poll() is None and _answers(overlay), 15)
        _ready(overlay)
        router = host.router
        assert router is not None and _children(router.pid) == []
        lines = _log_lines(overlay, 0)
        served.kill()
        served.wait(5)
        cpu = _cpu_seconds(router.pid)
        time.sleep(3)
        spent = _cpu_seconds(router.pid) - cpu
        capsys.readouterr()
        assert run(["router", "status", "--control", str(host.control)]) == 1
        out = capsys.readouterr().out
        assert "datapath unreachable since" in out, out
        assert spent < 0.6, f"the router spent {spent:.2f} s of CPU in 3 s without a datapath"
        logged = _log_lines(overlay, 0) - lines
        assert logged <= 10, overlay.log_tail(0, 40)

        served = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: _pings(overlay), 30), overlay.log_tail(0, 40)
        # Pings may cross on the fallback until heartbeats pass VXLAN again.
        assert wait_until(
            lambda: str(overlay.status(0)["router"]["summary"]).startswith("ok"), 30
        ), overlay.log_tail(0, 40)
        capsys.readouterr()
        assert run(["router", "status", "--control", str(host.control)]) == 0
        assert capsys.readouterr().out.startswith("ok")
        assert overlay.status(0)["router"]["datapath"]["restarts"] == 0
    finally:
        served.kill()
        served.wait(5)
        log.close()


def _answers(overlay: OverlayLab) -> bool:
    try:
        with Dpif.open("userspace", netns=overlay.hosts[0].ns) as dpif:
            dpif.list_datapaths()
    except OdpError:
        return False
    return True


@pytest.mark.usefixtures("capsys")
def test_control_socket_removed_is_bound_again_and_a_shared_directory_kept(
    overlay: OverlayLab,
) -> None:
    host = overlay.hosts[0]
    shared = overlay.tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    host.control = shared / "router.sock"
    overlay.start_router(0)
    overlay.wait_ready(timeout=60, hosts=[0])
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    runtime = default_datapath_socket(host.ns).parent
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o755  # others reach the datapath there

    host.control.unlink()
    assert wait_until(lambda: run(["router", "status", "--control", str(host.control)]) == 0, 10)
    assert stat.S_IMODE(host.control.stat().st_mode) == 0o600
    assert overlay.stop_router(0) == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert not host.control.exists()


@pytest.mark.usefixtures("capsys")
def test_datapath_deleted_in_a_running_server_is_recreated(overlay: OverlayLab) -> None:
    _ready(overlay)
    host = overlay.hosts[0]
    router = host.router
    assert router is not None
    (child,) = _children(router.pid)
    endpoint = overlay.status(0)["router"]["datapath"]["endpoint"]
    assert run(["--netns", host.ns, "--datapath", endpoint, "dp", "del", "odp-router"]) == 0
    assert wait_until(lambda: _pings(overlay), 30), overlay.log_tail(0, 40)
    assert _children(router.pid) == [child], "the datapath's server was restarted for nothing"
    dp = overlay.status(0)["router"]["datapath"]
    assert (dp["outages"], dp["restarts"]) == (1, 0)
    assert "deleted" in dp["last_outage"]["reason"]
    assert sorted(dp["ifaces"]) == ["c0"] and dp["vxlan_port"] is not None

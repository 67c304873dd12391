#!/usr/bin/env python3
"""Faults and abuse: a killed datapath under a router, and a user who never reads.

Run as root: ``.venv/bin/python bench/faults.py`` (``--help`` for options).
The odpctl under test is whichever one Python imports: put an older tree
first on PYTHONPATH to measure it side by side, e.g.
``PYTHONPATH=/tmp/old .venv/bin/python bench/faults.py``.

- **killed**: two hosts (network namespaces) with a container each, their
  routers on the userspace datapath they start; the datapath of router 0 is
  killed with SIGKILL; then: seconds until a ping between the containers
  gets through again (within ``--window``), lines router 0 logged and CPU
  seconds it spent in that time, and whether the dead child was reaped.
- **abuse**: a `python -m odpctl.datapath` at a 1,024-file limit; ``nobody``
  opens ``--connections`` connections (stopping after 20 failures in a
  row), ``--flooders`` of which ask for the list of families for three seconds and
  never read a reply; then: how many connections were accepted, the
  server's CPU in the next second, the bytes queued on its sockets once it
  is idle (memory pinned, from ``ss -x -m``), and root's latency to list
  the datapaths (connect + request), median of 5.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import odpctl
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError
from odpctl.netlink.genl import (
    CTRL_CMD_GETFAMILY,
    CTRL_VERSION,
    GENL_ID_CTRL,
    genl_payload,
)
from odpctl.netlink.message import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_HDR, NLMSG_NOOP, encode_message
from odpctl.odp.dpif import Dpif

NOBODY = 65534


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (f := _stat(int(p.name))) is not None and int(f[1]) == pid
    ]


def killed(window: float) -> None:
    with Lab("odpbf") as lab:
        overlay = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
        try:
            overlay.start_routers()
            overlay.wait_ready(timeout=60, overlay="fastdp")
            a, b = overlay.hosts[0].containers[0], overlay.hosts[1].containers[0]
            assert overlay.ping(a, b), "no traffic to begin with"
            router = overlay.hosts[0].router
            assert router is not None
            (child,) = _children(router.pid)
            log = overlay.hosts[0].log
            lines, cpu = len(log.read_bytes().splitlines()), _cpu(router.pid)
            start = time.monotonic()
            os.kill(child, signal.SIGKILL)
            back = None
            while time.monotonic() - start < window:
                if overlay.ping(a, b, count=1, wait=1):
                    back = time.monotonic() - start
                    break
            spent = time.monotonic() - start
            logged = len(log.read_bytes().splitlines()) - lines
            state = _stat(child)
            reaped = (
                "reaped"
                if state is None
                else f"state {state[0]} (zombie)"
                if state[0] == "Z"
                else f"state {state[0]}"
            )
            print(
                f"killed: traffic back {'never' if back is None else f'{back:.1f} s'} "
                f"(window {window:g} s); router logged {logged} lines and spent "
                f"{_cpu(router.pid) - cpu:.1f} s CPU in {spent:.1f} s; child {reaped}"
            )
        finally:
            overlay.close()


def _family_dump() -> bytes:
    """Every family's description: a few KB of replies for a 20-byte request."""
    payload = genl_payload(CTRL_CMD_GETFAMILY, CTRL_VERSION, b"")
    return encode_message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, 1, 0, payload)


def _nobody(path: str, count: int, flooders: int) -> tuple[int, int, int]:
    """Fork a child that, as nobody, holds ``count`` connections; (pid, greeted, hold fd)."""
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(report_r)
            os.close(hold_w)
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            socks = []
            failed = 0
            for _ in range(count):
                if failed >= 20:  # in a row: the server takes no more
                    break
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                sock.settimeout(0.3)
                try:
                    sock.connect(path)
                    data = sock.recv(64)
                    failed = 0
                except OSError:
                    sock.close()
                    failed += 1
                    continue
                if len(data) >= 16 and NLMSG_HDR.unpack_from(data)[1] == NLMSG_NOOP:
                    sock.setblocking(False)
                    socks.append(sock)
                else:
                    sock.close()
            request = _family_dump()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                for sock in socks[:flooders]:
                    with contextlib.suppress(OSError):
                        for _ in range(50):
                            sock.send(request)
            os.write(report_w, struct.pack("=I", len(socks)))
            os.read(hold_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(hold_r)
    data = os.read(report_r, 4)
    os.close(report_r)
    return pid, struct.unpack("=I", data)[0] if len(data) == 4 else -1, hold_w


def _pinned(pid: int) -> tuple[int, int]:
    """Bytes queued to send on the sockets of process ``pid``, and the biggest send buffer."""
    out = subprocess.run(
        ["ss", "-x", "-m", "-p", "-H"], capture_output=True, text=True, timeout=60
    ).stdout
    found = [
        (int(m[1]), int(m[2]))
        for line in out.splitlines()
        if f"pid={pid}," in line and (m := re.search(r"skmem:\(r\d+,rb\d+,t(\d+),tb(\d+)", line))
    ]
    return sum(t for t, _ in found), max((tb for _, tb in found), default=0)


def _root_latency(path: str) -> float:
    start = time.monotonic()
    try:
        with Dpif.open(f"unix:{path}") as dpif:
            dpif.list_datapaths()
    except OdpError:
        return float("inf")
    return time.monotonic() - start


def _ms(seconds: float) -> str:
    return "failed (no answer)" if seconds == float("inf") else f"{seconds * 1000:.0f} ms"


def abuse(connections: int, flooders: int) -> None:
    top = tempfile.mkdtemp(prefix="odpbf-", dir="/run")
    os.chmod(top, 0o755)  # noqa: S103 - a directory others' clients connect into
    path = os.path.join(top, "dp.sock")
    server = subprocess.Popen(
        [sys.executable, "-m", "odpctl.datapath", "--socket", path],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
        stderr=subprocess.DEVNULL,
    )
    child = hold = -1
    try:
        deadline = time.monotonic() + 15
        while _root_latency(path) == float("inf") and time.monotonic() < deadline:
            time.sleep(0.1)
        quiet = statistics.median(_root_latency(path) for _ in range(5))
        child, accepted, hold = _nobody(path, connections, flooders)
        # The server's CPU over a second once the flood is over: any spinning shows here.
        cpu = _cpu(server.pid)
        time.sleep(1.0)
        busy = _cpu(server.pid) - cpu
        # Memory once the server has answered all it could (idle for half a second).
        for _ in range(60):
            cpu = _cpu(server.pid)
            time.sleep(0.5)
            if _cpu(server.pid) - cpu < 0.05:
                break
        pinned, sndbuf = _pinned(server.pid)
        latency = statistics.median(_root_latency(path) for _ in range(5))
        print(
            f"abuse: nobody got {accepted} of {connections} connections ({flooders} never "
            f"reading); server sockets pin {pinned / 1e6:.1f} MB (send buffers up to "
            f"{sndbuf / 1e6:.1f} MB); server CPU {busy:.2f} s/s; "
            f"root's list {_ms(latency)} (quiet: {_ms(quiet)})"
        )
    finally:
        if hold >= 0:
            os.close(hold)
        if child > 0:
            os.waitpid(child, 0)
        server.kill()
        server.wait()
        shutil.rmtree(top, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--flooders", type=int, default=100)
    parser.add_argument("--only", choices=["killed", "abuse"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/faults.py: needs root (namespaces, another user)", file=sys.stderr)
        return 2
    print(f"odpctl from {Path(odpctl.__file__).parent}")
    if args.only in (None, "abuse"):
        abuse(args.connections, args.flooders)
    if args.only in (None, "killed"):
        killed(args.window)
    return 0


if __name__ == "__main__":
    sys.exit(main())

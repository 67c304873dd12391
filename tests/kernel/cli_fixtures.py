"""Fixtures of the command suite's guest tests.

A test module imports the ``*_fixture`` functions it needs; pytest knows them by
the names below (``backend``, ``odpctl``, ...).

``backend``  a fresh network namespace and the datapath odpctl talks to in it:
             the kernel's, or (once odpctl.datapath.serve exists) a userspace
             datapath serving there. Everything a test makes lives in the
             namespace and goes with it.
``odpctl``   ``odpctl("flow", "dump", "--json")`` runs one command line in this
             process, inside the backend's namespace, as the installed command
             would (same errors, same exit codes), and returns (code, out, err).
``ovs``      Open vSwitch's own ovs-dpctl in the backend's namespace (kernel only).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from odpctl.cli import run

ODPCTL = str(Path(sys.executable).with_name("odpctl"))


@dataclass
class Backend:
    kind: str  # "kernel" or "userspace"
    ns: str
    options: list[str] = field(default_factory=list)  # the global options that reach it

    @property
    def kernel(self) -> bool:
        return self.kind == "kernel"

    @property
    def prefix(self) -> str:
        return "system" if self.kernel else "userspace"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    def lines(self) -> list[str]:
        return self.out.splitlines()


def _userspace_serve_exists() -> bool:
    try:
        return hasattr(importlib.import_module("odpctl.datapath"), "serve")
    except ImportError:
        return False


@pytest.fixture(name="backend", params=["kernel", "userspace"])
def backend_fixture(request: pytest.FixtureRequest, netns: Callable[[], str]) -> Iterator[Backend]:
    ns = netns()
    if request.param == "kernel":
        yield Backend("kernel", ns, ["--netns", ns, "--datapath", "kernel"])
        return
    if not _userspace_serve_exists():
        pytest.skip("the userspace datapath (odpctl.datapath.serve) is not there yet")
    if not Path("/dev/net/tun").exists():
        # Its internal ports are TAP devices.  (tests/cli/test_userspace.py runs
        # the commands against it on the host meanwhile.)
        pytest.skip(
            "no /dev/net/tun in this guest: the userspace datapath cannot make internal ports here"
        )
    sock = Path(f"/run/odpctl-test-{ns}.sock")
    server = subprocess.Popen(
        [ODPCTL, "--netns", ns, "dp", "serve", "--socket", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                err = server.stderr.read().decode() if server.stderr else ""
                pytest.fail(f"odpctl dp serve did not start: {err}")
            time.sleep(0.1)
        yield Backend("userspace", ns, ["--netns", ns, "--datapath", f"unix:{sock}"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        sock.unlink(missing_ok=True)


@pytest.fixture(name="kernel")
def kernel_fixture(netns: Callable[[], str]) -> Backend:
    """The kernel datapath only: for what is checked against ovs-dpctl."""
    ns = netns()
    return Backend("kernel", ns, ["--netns", ns, "--datapath", "kernel"])


def _runner(capsys: pytest.CaptureFixture[str], options: list[str]) -> Callable[..., Result]:
    def odpctl(*argv: str) -> Result:
        capsys.readouterr()
        code = run([*options, *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return odpctl


@pytest.fixture(name="odpctl")
def odpctl_fixture(backend: Backend, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    return _runner(capsys, backend.options)


@pytest.fixture(name="kodpctl")
def kodpctl_fixture(kernel: Backend, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """odpctl against the `kernel` fixture's namespace."""
    return _runner(capsys, kernel.options)


@pytest.fixture(name="ovs")
def ovs_fixture(kernel: Backend, ovs_dpctl: Callable[..., str]) -> Callable[..., str]:
    def call(*args: str) -> str:
        return ovs_dpctl(*args, netns=kernel.ns)

    return call


def veth(run_: Callable[..., str], ns: str, outer: str, peer_ns: str | None = None) -> str:
    """A veth pair whose ``outer`` end is in ``ns`` (to be a port) and whose other
    end, named ``outer`` + "p", is in ``peer_ns`` (or ``ns``); both ends up."""
    inner = outer + "p"
    where = ["netns", peer_ns] if peer_ns else []
    run_("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, *where, netns=ns)
    run_("ip", "link", "set", outer, "up", netns=ns)
    run_("ip", "link", "set", inner, "up", netns=peer_ns or ns)
    return inner

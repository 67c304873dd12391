"""Fixtures for the userspace datapath (``odpctl dp serve``), run on this machine.

The contract the datapath, port and flow tests rely on is small, so that the
same tests can run against the kernel datapath in the test-bed guest:

``dp_ns``  the network namespace the datapath lives in (its netdev ports are
           interfaces there); a fresh one per test.
``dpif``   a `Dpif` talking to a datapath in ``dp_ns``.  Here: a userspace
           server (a thread of this process, in ``dp_ns``) over its unix
           socket.  For the kernel: ``Dpif.open("kernel", netns=dp_ns)``.
``veth``   factory: ``outer, inner = veth(host_ns)`` makes a veth pair with
           ``outer`` in ``dp_ns`` (to become a port) and ``inner`` in
           ``host_ns``, both up.

Userspace-only tests (the server's process, socket and protocol) use
``dp_server`` (the running server) or ``spawn_server`` (a ``python -m
odpctl.datapath`` subprocess).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from odpctl.datapath.server import Server
from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.dpif import Dpif

REPO = Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class RunningServer:
    """A userspace datapath server running in a thread of the test process."""

    server: Server
    thread: threading.Thread
    path: str
    netns: str

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the datapath server did not stop"


def start_server_thread(path: str, ns: str) -> RunningServer:
    """Start a server in a new thread inside ``ns``; returns once it listens."""
    ready = threading.Event()
    failure: list[BaseException] = []
    holder: list[Server] = []

    def main() -> None:
        try:
            with in_netns(ns):
                server = Server(path)
                server.start()
                holder.append(server)
                ready.set()
                server.run()
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, name=f"dp-serve-{ns}", daemon=True)
    thread.start()
    ready.wait(20)
    if failure:
        raise failure[0]
    assert holder, "the datapath server did not start"
    return RunningServer(holder[0], thread, path, ns)


@pytest.fixture
def socket_dir() -> Iterator[str]:
    # Short paths: a unix socket path must fit in 108 bytes. Under /run, not /tmp:
    # /tmp may be 0700, and one test connects as an unprivileged user.
    path = tempfile.mkdtemp(prefix="odpt-", dir="/run")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dp_ns(netns: Callable[[], str]) -> str:
    return netns()


@pytest.fixture
def dp_server(dp_ns: str, socket_dir: str) -> Iterator[RunningServer]:
    running = start_server_thread(os.path.join(socket_dir, "dp.sock"), dp_ns)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["userspace", pytest.param("kernel", marks=pytest.mark.kernel)])
def datapath_kind(request: pytest.FixtureRequest) -> str:
    """Which datapath ``dpif`` talks to: every such test runs against both.

    The kernel variants carry the ``kernel`` mark, so tests/run runs them in
    the user-mode-linux guest and the userspace ones on this machine.
    """
    kind: str = request.param
    # Fail, not skip, as tests/kernel does: a guest without the module must not
    # pass its kernel suite by running none of it.
    if kind == "kernel" and not Path("/sys/module/openvswitch").is_dir():
        pytest.fail(
            "the kernel datapath needs the openvswitch module: run it in the "
            "test-bed guest (tests/run)"
        )
    return kind


@pytest.fixture
def dpif(datapath_kind: str, dp_ns: str, request: pytest.FixtureRequest) -> Iterator[Dpif]:
    """A client of a datapath living in ``dp_ns``: the kernel's, or a userspace server."""
    if datapath_kind == "kernel":
        with Dpif.open("kernel", netns=dp_ns) as d:
            yield d
        return
    server: RunningServer = request.getfixturevalue("dp_server")
    with Dpif.open(f"unix:{server.path}") as d:
        yield d


@pytest.fixture
def udpif(dp_server: RunningServer) -> Iterator[Dpif]:
    """A client of the userspace datapath only, for what the kernel does differently."""
    with Dpif.open(f"unix:{dp_server.path}") as d:
        yield d


@pytest.fixture
def veth(dp_ns: str) -> Callable[[str], tuple[str, str]]:
    """Factory: a veth pair from ``dp_ns`` to a host namespace, both ends up.

    Deleting the namespaces at the end of the test deletes the pair.
    """

    def make(host_ns: str) -> tuple[str, str]:
        tag = secrets.token_hex(3)
        outer, inner = f"vo{tag}", f"vi{tag}"
        _ip(
            "-n",
            dp_ns,
            "link",
            "add",
            outer,
            "type",
            "veth",
            "peer",
            "name",
            inner,
            "netns",
            host_ns,
        )
        _ip("-n", dp_ns, "link", "set", outer, "up")
        _ip("-n", host_ns, "link", "set", inner, "up")
        return outer, inner

    return make


@dataclass
class Host:
    """A namespace standing for a host or container, with one interface."""

    ns: str
    ifname: str
    ip: str
    mac: str


@pytest.fixture
def host(
    netns: Callable[[], str], veth: Callable[[str], tuple[str, str]]
) -> Callable[[str], tuple[Host, str]]:
    """Factory: ``h, port_if = host("10.0.0.1/24")``: a namespace wired to ``dp_ns``.

    ``port_if`` is the interface in ``dp_ns`` to add as a netdev port.  IPv6
    stays off inside, so that the only traffic is the test's own.
    """

    def make(cidr: str) -> tuple[Host, str]:
        ns = netns()
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            check=True,
            capture_output=True,
        )
        outer, inner = veth(ns)
        _ip("-n", ns, "addr", "add", cidr, "dev", inner)
        brief = subprocess.run(
            ["ip", "-n", ns, "-br", "link", "show", inner],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return Host(ns, inner, cidr.split("/")[0], brief[2]), outer

    return make


@pytest.fixture
def spawn_server(socket_dir: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Factory: ``proc = spawn_server(ns)``: ``python -m odpctl.datapath`` in ``ns``.

    Waits until the socket answers.  Every server started is terminated at
    the end of the test (and killed if it will not stop).
    """
    procs: list[subprocess.Popen[str]] = []

    def spawn(ns: str, path: str | None = None, wait: bool = True) -> subprocess.Popen[str]:
        path = path or os.path.join(socket_dir, "dp.sock")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-m", "odpctl.datapath", "--socket", path, "--netns", ns],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
        if wait:
            wait_for_socket(path, proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait_for_socket(
    path: str, proc: subprocess.Popen[str] | None = None, timeout: float = 20
) -> None:
    """Until a datapath server answers on ``path`` (fails the test if it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"the datapath server exited ({proc.returncode}): "
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        if os.path.exists(path):
            with contextlib.suppress(Exception), Dpif.open(f"unix:{path}"):
                return
        time.sleep(0.05)
    pytest.fail(f"no datapath server answered on {path} within {timeout} s")

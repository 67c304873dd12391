"""The control socket's file: kept while the server runs, removed only if ours, modes left alone."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from odpctl.control.client import ControlClient
from odpctl.control.server import ControlServer
from odpctl.errors import OdpError


class Servers:
    """Control servers answering "ping" on a loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: list[ControlServer] = []

    def start(self, path: Path, **kw: Any) -> ControlServer:
        server = ControlServer(path, {"ping": lambda _: "pong"}, **kw)
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)
        self.running.append(server)
        return server

    def stop(self, server: ControlServer) -> None:
        asyncio.run_coroutine_threadsafe(server.stop(), self.loop).result(10)
        self.running.remove(server)

    def close(self) -> None:
        for server in list(self.running):
            self.stop(server)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(name="servers")
def servers_fixture() -> Iterator[Servers]:
    servers = Servers()
    try:
        yield servers
    finally:
        servers.close()


def _answers(path: Path) -> bool:
    try:
        return bool(ControlClient(path, timeout=1).request("ping") == "pong")
    except OdpError:
        return False


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _foreign_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_own_directory_is_0755_and_the_socket_0600(servers: Servers, tmp_path: Path) -> None:
    old = os.umask(0o077)  # a strict umask must not close the directory to others
    try:
        server = servers.start(tmp_path / "run" / "ns" / "router.sock")
    finally:
        os.umask(old)
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


def test_a_shared_directory_keeps_its_mode(servers: Servers, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    server = servers.start(shared / "r.sock")
    assert _answers(server.path)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    servers.stop(server)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert not server.path.exists()


def test_a_removed_socket_is_bound_again(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(tmp_path / "r.sock", check_interval=0.2)
    assert _answers(server.path)
    server.path.unlink()
    assert _wait(lambda: _answers(server.path)), "the socket was not bound again"
    assert server.rebinds == 1
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


def test_a_dead_socket_in_its_place_is_replaced(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(tmp_path / "r.sock", check_interval=0.2)
    server.path.unlink()
    _foreign_socket(server.path).close()  # a socket file nobody listens on
    assert _wait(lambda: _answers(server.path)), "the socket was not bound again"


def test_stop_leaves_a_successors_socket(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(tmp_path / "r.sock", check_interval=0.2)
    server.path.unlink()
    successor = _foreign_socket(server.path)
    try:
        inode = server.path.stat().st_ino
        time.sleep(0.6)  # a few looks at the path: a live socket is not taken back
        assert server.path.stat().st_ino == inode
        servers.stop(server)
        assert server.path.exists() and server.path.stat().st_ino == inode
    finally:
        successor.close()


def test_a_removed_directory_is_made_again(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(tmp_path / "run" / "router.sock", check_interval=0.2)
    shutil.rmtree(tmp_path / "run")
    assert _wait(lambda: _answers(server.path)), "the socket was not bound again"
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o755

"""The control socket and the `odpctl peer` commands, against running mesh nodes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from odpctl.commands import peer as peer_cmd
from odpctl.control.client import ControlClient
from odpctl.control.protocol import ControlError, RouterUnavailableError, default_socket_path
from odpctl.control.server import ControlServer
from odpctl.errors import EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE, OdpError
from odpctl.mesh.names import format_peer_name, name_from_bytes
from odpctl.mesh.node import MeshConfig, MeshNode
from odpctl.mesh.status import control_handlers


@dataclass
class Running:
    node: MeshNode
    path: Path
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Any, *args: Any) -> Any:
        async def wrapped() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(5)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Any]:
    """Factory: start a mesh node with a control socket on a loop in a thread."""
    started: list[tuple[Running, ControlServer, threading.Thread]] = []

    def start(nick: str, path: Path | None = None, **kw: Any) -> Running:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        box: dict[str, Any] = {}

        async def main() -> None:
            node = MeshNode(
                MeshConfig(
                    name=name_from_bytes(nick.encode()),
                    nickname=nick,
                    listen_host="127.0.0.1",
                    listen_port=0,
                    backoff_initial=0.1,
                    backoff_max=0.5,
                    update_delay=0.02,
                    **kw,
                )
            )
            server = ControlServer(path or tmp_path / nick / "router.sock", control_handlers(node))
            await node.start()
            await server.start()
            box.update(node=node, server=server)
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            loop.run_forever()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(10)
        running = Running(box["node"], box["server"].path, loop)
        started.append((running, box["server"], thread))
        return running

    yield start

    for running, server, thread in started:

        async def stop(s: ControlServer = server, n: MeshNode = running.node) -> None:
            await s.stop()
            await n.stop()

        asyncio.run_coroutine_threadsafe(stop(), running.loop).result(10)
        running.loop.call_soon_threadsafe(running.loop.stop)
        thread.join(10)


def wait(pred: Any, timeout: float = 5.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_socket_is_root_only(router: Any) -> None:
    r = router("a")
    assert stat.S_IMODE(r.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(r.path.parent.stat().st_mode) == 0o755  # made by the server


def test_status_peers_connect_forget(router: Any) -> None:
    a, b = router("a"), router("b")
    client = ControlClient(b.path)
    status = client.request("status")
    assert status["name"] == format_peer_name(b.node.name) and status["nickname"] == "b"
    assert status["listen"] == f"127.0.0.1:{b.node.listen_port}"
    target = f"127.0.0.1:{a.node.listen_port}"
    assert client.request("connect", addresses=[target]) == {"addresses": [target]}
    wait(lambda: client.request("status")["connections"]["established"] == 1)
    doc = client.request("peers")
    assert {p["nickname"] for p in doc["peers"]} == {"a", "b"}
    (conn,) = doc["connections"]
    assert conn["address"] == target and conn["state"] == "established"
    assert client.request("forget", addresses=[target]) == {"addresses": [target]}
    assert client.request("status")["targets"] == []
    with pytest.raises(ControlError) as info:
        client.request("forget", addresses=[target])
    assert info.value.exit_code == EXIT_NOT_FOUND


def test_errors(router: Any, tmp_path: Path) -> None:
    r = router("a")
    client = ControlClient(r.path)
    with pytest.raises(ControlError) as info:
        client.request("bogus")
    assert info.value.exit_code == EXIT_USAGE and "unknown command 'bogus'" in info.value.message
    with pytest.raises(ControlError, match="invalid address"):
        client.request("connect", addresses=["host:notaport"])
    with pytest.raises(ControlError, match="addresses"):
        client.request("connect", addresses="10.0.0.1")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(r.path))
        s.sendall(b"{nope\n")
        reply = json.loads(s.makefile().readline())
        assert reply == {
            "ok": False,
            "error": {
                "message": "request is not JSON",
                "hint": None,
                "exit_code": EXIT_USAGE,
                "kind": "OdpError",
            },
        }
    with pytest.raises(RouterUnavailableError) as gone:
        ControlClient(tmp_path / "nothing.sock").request("status")
    assert gone.value.exit_code == EXIT_UNAVAILABLE
    # A second router on the same socket is refused; a stale socket is replaced.
    with pytest.raises(OdpError, match="another router is running"):
        asyncio.run(ControlServer(r.path).start())
    stale = tmp_path / "stale" / "router.sock"
    stale.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))  # bound, never listening: what a killed router leaves
    router("b", path=stale)
    assert ControlClient(stale).request("status")["nickname"] == "b"


def cli(*args: str) -> Any:
    result = CliRunner().invoke(peer_cmd.app, list(args), env={"NO_COLOR": "1"})
    return result


def test_peer_commands(router: Any) -> None:
    a, b = router("a"), router("b", password=None)
    target = f"127.0.0.1:{a.node.listen_port}"
    result = cli("connect", target, "--control", str(b.path))
    assert result.exit_code == 0, result.output
    assert result.output == f"connecting to {target}\n"
    wait(lambda: len(b.call(b.node.connections)) == 1)
    result = cli("list", "--control", str(b.path))
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    for text in (
        format_peer_name(a.node.name),
        "established",
        target,
        "self",
        "direct",
        "2 peers, 1 established",
    ):
        assert text in result.output
    result = cli("list", "--control", str(b.path), "--json")
    doc = json.loads(result.output)
    assert list(doc) == list(peer_cmd.LIST_KEYS)
    for p in doc["peers"]:
        assert list(p) == list(peer_cmd.PEER_KEYS)
    for c in doc["connections"]:
        assert list(c) == list(peer_cmd.CONNECTION_KEYS)
    assert doc["self"] == format_peer_name(b.node.name)
    result = cli("forget", target, "--control", str(b.path), "--json")
    assert json.loads(result.output) == {"addresses": [target]}


def test_peer_list_shows_why_a_connection_fails(router: Any) -> None:
    a = router("a", password=b"one")
    b = router("b", password=b"two", peers=(f"127.0.0.1:{a.node.listen_port}",))
    for r in (a, b):
        state = "refused" if r is a else "failed"
        seen: list[str] = []

        # The dialer retries: between a failure and the next one the connection is
        # in its handshake again, with no reason to show yet.
        def shows_why(r: Any = r, state: str = state, seen: list[str] = seen) -> bool:
            seen.append(cli("list", "--control", str(r.path)).output)
            return (
                "password mismatch: the peers' passwords differ" in seen[-1] and state in seen[-1]
            )

        try:
            wait(shows_why)
        except AssertionError:
            raise AssertionError(seen[-1]) from None


def test_peer_commands_find_the_namespace_socket(
    router: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("odpctl.netlink.rundir.RUNTIME_ROOT", tmp_path / "run")
    path = default_socket_path()
    assert path.name == "router.sock" and path.is_relative_to(tmp_path / "run")
    router("a", path=path)
    result = cli("list")
    assert result.exit_code == 0 and "1 peer, 0 established" in result.output


def test_no_router(tmp_path: Path) -> None:
    result = cli("list", "--control", str(tmp_path / "none.sock"))
    assert result.exit_code != 0
    assert isinstance(result.exception, RouterUnavailableError)
    assert "odpctl router start" in str(result.exception)


def test_not_root_is_refused(router: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    # Permissions that let anyone reach the socket, as if someone loosened
    # them: the credentials check must still say no.
    # (Not under /tmp, which may be closed to others on a test machine.)
    top = Path(tempfile.mkdtemp(prefix="odpctl-test-", dir="/var/tmp"))
    try:
        os.chmod(top, 0o755)
        r = router("a", path=top / "ctl" / "router.sock")
        os.chmod(r.path.parent, 0o755)
        os.chmod(r.path, 0o666)
        assert _as_nobody(r.path) == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _as_nobody(path: Path) -> int:
    pid = os.fork()
    if pid == 0:  # the child becomes nobody and asks
        code = 1
        try:
            os.setuid(65534)
            try:
                ControlClient(path).request("status")
            except ControlError as exc:
                code = 0 if "root only" in exc.message else 2
            except OdpError:
                code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

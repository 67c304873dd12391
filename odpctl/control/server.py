"""The control socket's server side (asyncio; runs on the router's event loop).

Root-only: the socket is mode 0600, and each client's credentials
(SO_PEERCRED) are checked too, so that a socket moved or re-permissioned by
mistake still refuses others.  The owner of the server process is let in as
well, so that an unprivileged test can run one.

The directory is left as it is: one the server creates is 0755 (the
namespace's runtime directory also holds the userspace datapath's socket,
which others may use), and one that exists (/tmp, a shared 1777 directory)
is never re-permissioned.  The server keeps its path: every few seconds it
looks, and binds again if the file was removed or replaced by a dead socket;
on stop it removes the file only if it is still its own (a successor's
socket stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from odpctl.errors import EXIT_PERMISSION, EXIT_USAGE, OdpError, error_from_errno

from .protocol import MAX_REQUEST, default_socket_path

log = logging.getLogger("odpctl.control")

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
# A command that keeps its connection (a subscription): given the request and the
# connection's streams, it writes its own reply and events, and returns when done.
StreamHandler = Callable[
    [dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]
]

__all__ = ["ControlServer", "Handler", "StreamHandler", "default_socket_path"]


CHECK_INTERVAL = 3.0  # seconds between looks at the socket's path


class ControlServer:
    def __init__(
        self,
        path: Path | str,
        handlers: Mapping[str, Handler] | None = None,
        *,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.streams: dict[str, StreamHandler] = {}
        self.check_interval = check_interval
        self.rebinds = 0  # times the socket was bound again after it went
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket file
        self._keeper: asyncio.Task[None] | None = None
        self._told_foreign: tuple[int, int] | None = None

    def register(self, cmd: str, handler: Handler) -> None:
        self.handlers[cmd] = handler

    def register_stream(self, cmd: str, handler: StreamHandler) -> None:
        self.streams[cmd] = handler

    async def start(self) -> None:
        await self._remove_stale()
        await self._bind()
        self._keeper = asyncio.get_running_loop().create_task(self._keep_path())

    async def _bind(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            try:
                directory.mkdir(parents=True, exist_ok=True)
                # Whatever the umask: others reach the datapath here.
                os.chmod(directory, 0o755)  # noqa: S103 - meant to be world-readable
            except OSError as exc:
                raise error_from_errno(exc.errno or errno.EIO, f"create {directory}") from None
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for others
        try:
            self._server = await asyncio.start_unix_server(
                self._client, str(self.path), limit=MAX_REQUEST
            )
        except OSError as exc:
            raise error_from_errno(exc.errno or errno.EIO, f"listen on {self.path}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        self._identity = _identity(self.path)

    async def _keep_path(self) -> None:
        """Bind again when our socket file is removed, or replaced by a dead socket."""
        while True:
            await asyncio.sleep(self.check_interval)
            now = _identity(self.path)
            if now is not None and now == self._identity:
                continue
            try:
                await self._remove_stale()
            except OdpError:
                if now != self._told_foreign:  # somebody else's live socket: said once
                    self._told_foreign = now
                    log.warning("%s is now another server's socket: not taking it back", self.path)
                continue
            log.warning(
                "control socket %s was %s: listening on it again",
                self.path,
                "removed" if now is None else "replaced",
            )
            if self._server is not None:
                self._server.close()  # the old listening socket, not its clients
            try:
                await self._bind()
            except OdpError as exc:
                log.warning("%s", exc)
                continue
            self.rebinds += 1

    async def _remove_stale(self) -> None:
        if not self.path.exists():
            return
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.path)), 1.0)
        except (TimeoutError, OSError):
            # Nobody listens: a previous router died without cleaning up.
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        writer.close()
        raise OdpError(
            f"another router is running: its control socket {self.path} answers",
            errno=errno.EADDRINUSE,
            hint="stop it first, or give this one another --control path",
        )

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=1.0)
        # Only our own file: the path may be a successor's socket by now.
        if self._identity is not None and _identity(self.path) == self._identity:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        if sock is None:
            return False
        try:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return False
        _, uid, _ = struct.unpack("3i", creds)
        return uid in (0, os.geteuid())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            allowed = self._allowed(writer)
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._reply(writer, _error("request too long", exit_code=EXIT_USAGE))
                    return
                if not line:
                    return
                if not allowed:
                    # Answered, not hung up on: the client is told why.
                    await self._reply(
                        writer,
                        _error(
                            "the router's control socket is for root only",
                            exit_code=EXIT_PERMISSION,
                            hint="run as root",
                        ),
                    )
                    return
                request = _parse(line)
                if isinstance(request, dict) and request["cmd"] in self.streams:
                    await self._stream(request, reader, writer)
                    return
                await self._reply(writer, await self._dispatch(request))
        except (ConnectionError, OSError):
            return
        finally:
            self._clients.discard(task)
            writer.close()

    async def _stream(
        self,
        request: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            await self.streams[request["cmd"]](request, reader, writer)
        except OdpError as exc:  # refused before its first reply (an unknown datapath)
            await self._reply(
                writer,
                _error(
                    exc.message, hint=exc.hint, exit_code=exc.exit_code, kind=type(exc).__name__
                ),
            )
        except (ConnectionError, OSError):
            raise  # the client went away: _client's business, no bug
        except Exception:  # a bug must not take the router down with it
            log.exception("control stream %r failed", request["cmd"])

    async def _dispatch(self, request: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(request, str):
            return _error(request, exit_code=EXIT_USAGE)
        handler = self.handlers.get(request["cmd"])
        if handler is None:
            known = ", ".join(sorted([*self.handlers, *self.streams]))
            return _error(
                f"unknown command {request['cmd']!r} (known: {known})", exit_code=EXIT_USAGE
            )
        try:
            result = handler(request)
            if inspect.isawaitable(result):
                result = await result
        except OdpError as exc:
            return _error(
                exc.message, hint=exc.hint, exit_code=exc.exit_code, kind=type(exc).__name__
            )
        except Exception as exc:  # a bug must not take the router down with it
            log.exception("control command %r failed", request["cmd"])
            return _error(f"internal error: {exc!r}")
        return {"ok": True, "result": result}

    async def _reply(self, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        await writer.drain()


def _identity(path: Path) -> tuple[int, int] | None:
    """What tells one socket file from another one at the same path; None if none is there."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _parse(line: bytes) -> dict[str, Any] | str:
    """The request on ``line``, or what is wrong with it."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "request is not JSON"
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        return 'request must be an object with a "cmd"'
    return request


def _error(
    message: str, *, exit_code: int = 1, hint: str | None = None, kind: str = "OdpError"
) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"message": message, "hint": hint, "exit_code": exit_code, "kind": kind},
    }

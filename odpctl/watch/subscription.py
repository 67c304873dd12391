"""The client of a router's upcall mirror (`odpctl.control.mirror`): what `watch upcalls` reads."""

from __future__ import annotations

import errno
import json
import socket
import time
from pathlib import Path
from typing import Any

from odpctl.control.mirror import (
    DEFAULT_SNAPLEN,
    SUBSCRIBE,
    MirroredUpcall,
    encode_line,
    parse_event,
)
from odpctl.control.protocol import ControlError, RouterUnavailableError
from odpctl.errors import DecodeError, PermissionDeniedError


class MirrorSubscription:
    """A subscription to the upcall mirror of the router at ``path``.

    Raises `RouterUnavailableError` when nobody answers there and
    `ControlError` when the router refuses (an old router that has no
    mirror answers "unknown command").
    """

    def __init__(
        self,
        path: Path | str,
        datapath: str | None,
        *,
        snaplen: int = DEFAULT_SNAPLEN,
        timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.dropped = 0
        self.ended = False  # the router closed the stream (it stopped)
        self._buffer = b""
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            self._sock.close()
            raise RouterUnavailableError(
                f"no router is running here (nothing answers on {self.path})",
                errno=errno.ECONNREFUSED,
            ) from None
        except PermissionError:
            self._sock.close()
            raise PermissionDeniedError(
                f"the router's control socket {self.path} is for root only",
                errno=errno.EACCES,
                hint="run as root",
            ) from None
        request = {"cmd": SUBSCRIBE, "datapath": datapath, "snaplen": snaplen}
        try:
            self._sock.sendall(encode_line(request))
            reply = self._read(timeout)
        except OSError as exc:
            self._sock.close()
            raise RouterUnavailableError(f"lost the router's control socket: {exc}") from None
        if reply is None or not reply.get("ok"):
            self._sock.close()
            error = (reply or {}).get("error") or {}
            raise ControlError(
                str(error.get("message") or "the router closed the subscription"),
                hint=error.get("hint"),
                exit_code=int(error.get("exit_code") or 1),
                kind=str(error.get("kind") or "OdpError"),
            )
        self.info: dict[str, Any] = reply.get("result") or {}

    def fileno(self) -> int:
        return self._sock.fileno()

    def _read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next line as an object; None at the end of the stream or on timeout."""
        self._sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return None
            if not chunk:
                self.ended = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            raise DecodeError(f"the router sent a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(obj, dict):
            raise DecodeError("the router sent a line that is not a JSON object")
        return obj

    def receive(self, timeout: float | None = None) -> MirroredUpcall | None:
        """The next upcall; None after ``timeout`` seconds (drops go to ``dropped``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            obj = self._read(left)
            if obj is None:
                return None
            event = parse_event(obj)
            if isinstance(event, int):
                self.dropped += event
                continue
            return event

    def close(self) -> None:
        self._sock.close()

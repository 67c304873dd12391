"""The control socket's client side: synchronous, for the command line."""

from __future__ import annotations

import errno
import json
import socket

from odpctl.errors import PermissionDeniedError

from .protocol import MAX_REPLY, ControlError, RouterUnavailableError, default_socket_path

# The CNI plugin, started for every container, imports this: no typing at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = ["ControlClient", "default_socket_path", "request"]

_NO_ROUTER_HINT = "start one with `odpctl router start`, or name its socket with --control"


class ControlClient:
    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def request(self, cmd: str, **args: Any) -> Any:
        """Send one request; its result, or the router's error raised as `ControlError`."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                raise RouterUnavailableError(
                    f"no router is running here (nothing answers on {self.path})",
                    errno=errno.ECONNREFUSED,
                    hint=_NO_ROUTER_HINT,
                ) from None
            except PermissionError:
                raise PermissionDeniedError(
                    f"the router's control socket {self.path} is for root only",
                    errno=errno.EACCES,
                    hint="run as root",
                ) from None
            sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            line = self._read_line(sock)
        except TimeoutError:
            raise RouterUnavailableError(
                f"the router did not answer within {self.timeout:g} s ({self.path})"
            ) from None
        except OSError as exc:
            raise RouterUnavailableError(
                f"lost the router's control socket {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            sock.close()
        try:
            reply = json.loads(line)
        except ValueError:
            raise RouterUnavailableError(
                f"the router sent a reply that is not JSON: {line[:80]!r}"
            ) from None
        if not isinstance(reply, dict):
            raise RouterUnavailableError("the router sent a malformed reply")
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise ControlError(
            str(error.get("message") or "the router failed the request"),
            hint=error.get("hint"),
            exit_code=int(error.get("exit_code") or 1),
            kind=str(error.get("kind") or "OdpError"),
        )

    def _read_line(self, sock: socket.socket) -> bytes:
        chunks = []
        size = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise RouterUnavailableError(f"the router closed {self.path} without answering")
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n") or b"\n" in chunk:
                return b"".join(chunks).split(b"\n", 1)[0]
            if size > MAX_REPLY:
                raise RouterUnavailableError("the router's reply is too long")


def request(path: Path | str, cmd: str, **args: Any) -> Any:
    return ControlClient(path).request(cmd, **args)

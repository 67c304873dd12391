"""Docker's plugin protocol: JSON POSTs over HTTP on a unix socket.

Docker finds the plugin by its socket, /run/docker/plugins/odpctl.sock, and
names it after the file: ``docker network create -d odpctl --ipam-driver
odpctl``.  Each request runs on a thread of its own (a Join waits for the
router); an unknown URL is a 404, which Docker takes as "not implemented".
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import socketserver
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from odpctl.errors import OdpError, error_from_errno

from .ipam import IpamDriver
from .network import NetworkDriver
from .router import DriverError, Router
from .state import State

log = logging.getLogger("odpctl.docker")

DEFAULT_SOCKET = Path("/run/docker/plugins/odpctl.sock")
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
MAX_BODY = 1 << 20

_NETWORK = (
    "GetCapabilities",
    "CreateNetwork",
    "DeleteNetwork",
    "CreateEndpoint",
    "DeleteEndpoint",
    "EndpointOperInfo",
    "Join",
    "Leave",
    "DiscoverNew",
    "DiscoverDelete",
)
_IPAM = (
    "GetCapabilities",
    "GetDefaultAddressSpaces",
    "RequestPool",
    "ReleasePool",
    "RequestAddress",
    "ReleaseAddress",
)

Endpoint = Callable[[dict[str, Any]], dict[str, Any]]


def routes(control: Path, state: State) -> dict[str, Endpoint]:
    """URL path -> the endpoint that answers it."""
    router = Router(control)
    ipam = IpamDriver(router, state)
    network = NetworkDriver(router, state, ipam)
    table: dict[str, Endpoint] = {
        "/Plugin.Activate": lambda _: {"Implements": ["NetworkDriver", "IpamDriver"]}
    }
    table.update({f"/NetworkDriver.{name}": getattr(network, name) for name in _NETWORK})
    table.update({f"/IpamDriver.{name}": getattr(ipam, name) for name in _IPAM})
    return table


class _Handler(BaseHTTPRequestHandler):
    server: PluginServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        endpoint = self.server.routes.get(self.path)
        if endpoint is None:
            self._answer(404, {"Err": f"{self.path}: no such endpoint"})
            return
        try:
            body = self._body()
            self._answer(200, endpoint(body))
        except DriverError as exc:
            log.info("%s: %s", self.path, exc.message)
            self._answer(400 if exc.bad_request else 500, {"Err": exc.message})
        except Exception as exc:  # a bug must not take the driver down
            log.exception("%s failed", self.path)
            self._answer(500, {"Err": f"internal error: {exc!r}"})

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise DriverError("bad Content-Length", bad_request=True) from None
        if not 0 <= length <= MAX_BODY:
            raise DriverError("request body too large", bad_request=True)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            raise DriverError("request body is not JSON", bad_request=True) from None
        if body is None:  # Docker posts "null" where there is no payload
            return {}
        if not isinstance(body, dict):
            raise DriverError("request body must be a JSON object", bad_request=True)
        return body

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # a unix peer has no address
        log.debug(format, *args)


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, control: Path, state: Path | None = None) -> None:
        self.path = path
        self.routes = routes(control, State.load(state))
        _remove_stale(path)
        old = os.umask(0o177)  # root's, like the router's control socket
        try:
            super().__init__(str(path), _Handler)
        except OSError as exc:
            raise error_from_errno(exc.errno or errno.EIO, f"listen on {path}") from None
        finally:
            os.umask(old)

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _remove_stale(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error_from_errno(exc.errno or errno.EIO, f"create {path.parent}") from None
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: left by a driver that died
        return
    finally:
        probe.close()
    raise OdpError(
        f"another driver answers on {path}",
        errno=errno.EADDRINUSE,
        hint="stop it first, or give this one another --socket",
    )

"""The Docker driver, run as `odpctl docker-plugin`, and a client that speaks to it as
Docker does: JSON POSTs over HTTP on its unix socket."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

ODPCTL = Path(sys.executable).parent / "odpctl"


class Post(Protocol):
    def __call__(self, url: str, body: Any = None) -> tuple[int, Any]: ...


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(self.path))


def post_to(path: Path) -> Post:
    def post(url: str, body: Any = None) -> tuple[int, Any]:
        conn = _UnixConnection(path)
        try:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            conn.request(
                "POST",
                url,
                data,
                {
                    "Accept": "application/vnd.docker.plugins.v1.2+json",
                    "Content-Type": "application/json",
                },
            )
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    return post


class Driver:
    def __init__(
        self, tmp: Path, control: Path, state: Path | None = None, netns: str | None = None
    ) -> None:
        """``netns``: the host namespace the driver runs in (Docker's, the router's)."""
        tmp.mkdir(exist_ok=True)
        self.socket = tmp / "odpctl.sock"
        self.log = tmp / "driver.log"
        argv = [
            str(ODPCTL),
            "docker-plugin",
            "--socket",
            str(self.socket),
            "--control",
            str(control),
            "--log-level",
            "debug",
        ]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        if state is not None:
            argv += ["--state", str(state)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.post = post_to(self.socket)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                if self.post("/Plugin.Activate")[0] == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the driver did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    drivers: list[Driver] = []

    def start(control: Path, state: Path | None = None, netns: str | None = None) -> Driver:
        driver = Driver(tmp_path / f"driver{len(drivers)}", control, state, netns)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.stop()

"""Fixtures shared by every suite: the host suite and the kernel suite (tests/kernel).

``run``   runs a command, optionally inside a network namespace, and returns its stdout;
          a failure raises ``subprocess.CalledProcessError`` (a subclass whose message
          includes the command's stderr; catch the stdlib class: conftest modules are
          not meant to be imported).
``netns`` is a factory of throwaway network namespaces, deleted when the test ends.

Fixtures for the real kernel datapath live in tests/kernel/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

pytest_plugins = ["claims"]  # --claim-dir: tests/run shares the kernel suite between guests


class CommandFailed(subprocess.CalledProcessError):
    """A command exited non-zero. Unlike its base class, the message shows stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n--- stderr ---\n{(self.stderr or '').strip()}"


def _run(*cmd: str, netns: str | None = None, timeout: float = 60) -> str:
    """Run ``cmd`` (inside ``netns`` if given) and return its stdout."""
    argv = ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)
    # timeout: a hung tool must fail its test, not stall the whole run
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise CommandFailed(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture
def run() -> Callable[..., str]:
    """``run("ip", "link", "show", netns=ns)`` -> stdout; raises ``CalledProcessError``."""
    return _run


def _delete_netns(name: str) -> None:
    # A process left running inside (a server a test forgot to stop) would keep the
    # namespace, and its interfaces, alive after ``ip netns del``: kill it first.
    # Everything in there was started by the test that made the namespace.
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(int(pid), signal.SIGKILL)
    _run("ip", "netns", "del", name)


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """Factory: ``ns = netns()`` creates a network namespace named ``odpt-<8 hex>``
    with its loopback up, and returns its name.

    Every namespace made this way is deleted when the test ends, passed or failed
    (a deletion failure is reported as a teardown error: something leaked).
    Needs root; skips the test otherwise.
    """
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces need iproute2 (`ip`)")
    created: list[str] = []

    def make() -> str:
        name = f"odpt-{secrets.token_hex(4)}"
        _run("ip", "netns", "add", name)
        created.append(name)
        _run("ip", "link", "set", "lo", "up", netns=name)
        return name

    yield make

    errors = []
    for name in reversed(created):
        try:
            _delete_netns(name)
        except (CommandFailed, subprocess.TimeoutExpired) as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("could not delete network namespaces:\n" + "\n".join(errors))

"""Fixtures for the netlink tests: a scripted peer, kernel checks, scratch namespaces."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.transport import UnixTransport

from .nl_helpers import FakePeer, Handler


@pytest.fixture
def peer() -> Iterator[Callable[[Handler], tuple[FakePeer, NetlinkConnection]]]:
    """Factory: a FakePeer running ``handler`` and a connection to it."""
    made: list[FakePeer] = []

    def make(handler: Handler) -> tuple[FakePeer, NetlinkConnection]:
        p = FakePeer(handler)
        made.append(p)
        return p, NetlinkConnection(UnixTransport.from_socket(p.client))

    yield make
    for p in made:
        p.stop()
    for p in made:
        assert not p.errors, f"fake peer failed: {p.errors!r}"


@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """Factory: fresh, empty named network namespaces, always deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"odpt-{uuid.uuid4().hex[:10]}"
        try:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            pytest.skip(f"cannot create a network namespace: {e}")
        made.append(name)
        return name

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


@pytest.fixture
def scratch_netns(make_netns: Callable[[], str]) -> str:
    return make_netns()

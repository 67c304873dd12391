"""The hook by which the router puts a data path on each mesh connection.

The mesh knows nothing of packets.  For each new connection it asks the
`Overlay` to prepare an `OverlayConnection` (before the connection becomes
visible to routing), confirms it once the connection is known not to be a
duplicate, forwards the overlay's control messages both ways over the
encrypted control connection, and asks it for a status to show.  The overlay
says when its data path works (``set_established(True)``): only then does the
connection count for data routes.  It may also give up on the connection
(``fail(reason)``), which closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .names import PeerName, PeerUID, ShortID


@dataclass(frozen=True, slots=True)
class OverlayStatus:
    """What `odpctl peer list` shows in a connection's overlay column."""

    name: str  # e.g. "fastdp", "sleeve"; "" for none
    healthy: bool = True
    reason: str | None = None  # why not healthy (or why this overlay and not a better one)


@dataclass(frozen=True, slots=True)
class OverlayConnectionParams:
    remote: PeerName
    remote_nickname: str
    remote_uid: PeerUID
    remote_short_id: ShortID
    local_address: tuple[str, int]
    remote_address: tuple[str, int]
    outbound: bool
    conn_uid: int  # the same number at both ends of this connection
    session_key: bytes | None  # per connection, when the mesh is encrypted
    remote_features: dict[str, str]
    send_control: Callable[[int, bytes], None]
    set_established: Callable[[bool], None]
    fail: Callable[[str], None]
    extra: dict[str, Any] = field(default_factory=dict)


class OverlayConnection(Protocol):
    def confirm(self) -> None:
        """The connection is valid (not a duplicate): start working."""
        ...

    def control_message(self, tag: int, payload: bytes) -> None:
        """A message from the other end's overlay."""
        ...

    def status(self) -> OverlayStatus: ...

    def stop(self) -> None:
        """The connection is gone."""
        ...


class Overlay(Protocol):
    def add_features(self, features: dict[str, str]) -> None:
        """Add what the other end's overlay needs to know to our HELLO."""
        ...

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConnection:
        """An overlay connection for a new mesh connection; raise `MeshError` to refuse it."""
        ...

    def diagnostics(self) -> dict[str, Any]: ...


class _ControlOnlyConnection:
    """No data path: the connection is established as soon as it is confirmed."""

    def __init__(self, params: OverlayConnectionParams) -> None:
        self._params = params

    def confirm(self) -> None:
        self._params.set_established(True)

    def control_message(self, _tag: int, _payload: bytes) -> None:
        return None

    def status(self) -> OverlayStatus:
        return OverlayStatus(name="")

    def stop(self) -> None:
        return None


class NullOverlay:
    """The overlay of a bare mesh node: control plane only."""

    def add_features(self, _features: dict[str, str]) -> None:
        return None

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConnection:
        return _ControlOnlyConnection(params)

    def diagnostics(self) -> dict[str, Any]:
        return {}

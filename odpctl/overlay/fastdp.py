"""The fast datapath as the mesh's `Overlay`: a VXLAN path per connection.

Each mesh connection gets a `FastDPConnection` that records the neighbour's
underlay address (the VXLAN tunnel's destination) and declares the data path
established, so the connection counts for data routes.  Whether frames then
really cross is the heartbeats' business (see the router's status).
Everything here runs on the mesh's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from odpctl.mesh.names import PeerName
from odpctl.mesh.overlay import OverlayConnection, OverlayConnectionParams, OverlayStatus

from .flows import VXLAN_PORT

FEATURE = "fastdp"


class FastDPConnection:
    def __init__(self, overlay: FastDatapath, params: OverlayConnectionParams) -> None:
        self.overlay = overlay
        self.params = params
        self.reason: str | None = None
        if FEATURE not in params.remote_features:
            self.reason = "the other end has no fast datapath"

    def confirm(self) -> None:
        self.overlay.neighbours[self.params.remote] = self.params.remote_address[0]
        self.params.set_established(True)
        self.overlay.changed()

    def control_message(self, tag: int, payload: bytes) -> None:
        return None

    def status(self) -> OverlayStatus:
        return OverlayStatus(name=FEATURE, healthy=self.reason is None, reason=self.reason)

    def stop(self) -> None:
        if self.overlay.neighbours.get(self.params.remote) == self.params.remote_address[0]:
            del self.overlay.neighbours[self.params.remote]
        self.overlay.changed()


class FastDatapath:
    """Implements `odpctl.mesh.overlay.Overlay`."""

    def __init__(self, on_change: Callable[[], None], udp_port: int = VXLAN_PORT) -> None:
        self.udp_port = udp_port
        self.neighbours: dict[PeerName, str] = {}  # neighbour -> underlay IP
        self._on_change = on_change

    def changed(self) -> None:
        self._on_change()

    def add_features(self, features: dict[str, str]) -> None:
        features[FEATURE] = f"vxlan:{self.udp_port}"

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConnection:
        return FastDPConnection(self, params)

    def diagnostics(self) -> dict[str, Any]:
        return {"fastdp": {"udp_port": self.udp_port,
                           "neighbours": {f"{n:012x}": ip for n, ip in self.neighbours.items()}}}

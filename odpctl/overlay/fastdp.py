"""The fast datapath as the mesh's `Overlay`: a VXLAN path per connection.

Each mesh connection gets a `FastDPConnection` that records the neighbour's
underlay address (the VXLAN tunnel's destination) and declares the data path
established at once, so the connection counts for data routes: frames can
always cross, through the userspace fallback if not through VXLAN.  Which of
the two a connection uses is the heartbeats' business (`heartbeat`): fastdp
while full-size VXLAN heartbeats are acknowledged, fallback otherwise, with
the reason in its status.  Everything here runs on the mesh's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from odpctl.mesh.names import PeerName
from odpctl.mesh.overlay import OverlayConnection, OverlayConnectionParams, OverlayStatus

from .flows import VXLAN_PORT
from .heartbeat import ACK_TAG, FULL, SMALL, Health, ack_payload, parse_ack

FEATURE = "fastdp"
FALLBACK = "fallback"

# (peer, its underlay IP, heartbeat kind) -> sent?
SendHeartbeat = Callable[[PeerName, str, int], bool]


class FastDPConnection:
    def __init__(self, overlay: FastDatapath, params: OverlayConnectionParams) -> None:
        self.overlay = overlay
        self.params = params
        self.ip = params.remote_address[0]
        self.health = Health(overlay.interval, overlay.timeout, overlay.mtu)
        self.confirmed = False

    @property
    def fastdp(self) -> bool:
        return self.health.ok and self.overlay.vxlan_error is None

    @property
    def reason(self) -> str | None:
        if self.overlay.vxlan_error is not None:
            return self.overlay.vxlan_error
        if FEATURE not in self.params.remote_features:
            return "the other end has no fast datapath"
        return None if self.health.ok else self.health.reason

    def confirm(self) -> None:
        self.confirmed = True
        self.overlay.connections[self.params.remote] = self
        self.params.set_established(True)
        self.overlay.changed()

    def control_message(self, tag: int, payload: bytes) -> None:
        ack = parse_ack(payload) if tag == ACK_TAG else None
        if ack is not None:
            self.health.ack(*ack)
            if self.health.evaluate(self.overlay.udp_port):
                self.overlay.changed()

    def heartbeat_received(self, kind: int) -> None:
        self.health.heard()
        self.params.send_control(ACK_TAG, ack_payload(kind))

    def tick(self, send: SendHeartbeat) -> None:
        if self.overlay.vxlan_error is None:
            for kind in (SMALL, FULL):
                if send(self.params.remote, self.ip, kind):
                    self.health.sending(kind)
        if self.health.evaluate(self.overlay.udp_port):
            self.overlay.changed()

    def status(self) -> OverlayStatus:
        reason = self.reason
        return OverlayStatus(name=FEATURE if self.fastdp else FALLBACK, healthy=reason is None,
                             reason=reason)

    def stop(self) -> None:
        if self.overlay.connections.get(self.params.remote) is self:
            del self.overlay.connections[self.params.remote]
        self.overlay.changed()


class FastDatapath:
    """Implements `odpctl.mesh.overlay.Overlay`."""

    def __init__(self, on_change: Callable[[], None], udp_port: int = VXLAN_PORT, *,
                 mtu: int = 1376, interval: float = 1.0, timeout: float = 3.5) -> None:
        self.udp_port = udp_port
        self.mtu = mtu
        self.interval = interval
        self.timeout = timeout
        self.connections: dict[PeerName, FastDPConnection] = {}
        self.vxlan_error: str | None = None  # set: no fast path for anyone
        self._on_change = on_change

    @property
    def neighbours(self) -> dict[PeerName, str]:
        """Neighbours on the fast path: their underlay IP."""
        return {p: c.ip for p, c in self.connections.items() if c.fastdp}

    @property
    def fallback_neighbours(self) -> dict[PeerName, str]:
        return {p: c.ip for p, c in self.connections.items() if not c.fastdp}

    def tick(self, send: SendHeartbeat) -> None:
        for conn in list(self.connections.values()):
            conn.tick(send)

    def heartbeat_received(self, peer: PeerName, kind: int) -> None:
        conn = self.connections.get(peer)
        if conn is not None:
            conn.heartbeat_received(kind)

    def changed(self) -> None:
        self._on_change()

    def add_features(self, features: dict[str, str]) -> None:
        features[FEATURE] = f"vxlan:{self.udp_port}"

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConnection:
        return FastDPConnection(self, params)

    def diagnostics(self) -> dict[str, Any]:
        return {"fastdp": {
            "udp_port": self.udp_port, "mtu": self.mtu, "vxlan_error": self.vxlan_error,
            "connections": {f"{p:012x}": {"ip": c.ip, "overlay": c.status().name,
                                          "reason": c.reason, **c.health.report()}
                            for p, c in self.connections.items()}}}

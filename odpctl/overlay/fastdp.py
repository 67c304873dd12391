"""The fast datapath as the mesh's `Overlay`: a VXLAN path per connection.

Each mesh connection gets a `FastDPConnection` that records the neighbour's
underlay address (the VXLAN tunnel's destination) and declares the data path
established at once, so the connection counts for data routes: frames can
always cross, through the userspace fallback if not through VXLAN.  Which of
the two a connection uses is the heartbeats' business (`heartbeat`): fastdp
while full-size VXLAN heartbeats are acknowledged, fallback otherwise, with
the reason in its status.  Everything here runs on the mesh's event loop.

With a mesh password (a session key) the fast path is encrypted by the
kernel (`odpctl.crypto.esp`): the connection carries container frames over
VXLAN only once both of its ESP associations are installed, and until then,
or where either end cannot do ESP, it keeps to the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from odpctl.crypto import esp
from odpctl.crypto.esp import Esp, EspLink, EspState
from odpctl.crypto.xfrm import AEAD_GCM
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
        # --- ESP: set when the connection has a session key
        self.encrypted = params.session_key is not None
        self.esp: EspLink | None = None
        self._esp_reason: str | None = None
        self._peer_spi: int | None = None
        if params.session_key is not None:
            self._esp_reason = overlay.esp_refusal(params)
            if self._esp_reason is None and overlay.esp is not None:
                self.esp = overlay.esp.link(
                    params.local_address[0], self.ip, params.session_key, params.outbound
                )

    @property
    def esp_ready(self) -> bool:
        """Whether container frames may take VXLAN as far as encryption goes."""
        if not self.encrypted or self.overlay.trusted(self.ip):
            return True
        return self.esp is not None and self.esp.installed

    @property
    def esp_state(self) -> EspState | None:
        if not self.encrypted:
            return None
        if self.esp is None:
            return EspState("none", reason=self._esp_reason)
        return self.esp.state

    def _start_esp(self) -> None:
        if self.esp is None or self.esp.allocate() is None:
            return
        assert self.esp.spi_in is not None
        self.params.send_control(esp.SPI_TAG, esp.encode_spi(self.esp.spi_in))
        if self._peer_spi is not None:
            self._esp_peer_spi(self._peer_spi)

    def _esp_peer_spi(self, spi: int) -> None:
        self._peer_spi = spi
        if self.esp is not None and self.esp.spi_in is not None and self.esp.peer_spi(spi):
            self.overlay.changed()

    # --- end ESP

    @property
    def fastdp(self) -> bool:
        return self.health.ok and self.overlay.vxlan_error is None and self.esp_ready

    @property
    def reason(self) -> str | None:
        if self.overlay.vxlan_error is not None:
            return self.overlay.vxlan_error
        if FEATURE not in self.params.remote_features:
            return "the other end has no fast datapath"
        if not self.esp_ready:
            state = self.esp_state
            return state.reason if state is not None else None
        return None if self.health.ok else self.health.reason

    def confirm(self) -> None:
        self.confirmed = True
        self.overlay.connections[self.params.remote] = self
        self.params.set_established(True)
        self._start_esp()
        self.overlay.changed()

    def control_message(self, tag: int, payload: bytes) -> None:
        if tag == esp.SPI_TAG:
            spi = esp.decode_spi(payload)
            if spi is not None:
                self._esp_peer_spi(spi)
            return
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
        return OverlayStatus(
            name=FEATURE if self.fastdp else FALLBACK, healthy=reason is None, reason=reason
        )

    def stop(self) -> None:
        if self.esp is not None:
            self.esp.remove()
        if self.overlay.connections.get(self.params.remote) is self:
            del self.overlay.connections[self.params.remote]
        self.overlay.changed()


class FastDatapath:
    """Implements `odpctl.mesh.overlay.Overlay`."""

    def __init__(
        self,
        on_change: Callable[[], None],
        udp_port: int = VXLAN_PORT,
        *,
        mtu: int = 1376,
        interval: float = 1.0,
        timeout: float = 3.5,
        esp: Esp | None = None,
        trusted: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self.udp_port = udp_port
        self.mtu = mtu
        self.interval = interval
        self.timeout = timeout
        self.connections: dict[PeerName, FastDPConnection] = {}
        self.vxlan_error: str | None = None  # set: no fast path for anyone
        self.esp = esp  # the kernel's ESP, if the router started it
        # Underlay addresses whose VXLAN may go in clear, password or not (--trusted-subnets).
        self.trusted = trusted
        self._on_change = on_change

    def esp_refusal(self, params: OverlayConnectionParams) -> str | None:
        """Why an encrypted connection cannot have ESP (None if it can)."""
        if self.trusted(params.remote_address[0]):
            return f"{params.remote_address[0]} is in a trusted subnet"
        if self.esp is None or not self.esp.available:
            return self.esp.reason if self.esp is not None else esp.UNAVAILABLE
        if esp.FEATURE not in params.remote_features:
            return f"{esp.UNAVAILABLE} at the other end too"
        return None

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
        if self.esp is not None and self.esp.available:
            features[esp.FEATURE] = AEAD_GCM

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConnection:
        return FastDPConnection(self, params)

    def diagnostics(self) -> dict[str, Any]:
        return {
            "fastdp": {
                "udp_port": self.udp_port,
                "mtu": self.mtu,
                "vxlan_error": self.vxlan_error,
                "connections": {
                    f"{p:012x}": {
                        "ip": c.ip,
                        "overlay": c.status().name,
                        "reason": c.reason,
                        **c.health.report(),
                        "esp": state.as_dict() if (state := c.esp_state) else None,
                    }
                    for p, c in self.connections.items()
                },
                "esp": self.esp.diagnostics() if self.esp is not None else None,
            }
        }

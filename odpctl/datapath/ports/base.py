"""The vport base: what every port keeps and offers its datapath."""

from __future__ import annotations

from typing import Protocol

from odpctl.datapath.layout import port_meta
from odpctl.datapath.packet import VNET_LEN, ZERO_VNET, Packet, frames
from odpctl.odp.uapi import VportType

# Packets read per wake-up of a port, before other ports get their turn.
BATCH = 64
MAX_FRAME = 65536 + VNET_LEN + 4
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32

# The first synthetic ifindex for ports without a device, far above real ones.
_synthetic = [1 << 24]


def synthetic_ifindex() -> int:
    _synthetic[0] += 1
    return _synthetic[0]


class Owner(Protocol):
    """The datapath a port belongs to."""

    def receive(self, port: Port, pkt: Packet) -> None: ...

    def port_gone(self, port: Port, reason: str) -> None: ...

    def pending(self, port: Port) -> None:
        """``port`` holds output to `Port.flush` once the current batch is done."""


class Port:
    """A vport.  Subclasses open the device or socket in ``__init__``."""

    type: VportType = VportType.UNSPEC

    def __init__(self, owner: Owner, name: str, port_no: int) -> None:
        self.owner = owner
        self.name = name
        self.port_no = port_no
        self.ifindex: int | None = None
        self.upcall_pids: tuple[int, ...] = (0,)
        self.meta = port_meta(port_no)
        # struct ovs_vport_stats order.
        self.rx_packets = self.tx_packets = self.rx_bytes = self.tx_bytes = 0
        self.rx_errors = self.tx_errors = self.rx_dropped = self.tx_dropped = 0
        self.upcall_success = self.upcall_fail = 0

    def fileno(self) -> int | None:
        """The fd to watch for packets, or None for a port that receives nothing."""
        return None

    def on_readable(self) -> None:
        return None

    def send(self, _pkt: Packet) -> None:
        self.tx_dropped += 1

    def flush(self) -> bool:
        """Send what `send` queued (ports that batch their output); False to retry."""
        return True

    def close(self) -> None:
        return None

    def stats(self) -> tuple[int, ...]:
        return (
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_errors,
            self.tx_errors,
            self.rx_dropped,
            self.tx_dropped,
        )

    @property
    def dst_port(self) -> int | None:
        return None

    @property
    def vxlan_gbp(self) -> bool:
        return False

    def _tx_data(self, pkt: Packet) -> bytes | bytearray:
        """What to write to a device with virtio-net headers: truncation applied."""
        if not pkt.cutlen:
            return pkt.data
        # A truncated copy is a plain frame: offloads no longer describe it.
        frame = frames(pkt.data)[0]
        return ZERO_VNET + frame[: max(0, len(frame) - pkt.cutlen)]

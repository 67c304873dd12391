"""Heartbeats through the VXLAN path, sized to the overlay MTU.

Every interval the router sends each neighbour two frames through the
kernel's VXLAN tunnel (a packet execute with ``set(tunnel)``, DF set): a
small one and one as large as the overlay MTU allows.  The neighbour's
datapath misses on them; its router acknowledges each over the mesh's TCP
connection.  The fast path is healthy while full-size heartbeats are
acknowledged; when only the small ones are, the path MTU is too small for
the overlay MTU; when none are, UDP 6784 does not get through.  Either way
the connection falls back to the userspace path, and comes back when full
heartbeats do.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

ETH_TYPE = 0x88B5  # IEEE "local experimental": never a container's real traffic
MAC = b"\x02odphb"
MAGIC = b"ODPHB"
SMALL, FULL = 0, 1
ACK_TAG = 1  # the overlay control message acknowledging a heartbeat
_HEADER = struct.Struct("!6s6sH5sBQ")  # dst, src, ethertype, magic, kind, sender
ETH_HEADER = 14
SMALL_SIZE = 64


def frame(kind: int, sender: int, mtu: int) -> bytes:
    """A heartbeat frame; FULL ones carry ``mtu`` bytes of Ethernet payload."""
    head = _HEADER.pack(MAC, MAC, ETH_TYPE, MAGIC, kind, sender)
    size = ETH_HEADER + mtu if kind == FULL else SMALL_SIZE
    return head + bytes(max(0, size - len(head)))


def parse(packet: bytes) -> tuple[int, int] | None:
    """(kind, sender) of a heartbeat frame, or None if it is not one."""
    if len(packet) < _HEADER.size:
        return None
    dst, _, eth_type, magic, kind, sender = _HEADER.unpack_from(packet)
    if dst != MAC or eth_type != ETH_TYPE or magic != MAGIC or kind not in (SMALL, FULL):
        return None
    return kind, sender


@dataclass
class Health:
    """What one connection's heartbeats say, on the event loop."""

    interval: float
    timeout: float
    mtu: int
    started: float = field(default_factory=time.monotonic)
    acked: dict[int, float] = field(default_factory=dict)  # kind -> last ack
    ok: bool = False
    reason: str = "no fast datapath heartbeat acknowledged yet"
    sent: int = 0
    acks: int = 0

    def ack(self, kind: int) -> None:
        self.acks += 1
        self.acked[kind] = time.monotonic()

    def evaluate(self, port: int) -> bool:
        """Update ``ok`` and ``reason``; whether ``ok`` changed."""
        now = time.monotonic()
        full = now - self.acked.get(FULL, -1e9) <= self.timeout
        small = now - self.acked.get(SMALL, -1e9) <= self.timeout
        was = self.ok
        if full:
            self.ok, self.reason = True, ""
        elif now - self.started < self.timeout and not self.acked:
            self.ok = False
            self.reason = "no fast datapath heartbeat acknowledged yet"
        elif small:
            self.ok = False
            self.reason = (f"path MTU too small for overlay MTU {self.mtu}: full-size VXLAN "
                           f"heartbeats are lost, small ones get through")
        else:
            self.ok = False
            self.reason = (f"no VXLAN heartbeat acknowledged for {self.timeout:g} s "
                           f"(UDP {port} blocked?)")
        return was != self.ok

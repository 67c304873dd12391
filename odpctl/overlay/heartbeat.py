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


# An acknowledgement: the kind acknowledged, then the acknowledging router's
# wall clock (seconds since the epoch), for the clock skew `odpctl doctor`
# reports.  A router that sends the kind alone is still understood.
_ACK_CLOCK = struct.Struct("!d")


def ack_payload(kind: int) -> bytes:
    return bytes([kind]) + _ACK_CLOCK.pack(time.time())


def parse_ack(payload: bytes) -> tuple[int, float | None] | None:
    """(kind, the acknowledger's clock or None) of an acknowledgement, or None."""
    if not payload or payload[0] not in (SMALL, FULL):
        return None
    if len(payload) >= 1 + _ACK_CLOCK.size:
        return payload[0], _ACK_CLOCK.unpack_from(payload, 1)[0]
    return payload[0], None


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
    sent_at: dict[int, float] = field(default_factory=dict)  # kind -> last sent
    rtt: float | None = None  # the last round trip, heartbeat out to its ack back
    clock_offset: float | None = None  # the other end's clock minus ours
    received: int = 0  # the other end's heartbeats that reached us
    last_received: float | None = None

    def sending(self, kind: int) -> None:
        self.sent += 1
        self.sent_at[kind] = time.monotonic()

    def ack(self, kind: int, remote_clock: float | None = None) -> None:
        now = time.monotonic()
        self.acks += 1
        self.acked[kind] = now
        sent = self.sent_at.get(kind)
        # Heartbeats go out a second apart, far longer than a round trip, so
        # an ack answers the last one sent of its kind.
        if sent is not None and now - sent < self.interval:
            self.rtt = now - sent
            if remote_clock is not None:
                self.clock_offset = remote_clock - (time.time() - self.rtt / 2)

    def heard(self) -> None:
        self.received += 1
        self.last_received = time.monotonic()

    def report(self) -> dict[str, object]:
        """The evidence, for status: round trip, ages of the last acks, skew."""
        now = time.monotonic()

        def age(t: float | None) -> float | None:
            return None if t is None else round(now - t, 3)

        return {
            "heartbeats_sent": self.sent,
            "acks": self.acks,
            "last_ack": {"small": age(self.acked.get(SMALL)), "full": age(self.acked.get(FULL))},
            # A round trip is news while acks come; after, it describes a path now gone.
            "rtt_ms": (
                round(self.rtt * 1000, 3)
                if self.rtt is not None
                and self.acked
                and now - max(self.acked.values()) <= self.timeout
                else None
            ),
            "heartbeats_received": self.received,
            "last_received": age(self.last_received),
            "clock_offset_s": None if self.clock_offset is None else round(self.clock_offset, 3),
            "timeout": self.timeout,
        }

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
            self.reason = (
                f"path MTU too small for overlay MTU {self.mtu}: full-size VXLAN "
                f"heartbeats are lost, small ones get through"
            )
        else:
            self.ok = False
            self.reason = (
                f"no VXLAN heartbeat acknowledged for {self.timeout:g} s (UDP {port} blocked?)"
            )
        return was != self.ok

"""Where each MAC address lives: behind a local port, or behind a remote peer.

Shared by the miss-handler threads, hence the lock.  Learning reports a
*move* (the MAC was somewhere else before) because the flows installed for
the old place are now wrong and must go.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from odpctl.mesh.names import PeerName, format_peer_name


@dataclass(frozen=True, slots=True)
class Local:
    port: int


@dataclass(frozen=True, slots=True)
class Remote:
    peer: PeerName


Location = Local | Remote


class MacCache:
    def __init__(self, max_age: float = 600.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[Location, float]] = {}
        self.moves = 0

    def learn(self, mac: bytes, where: Location) -> Location | None:
        """Remember ``mac`` at ``where``; the previous location if it moved, else None."""
        now = time.monotonic()
        with self._lock:
            old = self._entries.get(mac)
            self._entries[mac] = (where, now)
        if old is not None and old[0] != where:
            self.moves += 1
            return old[0]
        return None

    def lookup(self, mac: bytes) -> Location | None:
        entry = self._entries.get(mac)  # a dict read is atomic: no lock needed
        return entry[0] if entry is not None else None

    def forget_port(self, port: int) -> None:
        with self._lock:
            for mac in [m for m, (w, _) in self._entries.items() if w == Local(port)]:
                del self._entries[mac]

    def forget_peers(self, alive: set[PeerName]) -> int:
        """Drop MACs of peers no longer reachable; how many went."""
        with self._lock:
            gone = [
                m
                for m, (w, _) in self._entries.items()
                if isinstance(w, Remote) and w.peer not in alive
            ]
            for mac in gone:
                del self._entries[mac]
        return len(gone)

    def expire(self) -> int:
        cutoff = time.monotonic() - self.max_age
        with self._lock:
            old = [m for m, (_, seen) in self._entries.items() if seen < cutoff]
            for mac in old:
                del self._entries[mac]
        return len(old)

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> dict[bytes, Location]:
        with self._lock:
            return {m: w for m, (w, _) in self._entries.items()}

    def places(self) -> dict[str, dict[str, list[str]]]:
        """MACs by where they live, for status: {"ports": {"2": [MAC]}, "peers": {PEER: [MAC]}}
        (the containers of each host, as `odpctl peer graph` draws them)."""
        out: dict[str, dict[str, list[str]]] = {"ports": {}, "peers": {}}
        for mac, where in sorted(self.snapshot().items()):
            if isinstance(where, Local):
                place = out["ports"].setdefault(str(where.port), [])
            else:
                place = out["peers"].setdefault(format_peer_name(where.peer), [])
            place.append(mac.hex(":"))
        return out

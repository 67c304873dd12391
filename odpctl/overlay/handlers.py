"""Miss-handler threads: several upcall sockets, each with its own Dpif.

Every datapath port lists all the handlers' socket IDs as its upcall PIDs,
so the kernel spreads misses over them.  A handler survives any error in
one packet (counted, logged); if its thread dies anyway, the router's
watchdog notices (`alive`) and starts a new one in its place, counting the
restart: the miss path never dies silently.  A handler whose datapath went
away (`lost`) ends instead of spinning on a dead socket: the router's
supervisor brings the datapath back, with new handlers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from odpctl.control.mirror import UpcallMirror
from odpctl.errors import DatapathUnavailableError, OdpError
from odpctl.odp.dpif import Dpif
from odpctl.odp.uapi import PacketCmd
from odpctl.odp.upcalls import UpcallChannel

from .forwarder import Forwarder

log = logging.getLogger("odpctl.router")


class MissHandler:
    def __init__(
        self, index: int, endpoint: str | None, forwarder: Forwarder,
        mirror: UpcallMirror | None = None,
    ) -> None:
        self.index = index
        self.forwarder = forwarder
        self.mirror = mirror  # copies for `odpctl watch upcalls`, when somebody watches
        self.dpif = Dpif.open(endpoint)
        self.channel: UpcallChannel = self.dpif.open_upcall_channel()
        self.last_error: str | None = None
        self.lost: str | None = None  # why the datapath went away, when it did
        self.last_seen = time.monotonic()
        # How long each of the latest misses took to handle (decide, install,
        # execute), in seconds: the router's share of miss-to-flow latency.
        self.latencies: deque[float] = deque(maxlen=20000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"miss-handler-{index}",
                                        daemon=True)

    @property
    def port_id(self) -> int:
        return self.channel.port_id

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.channel.close()
        self.dpif.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_seen = time.monotonic()
            try:
                upcall = self.channel.receive(timeout=0.2)
            except DatapathUnavailableError as exc:
                self.lost = self.last_error = exc.message
                return
            except OdpError as exc:
                # A full socket buffer (ENOBUFS) loses misses, not the handler.
                self.forwarder.count(errors=1)
                self.last_error = str(exc)
                continue
            if upcall is None:
                continue
            if self.mirror is not None and self.mirror.watched:
                self.mirror.publish_upcall(upcall)
            if upcall.cmd != PacketCmd.MISS:
                continue
            start = time.perf_counter()
            try:
                self.forwarder.handle(self.dpif, upcall)
                self.latencies.append(time.perf_counter() - start)
            except DatapathUnavailableError as exc:
                self.lost = self.last_error = exc.message
                return
            except OdpError as exc:
                self.forwarder.count(errors=1)
                self.last_error = str(exc)
                log.debug("miss handler %d: %s", self.index, exc)
            except Exception as exc:  # a bug: keep handling, but say so loudly
                self.forwarder.count(errors=1)
                self.last_error = f"internal error: {exc!r}"
                log.exception("miss handler %d", self.index)

    def status(self) -> dict[str, object]:
        return {
            "index": self.index, "port_id": self.port_id, "alive": self.alive,
            "overruns": getattr(self.channel, "overruns", 0),
            "malformed": getattr(self.channel, "malformed", 0),
            "last_error": self.last_error,
        }


def latency_summary(handlers: list[MissHandler]) -> dict[str, float | int]:
    """p50 and p99 of the latest misses' handling times, in milliseconds."""
    samples = sorted(x for h in handlers for x in list(h.latencies))
    if not samples:
        return {"samples": 0}

    def pct(p: float) -> float:
        return round(samples[min(len(samples) - 1, int(p * len(samples)))] * 1000, 3)

    return {"samples": len(samples), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}

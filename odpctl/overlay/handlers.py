"""Miss-handler threads: several upcall sockets, each with its own Dpif.

Every datapath port lists all the handlers' socket IDs as its upcall PIDs,
so the kernel spreads misses over them.  A handler survives any error in
one packet (counted, logged); if its thread dies anyway, the router's
watchdog notices (`alive`) and starts a new one in its place, counting the
restart: the miss path never dies silently.  A handler whose datapath went
away (`lost`) ends instead of spinning on a dead socket: the router's
supervisor brings the datapath back, with new handlers.

A handler works in rounds: it reads every upcall waiting (up to ``ROUND``)
in one wake-up, decides each, then sends all their flow puts and packet
executes in one batch with one ACK per window, instead of two request/ACK
round trips per miss.  Every upcall read is accounted for: a decision
(flow installed, sent on without a flow, heartbeat), or a drop or an error
counted by its reason.
"""

from __future__ import annotations

import errno
import logging
import time
from collections import deque

from odpctl.control.mirror import UpcallMirror
from odpctl.errors import DatapathUnavailableError, OdpError
from odpctl.odp.dpif import Dpif, Op
from odpctl.odp.packet import Upcall
from odpctl.odp.uapi import PacketCmd
from odpctl.odp.upcalls import UpcallChannel

from .forwarder import FLOW, NO_FLOW, Decision, Forwarder
from .worker import DatapathWorker

log = logging.getLogger("odpctl.router")

# Upcalls read per round at most: one batch of requests for all of them.
# Every miss of a round waits for the whole round, so this bounds latency:
# 16 keeps a round's batch to a few milliseconds on the userspace datapath
# (~0.15 ms a miss there) while it saves most of the system calls.
ROUND = 16


def _errno_name(exc: OdpError) -> str:
    """A reason that stays one of a few: the errno's name, not the message."""
    if exc.errno:
        return errno.errorcode.get(exc.errno, f"errno {exc.errno}")
    return type(exc).__name__


class MissHandler(DatapathWorker):
    def __init__(
        self,
        index: int,
        endpoint: str | None,
        forwarder: Forwarder,
        mirror: UpcallMirror | None = None,
    ) -> None:
        super().__init__(f"miss-handler-{index}", Dpif.open(endpoint))
        self.index = index
        self.forwarder = forwarder
        self.mirror = mirror  # copies for `odpctl watch upcalls`, when somebody watches
        self.channel: UpcallChannel = self.dpif.open_upcall_channel()
        self.last_error: str | None = None
        self.last_seen = time.monotonic()
        # How long each of the latest misses took to handle (decide, install,
        # execute), in seconds: the router's share of miss-to-flow latency;
        # with when its round ended (time.monotonic), to look at a time window.
        self.latencies: deque[tuple[float, float]] = deque(maxlen=20000)
        self.rounds = 0  # wake-ups that found upcalls: misses / rounds is the batching

    @property
    def port_id(self) -> int:
        return self.channel.port_id

    def _close(self) -> None:
        self.channel.close()
        super()._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_seen = time.monotonic()
            try:
                upcalls = self.channel.receive_many(ROUND, timeout=0.2)
            except DatapathUnavailableError as exc:
                self.lost = self.last_error = exc.message
                return
            except OdpError as exc:
                self.forwarder.error(f"receive: {_errno_name(exc)}")
                self.last_error = str(exc)
                continue
            if not upcalls:
                continue
            start = time.perf_counter()
            self.rounds += 1
            try:
                self._round(upcalls)
            except DatapathUnavailableError as exc:
                self.lost = self.last_error = exc.message
                return
            # Each miss of a round waited for all of it: its handling time.
            self.latencies.extend([(time.monotonic(), time.perf_counter() - start)] * len(upcalls))

    def _round(self, upcalls: list[Upcall]) -> None:
        """Decide every miss, then send all their requests in one batch."""
        forwarder, dpif, dp = self.forwarder, self.dpif, self.forwarder.dp
        decisions: list[Decision] = []
        for upcall in upcalls:
            if self.mirror is not None and self.mirror.watched:
                self.mirror.publish_upcall(upcall)
            if upcall.cmd != PacketCmd.MISS:
                forwarder.dropped("not a miss")
                continue
            try:
                decisions.append(forwarder.decide(upcall))
            except Exception as exc:  # a bug: keep handling, but say so loudly
                forwarder.error("internal error")
                self.last_error = f"internal error: {exc!r}"
                log.exception("miss handler %d", self.index)
        ops: list[Op] = []
        owners: list[int] = []  # the decision each op is for
        failed: dict[int, OdpError] = {}
        for i, decision in enumerate(decisions):
            try:
                mine = [dpif.flush_op(dp)] if decision.flush else []
                if decision.flow is not None:
                    mine.append(dpif.put_op(dp, decision.flow, replace=True))
                if decision.execute is not None:
                    mine.append(dpif.execute_op(dp, decision.execute))
            except OdpError as exc:  # a flow or packet the codec refuses
                failed[i] = exc
                continue
            ops += mine
            owners += [i] * len(mine)
        reserved = sum(1 for d in decisions if d.outcome == FLOW)
        try:
            results = dpif.operate(ops) if ops else []
        except DatapathUnavailableError:
            forwarder.settled(reserved, 0)
            raise
        except OdpError as exc:
            # The batch failed as a whole (a receive overrun): none of it is known done.
            results = [exc] * len(ops)
            log.debug("miss handler %d: %s", self.index, exc)
        for owner, result in zip(owners, results, strict=True):
            if result is not None:
                failed.setdefault(owner, result)
        installed = no_flow = 0
        for i, decision in enumerate(decisions):
            if i in failed:
                forwarder.error(f"datapath: {_errno_name(failed[i])}")
                self.last_error = str(failed[i])
            elif decision.outcome == FLOW:
                installed += 1
            elif decision.outcome == NO_FLOW:
                no_flow += 1
        forwarder.settled(reserved, installed)
        if no_flow:
            forwarder.count(no_flow=no_flow)

    def status(self) -> dict[str, object]:
        return {
            "index": self.index,
            "port_id": self.port_id,
            "alive": self.alive,
            "overruns": getattr(self.channel, "overruns", 0),
            "malformed": getattr(self.channel, "malformed", 0),
            "received": getattr(self.channel, "received", 0),
            "rounds": self.rounds,
            "last_error": self.last_error,
        }


def latency_summary(handlers: list[MissHandler], since: float = 0.0) -> dict[str, float | int]:
    """p50 and p99 of the latest misses' handling times, in milliseconds
    (of those handled after ``since``, a time.monotonic())."""
    samples = sorted(x for h in handlers for t, x in list(h.latencies) if t > since)
    if not samples:
        return {"samples": 0}

    def pct(p: float) -> float:
        return round(samples[min(len(samples) - 1, int(p * len(samples)))] * 1000, 3)

    return {"samples": len(samples), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}

"""Which installed flows are still right: revalidation and idle expiry.

Weave flushed every flow on any change.  We look at each flow instead:

- a flow that tunnels (set(tunnel)) is still right if its VNI names two
  peers we still know by those short IDs and its destination is the current
  next hop's address towards the VNI's destination peer;
- a flow matching a tunnel's ingress is right while its VNI's source peer is
  known by that short ID, and (with a mesh password) while VXLAN from its
  outer source address is still taken: a connection that left ESP must not
  keep a door open to plaintext;
- a flow that floods (a broadcast, or several outputs) depends on the broadcast trees: it goes
  whenever the view changed;
- everything else (local output) stays.

A peer that just vanished (restarting, or a connection flapping) is given a
grace period: flows towards it stay until then, so established traffic
keeps flowing while a router restarts (its address and short ID come back
the same).  Flows no packet has hit for ``idle`` seconds go too.

A pass must keep up with 100,000 flows without holding up the miss
handlers, so it reads the dump lazily: of each flow only the key's bytes,
the actions' bytes and ``used``.  A flow's verdict depends only on its
tunnel match, whether it is sent to a multicast address, and its actions,
and those repeat (a few per peer and port): each such combination is
decoded and judged once per pass, and the rest is dictionary lookups.
Idle time comes from the datapath's ``used`` (its CLOCK_MONOTONIC in ms,
as ours); a flow no packet ever hit is idle since we first saw it.  The
doomed flows go in batched deletes, one ACK per window, and a ``pause``
called every ``SLICE`` flows lets the caller give way to the miss path.
"""

from __future__ import annotations

import errno
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Output, Set, decode_actions
from odpctl.odp.dpif import QUIET_BATCH_WINDOW, Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Tunnel, decode_key_at
from odpctl.odp.uapi import KeyAttr

from .flows import is_multicast, split_vni
from .lazyflow import FlowReader
from .view import MeshView

KEEP, STALE, GRACE = "keep", "stale", "grace"


def verdict(
    flow: Flow, view: MeshView, vanished: set[PeerName] | frozenset[PeerName], view_changed: bool
) -> str:
    """KEEP, STALE, or GRACE (stale, but towards a peer within its grace period)."""
    outputs = [a for a in flow.actions if isinstance(a, Output)]
    tunnels = [
        a.value
        for a in flow.actions
        if isinstance(a, Set) and a.kind == KeyAttr.TUNNEL and isinstance(a.value, Tunnel)
    ]
    eth = flow.key.eth
    if view_changed and (len(outputs) > 1 or (eth is not None and is_multicast(eth.dst))):
        return STALE  # a flood: it follows the broadcast trees, which may have changed
    result = KEEP
    match = flow.key.get(KeyAttr.TUNNEL)
    if isinstance(match, Tunnel) and match.tun_id is not None:
        src_short, _ = split_vni(match.tun_id)
        if view.by_short_id.get(src_short) is None or (
            view.vxlan_from is not None
            and (
                match.ipv4_src is None
                or str(ipaddress.IPv4Address(match.ipv4_src)) not in view.vxlan_from
            )
        ):
            result = STALE
    for tunnel in tunnels:
        src_short, dst_short = split_vni(tunnel.tun_id or 0)
        src, dst = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        hop = view.next_hops.get(dst) if dst is not None else None
        ip = view.neighbour_ips.get(hop) if hop is not None else None
        if src is None or ip is None or tunnel.ipv4_dst != int(ipaddress.IPv4Address(ip)):
            result = STALE
    if result == STALE and vanished:
        return GRACE
    return result


# Flows judged between two calls of a pass's ``pause``: ~0.4 ms of work on this
# machine's host, ~1 ms in the test-bed guest (bench/revalidate.py), so a miss
# handler waiting for the interpreter waits no longer than that.
SLICE = 128


@dataclass(frozen=True)
class PassReport:
    flows: int = 0
    stale: int = 0
    idle: int = 0
    seconds: float = 0.0  # wall clock, pauses included
    cpu_seconds: float = 0.0  # this thread's CPU
    judged: int = 0  # distinct (tunnel, multicast, actions) decoded and judged

    def as_dict(self) -> dict[str, float | int]:
        return {
            "flows": self.flows,
            "stale": self.stale,
            "idle": self.idle,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


def _no_pause() -> None:
    pass


@dataclass
class Revalidator:
    idle: float = 60.0
    grace: float = 30.0
    deleted_stale: int = 0
    deleted_idle: int = 0
    delete_errors: int = 0
    last_error: str | None = None
    passes: int = 0
    last_pass: PassReport | None = None
    # Flows no packet ever hit (``used`` 0), by key: when we first saw them.
    _unused_since: dict[bytes, float] = field(default_factory=dict)
    _reader: FlowReader = field(default_factory=FlowReader)

    def status(self) -> dict[str, object]:
        last = self.last_pass
        return {
            "stale": self.deleted_stale,
            "idle": self.deleted_idle,
            "passes": self.passes,
            "last_pass": last.as_dict() if last else None,
            "delete_errors": self.delete_errors,
            "last_error": self.last_error,
        }

    def revalidate(
        self,
        dpif: Dpif,
        dp: str | int,
        view: MeshView,
        vanished: set[PeerName] | frozenset[PeerName],
        view_changed: bool,
        pause: Callable[[], None] = _no_pause,
    ) -> PassReport:
        """One pass over the datapath's flows: dump, judge, delete the doomed."""
        wall, cpu = time.perf_counter(), time.thread_time()
        now = time.monotonic()
        now_ms, idle_ms = now * 1000.0, self.idle * 1000.0
        verdicts: dict[tuple[bytes | None, bool, bytes], str] = {}
        seen = self._unused_since
        unused: dict[bytes, float] = {}
        doomed: list[tuple[bytes, bool]] = []  # key, and whether it is stale (else idle)
        flows = 0
        read_flow, key_facts = self._reader.flow, self._reader.key_facts
        for data, start in dpif.dump_flow_attrs(dp):
            flows += 1
            if not flows % SLICE:
                pause()
            k0, k1, a0, a1, used = read_flow(data, start)
            if k0 == k1:
                continue  # no key to delete it by (a UFID flow dumped without)
            key = data[k0:k1]
            tunnel, multicast = key_facts(data, k0, k1)
            actions = data[a0:a1]
            state = verdicts.get((tunnel, multicast, actions))
            if state is None:
                flow = Flow(decode_key_at(data, k0, k1), None, decode_actions(actions))
                state = verdicts[tunnel, multicast, actions] = verdict(
                    flow, view, vanished, view_changed
                )
            if state == STALE:
                doomed.append((key, True))
                continue
            if used:
                idle_for = now_ms - used
            else:
                since = unused[key] = seen.get(key, now)
                idle_for = (now - since) * 1000.0
            if idle_for > idle_ms:
                doomed.append((key, False))
        self._unused_since = unused
        stale, idle = self._delete(dpif, dp, doomed, pause)
        self.deleted_stale += stale
        self.deleted_idle += idle
        self.passes += 1
        report = PassReport(
            flows,
            stale,
            idle,
            time.perf_counter() - wall,
            time.thread_time() - cpu,
            len(verdicts),
        )
        self.last_pass = report
        return report

    def _delete(
        self,
        dpif: Dpif,
        dp: str | int,
        doomed: list[tuple[bytes, bool]],
        pause: Callable[[], None],
    ) -> tuple[int, int]:
        """Delete ``doomed`` in batches; (stale, idle) deleted.  A flow
        already gone (ENOENT: deleted or expired meanwhile) is not counted;
        any other failure is, and the rest still go."""
        stale = idle = 0
        for i in range(0, len(doomed), QUIET_BATCH_WINDOW):
            window = doomed[i : i + QUIET_BATCH_WINDOW]
            results = dpif.operate([dpif.delete_op(dp, key) for key, _ in window], "revalidation")
            for (_, is_stale), result in zip(window, results, strict=True):
                if result is None:
                    stale += is_stale
                    idle += not is_stale
                elif result.errno != errno.ENOENT:
                    self.delete_errors += 1
                    self.last_error = str(result)
            pause()
        return stale, idle

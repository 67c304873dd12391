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
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Output, Set
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Tunnel
from odpctl.odp.text.keys import format_key
from odpctl.odp.uapi import KeyAttr

from .flows import is_multicast, split_vni
from .view import MeshView

KEEP, STALE, GRACE = "keep", "stale", "grace"


def verdict(flow: Flow, view: MeshView, vanished: set[PeerName], view_changed: bool) -> str:
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


@dataclass
class Revalidator:
    idle: float = 60.0
    grace: float = 30.0
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)
    deleted_stale: int = 0
    deleted_idle: int = 0

    def sweep(
        self, flows: list[Flow], view: MeshView, vanished: set[PeerName], view_changed: bool
    ) -> list[Flow]:
        """The flows to delete."""
        now = time.monotonic()
        doomed: list[Flow] = []
        seen: dict[str, tuple[int, float]] = {}
        for flow in flows:
            ident = format_key(flow.key, flow.mask)
            packets, since = self._seen.get(ident, (-1, now))
            if flow.packets != packets:
                since = now
            seen[ident] = (flow.packets, since)
            state = verdict(flow, view, vanished, view_changed)
            if state == STALE:
                self.deleted_stale += 1
                doomed.append(flow)
            elif now - since > self.idle:
                self.deleted_idle += 1
                doomed.append(flow)
        self._seen = seen
        return doomed

"""The miss handler's decisions: learn, then output, tunnel, relay or flood.

Weave fast-datapath semantics.  A frame from a container port: learn its
source MAC behind that port; a known local destination is an output, a
known remote one a ``set(tunnel)`` to the next hop towards its peer with the
VNI naming both ends; broadcasts flood to the other local ports and along
our broadcast tree, with a flow; unknown unicast floods likewise but without
a flow (the answer will teach us where the MAC is).  A frame from the VXLAN
port: its VNI says who sent it and for whom; if for someone else, relay it
to the next hop; if for us, learn the source MAC behind the sender and
deliver it locally, continuing a flood along the sender's tree.  Sending a
frame back where it came from (a hairpin) is refused.

With a mesh password, a frame from the VXLAN port is only taken from a
neighbour whose connection may carry plaintext VXLAN (ESP, or a trusted
subnet), from that neighbour's own address when it claims to be the source,
and between known short IDs; anything else is counted by its reason in the
links' drops and dropped before it can teach the MAC cache anything.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Action, Output
from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.flow import Flow
from odpctl.odp.keys import FlowKey, Tunnel
from odpctl.odp.packet import Execute, Upcall
from odpctl.odp.uapi import KeyAttr

from . import heartbeat
from .fallback import Fallback
from .flows import flowable, is_multicast, local_flow, split_vni, tunnel_flow, tunnel_to, vni
from .links import Drops, Links
from .maccache import Local, MacCache, Remote
from .view import MeshView


def tunnel_refusal(links: Links, view: MeshView, tunnel: Tunnel) -> str | None:
    """Why a VXLAN frame is refused on a mesh with a password (None: taken)."""
    if not links.required:
        return None
    ip = str(ipaddress.IPv4Address(tunnel.ipv4_src or 0))
    if not links.vxlan_from(ip):
        return "plaintext VXLAN"
    src_short, dst_short = split_vni(tunnel.tun_id or 0)
    src_peer = view.by_short_id.get(src_short)
    if src_peer is None or dst_short not in view.by_short_id:
        return "unknown short ID"
    own = links.by_peer.get(src_peer)
    if own is not None and own.ip != ip:
        return "source address"
    return None


@dataclass
class ForwarderStats:
    misses: int = 0
    flows_installed: int = 0
    no_flow: int = 0  # handled (sent on) without a flow: unknown unicast, fallback, flow limit
    over_limit: int = 0  # of no_flow: a flow was due, but the flow limit was reached
    flooded: int = 0
    relayed: int = 0
    dropped: int = 0  # not sent on: no route, unknown peer, hairpin, refused (see reasons)
    errors: int = 0  # the datapath refused a request, or a bug (see reasons)
    mac_moves: int = 0
    fallback_sent: int = 0
    fallback_received: int = 0
    heartbeats: int = 0


@dataclass(frozen=True)
class Ports:
    """The datapath's ports as the forwarder sees them (replaced, never changed)."""

    local: frozenset[int] = frozenset()
    vxlan: int | None = None


# What became of one miss; each is counted once, so that misses = the sum.
FLOW, NO_FLOW, HEARTBEAT, DROPPED = "flow", "no flow", "heartbeat", "dropped"


@dataclass(slots=True)
class Decision:
    """What to ask of the datapath for one miss, and what it comes to."""

    outcome: str
    flow: Flow | None = None
    execute: Execute | None = None
    flush: bool = False  # a MAC moved: every flow goes, before this one's


class Forwarder:
    """Shared by all miss-handler threads.

    `decide` takes a miss apart and says what to do, without a request to
    the datapath, so that a handler sends a whole round's flow puts and
    packet executes together.  ``max_flows`` (0: no limit) is checked
    against ``flows``, the datapath's count as the router last read it
    (`recount`), plus the flows installed since and those decided and not
    yet installed (``pending``): a decision reserves its flow's place.
    """

    def __init__(
        self, dp: DpRef, macs: MacCache, udp_port: int, links: Links, max_flows: int = 0
    ) -> None:
        self.dp = dp
        self.macs = macs
        self.links = links
        self.udp_port = udp_port
        self.max_flows = max_flows
        self.flows = 0
        self.pending = 0
        self.last_installed = 0.0  # the wall clock when the latest flow went in
        self.view: MeshView | None = None
        self.ports = Ports()
        self.fallback: Fallback | None = None
        # Called on a handler thread with (sender, kind) for each heartbeat.
        self.on_heartbeat: Callable[[int, int], None] = lambda _sender, _kind: None
        # Per thread: the frames of the current decision that go through the
        # userspace fallback (which forbid a flow), and whether a MAC moved.
        self._tls = threading.local()
        self._lock = threading.Lock()
        self.stats = ForwarderStats()
        self.drop_reasons = Drops()
        self.error_reasons = Drops()

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def recount(self, flows: int, since: int) -> None:
        """The datapath's flow count, read after ``flows_installed`` was ``since``.

        The flows installed meanwhile may be in the count or not: they are
        added, so that the limit errs on the side of fewer flows until the
        next count.
        """
        with self._lock:
            self.flows = flows + self.stats.flows_installed - since

    def _reserve(self) -> bool:
        """A place for one more flow under the limit (False: none)."""
        with self._lock:
            if self.max_flows and self.flows + self.pending >= self.max_flows:
                self.stats.over_limit += 1
                return False
            self.pending += 1
            return True

    def settled(self, reserved: int, installed: int) -> None:
        """Of ``reserved`` flows decided, ``installed`` went in (the rest failed)."""
        with self._lock:
            self.pending -= reserved
            self.flows += installed
            self.stats.flows_installed += installed
        if installed:
            self.last_installed = time.time()

    def dropped(self, reason: str) -> None:
        self.drop_reasons.add(reason)
        self.count(dropped=1)

    def error(self, reason: str) -> None:
        self.error_reasons.add(reason)
        self.count(errors=1)

    def _begin(self) -> None:
        self._tls.sleeve = []
        self._tls.flush = False
        self._tls.nowhere = "nowhere to send"

    def _send_fallback(self, frame: bytes) -> None:
        sends: list[tuple[str, int, int]] = self._tls.sleeve
        if self.fallback is None:
            return
        for ip, src_short, dst_short in sends:
            self.fallback.send(ip, src_short, dst_short, frame)
        self.count(fallback_sent=len(sends))

    def decide(self, upcall: Upcall) -> Decision:
        """What to do with one miss (counted in ``misses``, and a drop by its reason)."""
        self.count(misses=1)
        self._begin()
        decision = self._decide(upcall)
        if decision.outcome == DROPPED:
            return decision
        decision.flush = self._tls.flush
        self._send_fallback(upcall.packet)
        return decision

    def _decide(self, upcall: Upcall) -> Decision:
        view, ports = self.view, self.ports
        key = upcall.key
        in_port, eth, eth_type = key.in_port, key.eth, key.get(KeyAttr.ETHERTYPE)
        if view is None:
            return self._drop("no mesh view yet")
        if in_port is None or eth is None:
            return self._drop("no port or Ethernet header")
        tunnel = key.get(KeyAttr.TUNNEL)
        from_tunnel = in_port == ports.vxlan and isinstance(tunnel, Tunnel)
        if from_tunnel and eth_type == heartbeat.ETH_TYPE:
            beat = heartbeat.parse(upcall.packet)
            if beat is not None:
                self.count(heartbeats=1)
                self.on_heartbeat(beat[1], beat[0])
                return Decision(HEARTBEAT)
        if from_tunnel:
            assert isinstance(tunnel, Tunnel)
            refusal = tunnel_refusal(self.links, view, tunnel)
            if refusal is not None:
                self.links.drops.add(f"vxlan: {refusal}")
                return self._drop(f"refused: {refusal}")
            actions, flow_ok = self._from_tunnel(view, ports, eth.src, eth.dst, tunnel)
        elif in_port in ports.local:
            actions, flow_ok = self._from_local(view, ports, in_port, eth.src, eth.dst)
        else:
            return self._drop("from a port not attached")
        fallback = bool(self._tls.sleeve)
        if not actions and not fallback:
            return self._drop(self._tls.nowhere)
        execute = None
        if actions:
            execute = Execute(upcall.packet, FlowKey({KeyAttr.IN_PORT: in_port}), actions)
        if not (flow_ok and not fallback and isinstance(eth_type, int) and flowable(eth_type)):
            return Decision(NO_FLOW, execute=execute)
        if not self._reserve():
            return Decision(NO_FLOW, execute=execute)
        if from_tunnel:
            assert isinstance(tunnel, Tunnel)
            flow = tunnel_flow(in_port, tunnel, eth, eth_type, actions)
        else:
            flow = local_flow(in_port, eth, eth_type, actions)
        return Decision(FLOW, flow=flow, execute=execute)

    def _drop(self, reason: str) -> Decision:
        self.dropped(reason)
        return Decision(DROPPED)

    def inject(
        self, dpif: Dpif, src_short: int, dst_short: int, frame: bytes, came_from: str
    ) -> None:
        """A frame from the userspace fallback (on the fallback's receiving thread)."""
        self.count(fallback_received=1)
        self._begin()
        view, ports = self.view, self.ports
        if view is None or len(frame) < 14:
            self.dropped("fallback: no view, or a runt frame")
            return
        src_peer, dst_peer = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        if src_peer is None or dst_peer is None:
            self.dropped("fallback: unknown short ID")
            return
        actions, _ = self._from_peer(
            view, ports, src_peer, dst_peer, frame[6:12], frame[0:6], came_from
        )
        if self._tls.flush:
            dpif.flush_flows(self.dp)
        if actions:
            # Injected as if from the datapath's own port: no container's.
            dpif.execute(self.dp, Execute(frame, FlowKey({KeyAttr.IN_PORT: 0}), actions))
        elif not self._tls.sleeve:
            self.dropped(f"fallback: {self._tls.nowhere}")
        self._send_fallback(frame)

    def _learn(self, mac: bytes, where: Local | Remote) -> None:
        if is_multicast(mac):
            return
        if self.macs.learn(mac, where) is not None:
            # Flows towards and from its old place are wrong now.  Weave
            # flushed every flow here; so do we (before this miss's flow), as
            # finding the ones that name this MAC would cost a dump on the
            # miss path.
            self.count(mac_moves=1)
            self._tls.flush = True

    def _nowhere(self, reason: str) -> tuple[list[Action], bool]:
        """No actions and no flow, for ``reason`` (counted if nothing else carries the frame)."""
        self._tls.nowhere = reason
        return [], False

    def _to_peer(
        self,
        view: MeshView,
        ports: Ports,
        src: PeerName,
        dst: PeerName,
        avoid_ip: str | None = None,
    ) -> list[Action] | None:
        """Actions towards peer ``dst`` for a frame from peer ``src`` (None: no way).

        Through the fallback, the actions are empty and the frame is queued
        for the fallback instead.
        """
        hop = view.next_hops.get(dst)
        if hop is None or src not in view.short_ids or dst not in view.short_ids:
            return None
        value = vni(view.short_ids[src], view.short_ids[dst])
        ip = view.neighbour_ips.get(hop)
        if ip is not None and ports.vxlan is not None and ip != avoid_ip:
            return tunnel_to(value, ip, ports.vxlan, self.udp_port)
        ip = view.fallback_ips.get(hop)
        if ip is not None and ip != avoid_ip:
            self._tls.sleeve.append((ip, view.short_ids[src], view.short_ids[dst]))
            return []
        return None

    def _along_tree(self, view: MeshView, ports: Ports, src: PeerName) -> list[Action]:
        actions: list[Action] = []
        for child in view.broadcast.get(src, ()):
            if child not in view.short_ids or src not in view.short_ids:
                continue
            ip = view.neighbour_ips.get(child)
            if ip is not None and ports.vxlan is not None:
                actions += tunnel_to(
                    vni(view.short_ids[src], view.short_ids[child]), ip, ports.vxlan, self.udp_port
                )
                continue
            ip = view.fallback_ips.get(child)
            if ip is not None:
                self._tls.sleeve.append((ip, view.short_ids[src], view.short_ids[child]))
        return actions

    def _from_local(
        self, view: MeshView, ports: Ports, in_port: int, src: bytes, dst: bytes
    ) -> tuple[list[Action], bool]:
        """(actions, whether to install a flow) for a frame from a container port."""
        self._learn(src, Local(in_port))
        where = None if is_multicast(dst) else self.macs.lookup(dst)
        if isinstance(where, Local):
            if where.port == in_port:
                return self._nowhere("hairpin")
            return [Output(where.port)], True
        if isinstance(where, Remote):
            actions = self._to_peer(view, ports, view.ourself, where.peer)
            return (actions, True) if actions is not None else self._nowhere("no route to peer")
        flood: list[Action] = [Output(p) for p in sorted(ports.local) if p != in_port]
        flood += self._along_tree(view, ports, view.ourself)
        self.count(flooded=1)
        return flood, is_multicast(dst)  # a flow for real broadcasts only

    def _from_tunnel(
        self, view: MeshView, ports: Ports, src: bytes, dst: bytes, tunnel: Tunnel
    ) -> tuple[list[Action], bool]:
        src_short, dst_short = split_vni(tunnel.tun_id or 0)
        src_peer, dst_peer = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        if src_peer is None or dst_peer is None:
            return self._nowhere("unknown short ID")
        came_from = (
            str(ipaddress.IPv4Address(tunnel.ipv4_src)) if tunnel.ipv4_src is not None else None
        )
        return self._from_peer(view, ports, src_peer, dst_peer, src, dst, came_from)

    def _from_peer(
        self,
        view: MeshView,
        ports: Ports,
        src_peer: PeerName,
        dst_peer: PeerName,
        src: bytes,
        dst: bytes,
        came_from: str | None,
    ) -> tuple[list[Action], bool]:
        """A frame another peer sent (by VXLAN or fallback) from ``src_peer`` to ``dst_peer``."""
        if src_peer == view.ourself:
            return self._nowhere("our own frame came back")
        if dst_peer != view.ourself:
            actions = self._to_peer(view, ports, src_peer, dst_peer, avoid_ip=came_from)
            if actions is None:
                return self._nowhere("no route to relay")
            self.count(relayed=1)
            return actions, True
        self._learn(src, Remote(src_peer))
        where = None if is_multicast(dst) else self.macs.lookup(dst)
        if isinstance(where, Local):
            return [Output(where.port)], True
        # Broadcast or unknown: deliver to every local port, and carry on along
        # the sender's tree (each peer on it receives the frame once).
        flood: list[Action] = [Output(p) for p in sorted(ports.local)]
        flood += self._along_tree(view, ports, src_peer)
        self.count(flooded=1)
        return flood, is_multicast(dst)

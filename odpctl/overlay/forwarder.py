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
from collections.abc import Callable
from dataclasses import dataclass

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Action, Output
from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.keys import FlowKey, Tunnel
from odpctl.odp.packet import Execute, Upcall
from odpctl.odp.uapi import KeyAttr

from . import heartbeat
from .fallback import Fallback
from .flows import flowable, is_multicast, local_flow, split_vni, tunnel_flow, tunnel_to, vni
from .links import Links
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
    flooded: int = 0
    relayed: int = 0
    dropped: int = 0  # no route, unknown peer, hairpin
    errors: int = 0
    mac_moves: int = 0
    fallback_sent: int = 0
    fallback_received: int = 0
    heartbeats: int = 0


@dataclass(frozen=True)
class Ports:
    """The datapath's ports as the forwarder sees them (replaced, never changed)."""

    local: frozenset[int] = frozenset()
    vxlan: int | None = None


class Forwarder:
    """Shared by all miss-handler threads; each passes its own Dpif."""

    def __init__(self, dp: DpRef, macs: MacCache, udp_port: int, links: Links) -> None:
        self.dp = dp
        self.macs = macs
        self.links = links
        self.udp_port = udp_port
        self.view: MeshView | None = None
        self.ports = Ports()
        self.fallback: Fallback | None = None
        # Called on a handler thread with (sender, kind) for each heartbeat.
        self.on_heartbeat: Callable[[int, int], None] = lambda _sender, _kind: None
        # Per thread: its Dpif, and the frames of the current decision that go
        # through the userspace fallback (which forbid a flow).
        self._tls = threading.local()
        self._lock = threading.Lock()
        self.stats = ForwarderStats()

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _begin(self, dpif: Dpif) -> None:
        self._tls.dpif = dpif
        self._tls.sleeve = []

    def _send_fallback(self, frame: bytes) -> None:
        sends: list[tuple[str, int, int]] = self._tls.sleeve
        if self.fallback is None:
            return
        for ip, src_short, dst_short in sends:
            self.fallback.send(ip, src_short, dst_short, frame)
        self.count(fallback_sent=len(sends))

    def handle(self, dpif: Dpif, upcall: Upcall) -> None:
        self.count(misses=1)
        self._begin(dpif)
        view, ports = self.view, self.ports
        key = upcall.key
        in_port, eth, eth_type = key.in_port, key.eth, key.get(KeyAttr.ETHERTYPE)
        if view is None or in_port is None or eth is None:
            self.count(dropped=1)
            return
        tunnel = key.get(KeyAttr.TUNNEL)
        from_tunnel = in_port == ports.vxlan and isinstance(tunnel, Tunnel)
        if from_tunnel and eth_type == heartbeat.ETH_TYPE:
            beat = heartbeat.parse(upcall.packet)
            if beat is not None:
                self.count(heartbeats=1)
                self.on_heartbeat(beat[1], beat[0])
                return
        if from_tunnel:
            assert isinstance(tunnel, Tunnel)
            refusal = tunnel_refusal(self.links, view, tunnel)
            if refusal is not None:
                self.links.drops.add(f"vxlan: {refusal}")
                self.count(dropped=1)
                return
            actions, flow_ok = self._from_tunnel(view, ports, eth.src, eth.dst, tunnel)
        elif in_port in ports.local:
            actions, flow_ok = self._from_local(view, ports, in_port, eth.src, eth.dst)
        else:
            self.count(dropped=1)
            return
        fallback = bool(self._tls.sleeve)
        if not actions and not fallback:
            self.count(dropped=1)
            return
        if flow_ok and not fallback and isinstance(eth_type, int) and flowable(eth_type):
            if from_tunnel:
                assert isinstance(tunnel, Tunnel)
                flow = tunnel_flow(in_port, tunnel, eth, eth_type, actions)
            else:
                flow = local_flow(in_port, eth, eth_type, actions)
            dpif.add_flow(self.dp, flow, replace=True)
            self.count(flows_installed=1)
        if actions:
            dpif.execute(self.dp, Execute(upcall.packet, FlowKey({KeyAttr.IN_PORT: in_port}),
                                          actions))
        self._send_fallback(upcall.packet)

    def inject(self, dpif: Dpif, src_short: int, dst_short: int, frame: bytes,
               came_from: str) -> None:
        """A frame from the userspace fallback (on the fallback's receiving thread)."""
        self.count(fallback_received=1)
        self._begin(dpif)
        view, ports = self.view, self.ports
        if view is None or len(frame) < 14:
            self.count(dropped=1)
            return
        src_peer, dst_peer = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        if src_peer is None or dst_peer is None:
            self.count(dropped=1)
            return
        actions, _ = self._from_peer(view, ports, src_peer, dst_peer, frame[6:12], frame[0:6],
                                     came_from)
        if actions:
            # Injected as if from the datapath's own port: no container's.
            dpif.execute(self.dp, Execute(frame, FlowKey({KeyAttr.IN_PORT: 0}), actions))
        elif not self._tls.sleeve:
            self.count(dropped=1)
        self._send_fallback(frame)

    def _learn(self, mac: bytes, where: Local | Remote) -> None:
        if is_multicast(mac):
            return
        if self.macs.learn(mac, where) is not None:
            # Flows towards and from its old place are wrong now.  Weave
            # flushed every flow here; so do we, as finding the ones that
            # name this MAC would cost a dump on the miss path.
            self.count(mac_moves=1)
            dpif: Dpif = self._tls.dpif
            dpif.flush_flows(self.dp)

    def _to_peer(self, view: MeshView, ports: Ports, src: PeerName, dst: PeerName,
                 avoid_ip: str | None = None) -> list[Action] | None:
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
                actions += tunnel_to(vni(view.short_ids[src], view.short_ids[child]), ip,
                                     ports.vxlan, self.udp_port)
                continue
            ip = view.fallback_ips.get(child)
            if ip is not None:
                self._tls.sleeve.append((ip, view.short_ids[src], view.short_ids[child]))
        return actions

    def _from_local(self, view: MeshView, ports: Ports, in_port: int, src: bytes,
                    dst: bytes) -> tuple[list[Action], bool]:
        """(actions, whether to install a flow) for a frame from a container port."""
        self._learn(src, Local(in_port))
        where = None if is_multicast(dst) else self.macs.lookup(dst)
        if isinstance(where, Local):
            if where.port == in_port:
                return [], False  # hairpin
            return [Output(where.port)], True
        if isinstance(where, Remote):
            actions = self._to_peer(view, ports, view.ourself, where.peer)
            return (actions, True) if actions is not None else ([], False)
        flood: list[Action] = [Output(p) for p in sorted(ports.local) if p != in_port]
        flood += self._along_tree(view, ports, view.ourself)
        self.count(flooded=1)
        return flood, is_multicast(dst)  # a flow for real broadcasts only

    def _from_tunnel(self, view: MeshView, ports: Ports, src: bytes, dst: bytes,
                     tunnel: Tunnel) -> tuple[list[Action], bool]:
        src_short, dst_short = split_vni(tunnel.tun_id or 0)
        src_peer, dst_peer = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        if src_peer is None or dst_peer is None:
            return [], False
        came_from = (str(ipaddress.IPv4Address(tunnel.ipv4_src))
                     if tunnel.ipv4_src is not None else None)
        return self._from_peer(view, ports, src_peer, dst_peer, src, dst, came_from)

    def _from_peer(self, view: MeshView, ports: Ports, src_peer: PeerName, dst_peer: PeerName,
                   src: bytes, dst: bytes, came_from: str | None) -> tuple[list[Action], bool]:
        """A frame another peer sent (by VXLAN or fallback) from ``src_peer`` to ``dst_peer``."""
        if src_peer == view.ourself:
            return [], False  # our own frame came back: a loop
        if dst_peer != view.ourself:
            actions = self._to_peer(view, ports, src_peer, dst_peer, avoid_ip=came_from)
            if actions is None:
                return [], False
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

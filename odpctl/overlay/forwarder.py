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
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Action, Output
from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.keys import FlowKey, Tunnel
from odpctl.odp.packet import Execute, Upcall
from odpctl.odp.uapi import KeyAttr

from .flows import flowable, is_multicast, local_flow, split_vni, tunnel_flow, tunnel_to, vni
from .maccache import Local, MacCache, Remote
from .view import MeshView


@dataclass
class ForwarderStats:
    misses: int = 0
    flows_installed: int = 0
    flooded: int = 0
    relayed: int = 0
    dropped: int = 0  # no route, unknown peer, hairpin
    errors: int = 0
    mac_moves: int = 0


@dataclass(frozen=True)
class Ports:
    """The datapath's ports as the forwarder sees them (replaced, never changed)."""

    local: frozenset[int] = frozenset()
    vxlan: int | None = None


class Forwarder:
    """Shared by all miss-handler threads; each passes its own Dpif."""

    def __init__(self, dp: DpRef, macs: MacCache, udp_port: int) -> None:
        self.dp = dp
        self.macs = macs
        self.udp_port = udp_port
        self.view: MeshView | None = None
        self.ports = Ports()
        self._tls = threading.local()  # the Dpif of the thread handling a miss
        self._lock = threading.Lock()
        self.stats = ForwarderStats()

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def handle(self, dpif: Dpif, upcall: Upcall) -> None:
        self.count(misses=1)
        self._tls.dpif = dpif
        view, ports = self.view, self.ports
        key = upcall.key
        in_port, eth, eth_type = key.in_port, key.eth, key.get(KeyAttr.ETHERTYPE)
        if view is None or in_port is None or eth is None:
            self.count(dropped=1)
            return
        tunnel = key.get(KeyAttr.TUNNEL)
        from_tunnel = in_port == ports.vxlan and isinstance(tunnel, Tunnel)
        if from_tunnel:
            assert isinstance(tunnel, Tunnel)
            actions, flow_ok = self._from_tunnel(view, ports, in_port, eth.src, eth.dst, tunnel)
        elif in_port in ports.local:
            actions, flow_ok = self._from_local(view, ports, in_port, eth.src, eth.dst)
        else:
            self.count(dropped=1)
            return
        if not actions:
            self.count(dropped=1)
            return
        if flow_ok and isinstance(eth_type, int) and flowable(eth_type):
            if from_tunnel:
                assert isinstance(tunnel, Tunnel)
                flow = tunnel_flow(in_port, tunnel, eth, eth_type, actions)
            else:
                flow = local_flow(in_port, eth, eth_type, actions)
            dpif.add_flow(self.dp, flow, replace=True)
            self.count(flows_installed=1)
        dpif.execute(self.dp, Execute(upcall.packet, FlowKey({KeyAttr.IN_PORT: in_port}),
                                      actions))

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
        """Tunnel actions towards peer ``dst`` for a frame from peer ``src``."""
        hop = view.next_hops.get(dst)
        ip = view.neighbour_ips.get(hop) if hop is not None else None
        if ip is None or ports.vxlan is None or ip == avoid_ip:
            return None
        return tunnel_to(vni(view.short_ids[src], view.short_ids[dst]), ip, ports.vxlan,
                         self.udp_port)

    def _along_tree(self, view: MeshView, ports: Ports, src: PeerName) -> list[Action]:
        actions: list[Action] = []
        for child in view.broadcast.get(src, ()):
            ip = view.neighbour_ips.get(child)
            if ip is not None and ports.vxlan is not None and child in view.short_ids:
                actions += tunnel_to(vni(view.short_ids[src], view.short_ids[child]), ip,
                                     ports.vxlan, self.udp_port)
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

    def _from_tunnel(self, view: MeshView, ports: Ports, in_port: int, src: bytes,
                     dst: bytes, tunnel: Tunnel) -> tuple[list[Action], bool]:
        src_short, dst_short = split_vni(tunnel.tun_id or 0)
        src_peer, dst_peer = view.by_short_id.get(src_short), view.by_short_id.get(dst_short)
        if src_peer is None or dst_peer is None or src_peer == view.ourself:
            return [], False
        came_from = (str(ipaddress.IPv4Address(tunnel.ipv4_src))
                     if tunnel.ipv4_src is not None else None)
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

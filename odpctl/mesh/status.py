"""What a mesh node tells about itself: peers and connections as JSON, and the
control socket's commands that answer with them (the router serves these)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from odpctl.errors import UsageError

from .connection import Connection, ConnState
from .discovery import TargetState
from .names import PeerName, format_peer_name, parse_peer_name
from .routes import Routes
from .topology import Topology

if TYPE_CHECKING:
    from .node import MeshNode

# How long an inbound connection that failed stays in the status.
REFUSAL_MEMORY = 600.0


def peer_list(topology: Topology, routes: Routes, me: PeerName) -> list[dict[str, Any]]:
    """Every peer the topology knows, with its route and connections."""
    out = []
    for peer in sorted(topology.peers.values(), key=lambda p: p.name):
        hop = routes.unicast(peer.name)
        out.append(
            {
                "name": format_peer_name(peer.name),
                "nickname": peer.nickname or None,
                "short_id": peer.short_id,
                "uid": peer.uid or None,
                "version": peer.version,
                "self": peer.name == me,
                "reachable": peer.name == me or hop is not None,
                "next_hop": format_peer_name(hop) if hop is not None else None,
                "connections": [
                    {
                        "peer": format_peer_name(remote),
                        "address": c.address or None,
                        "direction": "outbound" if c.outbound else "inbound",
                        "established": c.established,
                    }
                    for remote, c in sorted(peer.connections.items())
                ],
            }
        )
    return out


def connection_list(
    conns: Iterable[Connection],
    handshaking: Iterable[Connection],
    targets: list[dict[str, Any]],
    topology: Topology,
    refusals: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Our connections, those handshaking, the targets being dialled and recent refusals."""
    now = time.monotonic()
    out: list[dict[str, Any]] = []

    def entry(**kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = dict.fromkeys(
            (
                "address",
                "peer",
                "nickname",
                "direction",
                "state",
                "overlay",
                "reason",
                "encrypted",
                "protocol",
                "retry_in",
                "since",
            ),
        )
        base.update(kw)
        return base

    for conn in sorted(conns, key=lambda c: c.remote_name or 0):
        assert conn.remote is not None
        overlay = conn.overlay.status() if conn.overlay is not None else None
        reason = None
        if conn.state != ConnState.ESTABLISHED:
            reason = overlay.reason if overlay and overlay.reason else "waiting for the overlay"
        elif overlay is not None and not overlay.healthy:
            reason = overlay.reason
        out.append(
            entry(
                address=conn.remote_listen_address or conn.address,
                peer=format_peer_name(conn.remote.name),
                nickname=conn.remote.nickname or None,
                direction="outbound" if conn.outbound else "inbound",
                state=conn.state.value,
                overlay=(overlay.name or None) if overlay else None,
                reason=reason,
                encrypted=conn.encrypted,
                protocol=conn.version,
                since=round(now - (conn.established_at or conn.created), 1),
            )
        )
    dialing = set()
    # A retry in its handshake still shows why the attempt before it failed.
    last_errors = {t["address"]: t["last_error"] for t in targets if t["last_error"]}
    for conn in sorted(handshaking, key=lambda c: c.address):
        dialing.add(conn.address)
        last_error = last_errors.get(conn.address) if conn.outbound else None
        out.append(
            entry(
                address=conn.address,
                peer=format_peer_name(conn.remote.name) if conn.remote else None,
                nickname=conn.remote.nickname if conn.remote else None,
                direction="outbound" if conn.outbound else "inbound",
                state=ConnState.HANDSHAKE.value,
                reason=f"last attempt: {last_error}" if last_error else None,
                encrypted=conn.encrypted,
                since=round(now - conn.created, 1),
            )
        )
    for target in targets:
        if target["state"] == TargetState.CONNECTED or target["address"] in dialing:
            continue
        peer = target["peer"]
        known = topology.get(parse_peer_name(peer)) if peer else None
        out.append(
            entry(
                address=target["address"],
                peer=peer,
                nickname=(known.nickname or None) if known else None,
                direction="outbound",
                state=target["state"],
                reason=target["last_error"],
                retry_in=target["retry_in"],
            )
        )
    for refusal in list(refusals):
        age = now - refusal["at"]
        if age > REFUSAL_MEMORY:
            continue
        out.append(
            entry(
                address=refusal["address"],
                peer=format_peer_name(refusal["peer"]) if refusal["peer"] is not None else None,
                nickname=refusal["nickname"],
                direction="inbound",
                state="refused",
                reason=refusal["reason"],
                since=round(age, 1),
            )
        )
    return out


def control_handlers(node: MeshNode) -> dict[str, Any]:
    """The control socket's commands that the mesh answers."""

    def status(_request: dict[str, Any]) -> Any:
        return node.status()

    def peers(_request: dict[str, Any]) -> Any:
        return node.peers_status()

    def connect(request: dict[str, Any]) -> Any:
        return {"addresses": node.connect(_addresses(request))}

    def forget(request: dict[str, Any]) -> Any:
        return {"addresses": node.forget(_addresses(request))}

    return {"status": status, "peers": peers, "connect": connect, "forget": forget}


def _addresses(request: dict[str, Any]) -> list[str]:
    addresses = request.get("addresses")
    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
        raise UsageError('expected "addresses": a list of HOST[:PORT] strings')
    return addresses

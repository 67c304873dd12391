"""The mesh as a graph, for `odpctl peer graph`: hosts, their containers, connections.

Built from what the router says (`status`, `peers`) and from its datapath:
each connection's traffic rate is the growth of the bytes of the flows that
tunnel to that peer's address (out) and come from it (in), over a short
interval.  Only this router's own connections have an overlay, a round trip
and rates; the others are known from the topology the peers gossip.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from odpctl.odp.actions import Set
from odpctl.odp.dpif import Dpif
from odpctl.odp.uapi import KeyAttr


@dataclass
class Host:
    name: str
    nickname: str | None
    short_id: int | None
    is_self: bool
    reachable: bool
    containers: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.nickname or self.name


@dataclass
class Link:
    a: str
    b: str
    state: str  # established, or the attempt's state; "gossiped" between other peers
    overlay: str | None = None
    reason: str | None = None
    rtt_ms: float | None = None
    out_rate: float | None = None  # bytes/s from a to b, through the fast path
    in_rate: float | None = None


@dataclass
class MeshGraph:
    hosts: dict[str, Host]
    links: list[Link]


def build(
    status: dict[str, Any], peers: dict[str, Any], rates: dict[str, tuple[float, float]]
) -> MeshGraph:
    """The graph from the router's ``status`` and ``peers`` answers, with
    ``rates`` (peer IP -> bytes/s out, in) for its own connections."""
    me = peers.get("self") or status.get("name") or "?"
    hosts = {
        p["name"]: Host(
            p["name"],
            p.get("nickname"),
            p.get("short_id"),
            bool(p.get("self")),
            bool(p.get("reachable")),
        )
        for p in peers.get("peers", [])
    }
    if me not in hosts:
        hosts[me] = Host(me, status.get("nickname"), status.get("short_id"), True, True)
    router = status.get("router") or {}
    _containers(hosts, me, router)
    beats = status.get("overlay", {}).get("fastdp", {}).get("connections", {})
    links: list[Link] = []
    mine: set[frozenset[str]] = set()
    for conn in router.get("connections", peers.get("connections", [])):
        other = conn.get("peer") or conn.get("address") or "?"
        if other not in hosts:
            hosts[other] = Host(other, conn.get("nickname"), None, False, False)
        ip = str(conn.get("address", "")).rpartition(":")[0]
        # The fallback's traffic goes through no flow: rates of the fast path only.
        out_rate, in_rate = (
            rates.get(ip, (0.0, 0.0)) if conn.get("overlay") == "fastdp" else (None, None)
        )
        beat = beats.get(other.replace(":", ""), {})
        links.append(
            Link(
                me,
                other,
                conn.get("state") or "?",
                conn.get("overlay"),
                conn.get("reason"),
                beat.get("rtt_ms"),
                out_rate,
                in_rate,
            )
        )
        mine.add(frozenset((me, other)))
    for p in peers.get("peers", []):
        for c in p.get("connections", []):
            pair = frozenset((p["name"], c["peer"]))
            if len(pair) == 2 and pair not in mine and c["peer"] in hosts:
                mine.add(pair)
                links.append(
                    Link(p["name"], c["peer"], "gossiped" if c.get("established") else "connecting")
                )
    return MeshGraph(hosts, links)


def _containers(hosts: dict[str, Host], me: str, router: dict[str, Any]) -> None:
    macs = router.get("macs", {})
    by_port = macs.get("ports", {})
    for iface, port in sorted(router.get("datapath", {}).get("ifaces", {}).items()):
        learned = by_port.get(str(port), [])
        hosts[me].containers.append(f"{iface} {' '.join(learned)}".strip())
    for peer, learned in sorted(macs.get("peers", {}).items()):
        if peer in hosts:
            hosts[peer].containers.extend(learned)


def tunnel_rates(dpif: Dpif, dp: str, interval: float) -> dict[str, tuple[float, float]]:
    """Peer IP -> (bytes/s tunnelled to it, bytes/s from it), over ``interval``."""
    first = _tunnel_bytes(dpif, dp)
    start = time.monotonic()
    time.sleep(interval)
    second = _tunnel_bytes(dpif, dp)
    dt = time.monotonic() - start
    rates = {}
    for ip in {*first, *second}:
        (o0, i0), (o1, i1) = first.get(ip, (0, 0)), second.get(ip, (0, 0))
        # A flow that expired in between takes its bytes with it: never below 0.
        rates[ip] = (max(0, o1 - o0) / dt, max(0, i1 - i0) / dt)
    return rates


def _tunnel_bytes(dpif: Dpif, dp: str) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for flow in dpif.dump_flows(dp):
        tunnel = flow.key.tunnel
        if tunnel is not None and tunnel.ipv4_src is not None:
            out.setdefault(str(ipaddress.IPv4Address(tunnel.ipv4_src)), [0, 0])[1] += flow.bytes
        for action in flow.actions:
            if (
                isinstance(action, Set)
                and action.kind == KeyAttr.TUNNEL
                and getattr(action.value, "ipv4_dst", None) is not None
            ):
                ip = str(ipaddress.IPv4Address(action.value.ipv4_dst))
                out.setdefault(ip, [0, 0])[0] += flow.bytes
    return {ip: (o, i) for ip, (o, i) in out.items()}

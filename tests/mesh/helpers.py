"""Building topologies for the mesh's unit tests."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.peer import ESTABLISHED, OUTBOUND, Peer
from odpctl.mesh.routes import Routes
from odpctl.mesh.topology import Topology, decode_payload

# peer -> remote -> established
Graph = dict[PeerName, dict[PeerName, bool]]


def name(i: int) -> PeerName:
    """Test peer names in a scrambled order, so that name order is not creation order."""
    return PeerName((i * 0x9E3779B97F4A7C15 + 0x1234) % (1 << 48))


def undirected(n: int, edges: Iterable[tuple[int, int]], established: bool = True) -> Graph:
    graph: Graph = {name(i): {} for i in range(n)}
    for a, b in edges:
        graph[name(a)][name(b)] = established
        graph[name(b)][name(a)] = established
    return graph


def line(n: int) -> Graph:
    return undirected(n, [(i, i + 1) for i in range(n - 1)])


def ring(n: int) -> Graph:
    return undirected(n, [(i, (i + 1) % n) for i in range(n)])


def star(n: int) -> Graph:
    return undirected(n, [(0, i) for i in range(1, n)])


def full(n: int) -> Graph:
    return undirected(n, [(a, b) for a in range(n) for b in range(a + 1, n)])


def random_connected(n: int, extra: int, seed: int) -> Graph:
    """A random tree plus ``extra`` random edges: connected, with cycles."""
    rng = random.Random(seed)
    edges = {(rng.randrange(i), i) for i in range(1, n)}
    while extra > 0 and n > 2:
        a, b = rng.sample(range(n), 2)
        if (a, b) not in edges and (b, a) not in edges:
            edges.add((a, b))
            extra -= 1
    return undirected(n, edges)


def peer(n: PeerName, conns: Mapping[PeerName, bool], version: int = 1) -> Peer:
    return Peer(
        n,
        f"n{n % 1000}",
        PeerUID(n % 997 + 1),
        version,
        ShortID(n % 4096),
        {
            r: (f"10.0.0.{r % 250}:6783", OUTBOUND | (ESTABLISHED if est else 0))
            for r, est in conns.items()
        },
    )


def topology_of(me: PeerName, graph: Graph, order: list[PeerName] | None = None) -> Topology:
    """``me``'s topology holding every entry of ``graph``, applied as an update off the wire."""
    source = Topology(peer(me, graph[me]))
    for n in graph:
        if n != me:
            source.peers[n] = peer(n, graph[n])
    topology = Topology(peer(me, graph[me]))
    names = [n for n in (order or list(graph)) if n != me]
    for payload in source.encode_update(names):
        _, entries = decode_payload(payload)
        topology.apply_update(entries)
    return topology


def routes_of(me: PeerName, graph: Graph, order: list[PeerName] | None = None) -> Routes:
    routes = Routes(topology_of(me, graph, order), me)
    routes.ensure()
    return routes


def distances(graph: Graph, src: PeerName, symmetric: bool = True) -> dict[PeerName, int]:
    """Reference BFS hop counts over established connections both ends report."""
    dist = {src: 0}
    frontier = [src]
    while frontier:
        following = []
        for v in frontier:
            for w, est in graph[v].items():
                ok = est and graph.get(w, {}).get(v, False) if symmetric else True
                if ok and w not in dist:
                    dist[w] = dist[v] + 1
                    following.append(w)
        frontier = following
    return dist

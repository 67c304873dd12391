"""Routes on generated topologies: unicast next hops and per-source broadcast trees."""

from __future__ import annotations

import math
import random

import pytest

from odpctl.mesh.names import PeerName
from odpctl.mesh.peer import ConnectionSummary
from odpctl.mesh.routes import Routes

from .helpers import (
    Graph,
    distances,
    full,
    line,
    name,
    random_connected,
    ring,
    routes_of,
    star,
    topology_of,
    undirected,
)

TOPOLOGIES = {
    "line": line(9),
    "ring": ring(10),
    "ring-even": ring(8),
    "star": star(12),
    "full": full(7),
    "random-sparse": random_connected(30, 5, seed=1),
    "random-dense": random_connected(25, 60, seed=2),
    "random-big": random_connected(120, 150, seed=3),
    "two": line(2),
    "alone": line(1),
}


def all_routes(graph: Graph) -> dict[PeerName, Routes]:
    return {n: routes_of(n, graph) for n in graph}


@pytest.mark.parametrize("kind", list(TOPOLOGIES))
def test_unicast_next_hops_follow_shortest_paths(kind: str) -> None:
    graph = TOPOLOGIES[kind]
    routes = all_routes(graph)
    for src in graph:
        dist = distances(graph, src)
        assert routes[src].reachable() == set(dist)
        for dst in graph:
            if dst == src:
                assert routes[src].unicast(dst) is None
                continue
            # Hop by hop, each peer using its own routes: a shortest path.
            hops, at = 0, src
            while at != dst:
                nxt = routes[at].unicast(dst)
                assert nxt is not None and nxt in graph[at], (at, dst)
                at = nxt
                hops += 1
            assert hops == dist[dst]


@pytest.mark.parametrize("kind", list(TOPOLOGIES))
def test_broadcast_trees_cover_every_peer_exactly_once(kind: str) -> None:
    graph = TOPOLOGIES[kind]
    routes = all_routes(graph)
    for src in graph:
        received = {n: 0 for n in graph}
        queue = [src]
        while queue:
            at = queue.pop()
            for child in routes[at].broadcast(src):
                assert child in graph[at], "forwarded to a non-neighbour"
                received[child] += 1
                queue.append(child)
        assert received.pop(src) == 0
        assert set(received.values()) <= {1}, f"from {src}: {received}"
        assert all(v == 1 for v in received.values())


def test_every_peer_computes_the_same_tree_whatever_order_it_learnt_entries_in() -> None:
    graph = random_connected(40, 30, seed=4)
    names = list(graph)
    rng = random.Random(5)
    for src in names[:5]:
        children = {}
        for me in names:
            order = names[:]
            rng.shuffle(order)
            children[me] = routes_of(me, graph, order).broadcast(src)
        # The union of everyone's children is a tree rooted at src: each
        # peer but src appears as exactly one peer's child.
        flat = [c for cs in children.values() for c in cs]
        assert sorted(flat) == sorted(n for n in names if n != src)


def test_broadcast_tree_is_breadth_first_with_lowest_named_parents() -> None:
    # A square: root 0, its neighbours 1 and 2, both connected to 3.  Peer 3's
    # parent is whichever of 1 and 2 has the lower name.
    graph = undirected(4, [(0, 1), (0, 2), (1, 3), (2, 3)])
    lower, higher = sorted((name(1), name(2)))
    assert routes_of(lower, graph).broadcast(name(0)) == [name(3)]
    assert routes_of(higher, graph).broadcast(name(0)) == []
    assert sorted(routes_of(name(0), graph).broadcast(name(0))) == sorted((name(1), name(2)))


def test_only_established_symmetric_connections_carry_data() -> None:
    graph = line(3)
    a, b, c = name(0), name(1), name(2)
    graph[b][c] = False  # b reports the b-c connection not established yet
    routes = routes_of(a, graph)
    assert routes.unicast(b) == b
    assert routes.unicast(c) is None  # not symmetric and established
    assert routes.unicast_all(c) == b  # gossip still flows
    assert c not in routes.reachable() and c in routes.reachable_all()
    del graph[c][b]  # c does not report it at all
    routes = routes_of(a, graph)
    assert routes.unicast(c) is None
    assert routes.broadcast(a) == [b] and routes_of(b, graph).broadcast(a) == []


def test_incremental_updates_match_a_fresh_computation() -> None:
    rng = random.Random(6)
    graph = random_connected(25, 20, seed=7)
    me = name(0)
    topology = topology_of(me, graph)
    routes = Routes(topology, me)
    routes.ensure()
    for _ in range(150):
        # Our own connections change, as the node changes them...
        other = rng.choice([n for n in graph if n != me])
        if other in topology.ourself.conns and rng.random() < 0.5:
            topology.remove_connection(other)
            graph[me].pop(other, None)
        else:
            est = rng.random() < 0.8
            topology.set_connection(other, ConnectionSummary("", True, est))
            graph[me][other] = est
        # ... and so do others' (applied as updates would be).
        a, b = rng.sample(list(graph), 2)
        if a != me:
            graph[a][b] = rng.random() < 0.8
            fresh = topology_of(me, graph)
            entry = fresh.peers[a]
            entry.version = topology.peers[a].version + 1 if a in topology.peers else 1
            topology.peers[a] = entry
            topology._changed(a)
        expected = routes_of(me, graph)
        for dst in graph:
            assert routes.unicast(dst) == expected.unicast(dst)
            assert routes.unicast_all(dst) == expected.unicast_all(dst)
        for src in rng.sample(list(graph), 3):
            assert sorted(routes.broadcast(src)) == sorted(expected.broadcast(src))
            assert sorted(routes.broadcast_all(src)) == sorted(expected.broadcast_all(src))


def test_change_callbacks_run_once_per_settled_change() -> None:
    graph = line(3)
    me = name(0)
    topology = topology_of(me, graph)
    routes = Routes(topology, me)
    calls = []
    routes.on_change(lambda: calls.append(routes.generation))
    routes.notify()
    assert len(calls) == 1
    routes.notify()
    assert len(calls) == 1  # nothing changed
    topology.set_connection(name(2), ConnectionSummary("", True, True))
    assert routes.unicast_all(name(2)) == name(2)  # lookups apply changes, not callbacks
    assert len(calls) == 1
    routes.notify()
    assert len(calls) == 2


@pytest.mark.parametrize(("n", "kind"), [(2, line), (9, star), (64, full), (30, ring)])
def test_random_neighbours_size(n: int, kind: object) -> None:
    graph = kind(n)  # type: ignore[operator]
    me = name(0)
    routes = routes_of(me, graph)
    neighbours = routes.random_neighbours()
    expected = min(int(2 * math.log2(max(n, 2))), len(graph[me]))
    assert len(neighbours) == expected
    assert set(neighbours) <= set(graph[me])
    assert name(1) not in routes.random_neighbours(exclude=name(1))


def test_random_neighbours_favour_bottlenecks() -> None:
    # We reach 20 peers through one neighbour and 1 through each of 10 others.
    edges = [(0, i) for i in range(1, 12)] + [(1, 100 + i) for i in range(20)]
    graph = undirected(121, edges)
    graph = {n: c for n, c in graph.items() if c}
    routes = routes_of(name(0), graph)
    picks = sum(name(1) in routes.random_neighbours() for _ in range(200))
    assert picks > 190

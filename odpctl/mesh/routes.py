"""Routes: unicast next hops and per-source broadcast trees, by breadth-first search.

Both are deterministic functions of the topology: adjacency lists are sorted
by name and the search visits them in order, so every peer that holds the
same topology computes the same routes and the same trees.  That is what
makes broadcasts work without loops or duplicates: for a broadcast from S,
each peer forwards to its children on *S's* breadth-first tree, which every
peer computes alike, so each peer receives it exactly once.

Two graphs:

- established and symmetric: a connection counts only if both ends report it
  and both say it is established (the overlay works both ways).  For data.
- all: every connection any peer reports.  For gossip, which must flow while
  connections are still coming up, and for garbage collection.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping

from .names import PeerName
from .peer import Peer

Adjacency = dict[PeerName, list[PeerName]]
# next hop per destination; None for the source itself
NextHops = dict[PeerName, PeerName | None]
# parent per peer on a tree; None for the root
Parents = dict[PeerName, PeerName | None]


def symmetric_adjacency(peers: Mapping[PeerName, Peer]) -> Adjacency:
    """Edges that both ends report as established."""
    adj: Adjacency = {}
    for name, peer in peers.items():
        hops = []
        for remote, conn in peer.connections.items():
            if not conn.established:
                continue
            other = peers.get(remote)
            if other is None:
                continue
            back = other.connections.get(name)
            if back is not None and back.established:
                hops.append(remote)
        hops.sort()
        adj[name] = hops
    return adj


def directed_adjacency(peers: Mapping[PeerName, Peer]) -> Adjacency:
    """Every connection each peer reports, whatever its state."""
    return {
        name: sorted(remote for remote in peer.connections if remote in peers)
        for name, peer in peers.items()
    }


def bfs_parents(adj: Mapping[PeerName, list[PeerName]], root: PeerName) -> Parents:
    """The breadth-first tree from ``root``: each reached peer's parent.

    A peer's parent is the first peer, in visiting order, that reaches it; the
    order is fixed by the sorted adjacency lists, so the tree is too.
    """
    parents: Parents = {root: None}
    frontier = [root]
    while frontier:
        following = []
        for cur in frontier:
            for nxt in adj.get(cur, ()):
                if nxt not in parents:
                    parents[nxt] = cur
                    following.append(nxt)
        frontier = following
    return parents


def unicast_next_hops(adj: Mapping[PeerName, list[PeerName]], source: PeerName) -> NextHops:
    """For each reachable peer, the neighbour of ``source`` to send through."""
    hops: NextHops = {source: None}
    frontier = [source]
    while frontier:
        following = []
        for cur in frontier:
            via = hops[cur]
            for nxt in adj.get(cur, ()):
                if nxt not in hops:
                    hops[nxt] = nxt if via is None else via
                    following.append(nxt)
        frontier = following
    return hops


def broadcast_next_hops(
    adj: Mapping[PeerName, list[PeerName]], root: PeerName, ourself: PeerName
) -> list[PeerName]:
    """Where ``ourself`` forwards a broadcast from ``root``: its children on root's tree."""
    parents = bfs_parents(adj, root)
    if ourself not in parents:
        return []
    return [peer for peer, parent in parents.items() if parent == ourself]


class Routes:
    """The routes of one peer, recomputed from its topology when told to.

    The node invalidates them on every topology change and recomputes them
    (`ensure`) once changes settle; lookups between the two see the previous
    routes, which is what they would have seen a moment earlier anyway.
    `notify` runs the change callbacks (the router revalidates its flows)
    if anything changed since the last call.
    """

    def __init__(self, peers: Mapping[PeerName, Peer], ourself: PeerName) -> None:
        self._peers = peers
        self.ourself = ourself
        self._dirty = True
        self._changed = False
        self.generation = 0  # grows with each change
        self._adj: Adjacency = {}
        self._adj_all: Adjacency = {}
        self._unicast: NextHops = {ourself: None}
        self._unicast_all: NextHops = {ourself: None}
        self._broadcast: dict[PeerName, list[PeerName]] = {}
        self._broadcast_all: dict[PeerName, list[PeerName]] = {}
        self._callbacks: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def invalidate(self) -> None:
        self._dirty = True

    def ensure(self) -> bool:
        """Recompute if invalidated; True if the routes changed."""
        if not self._dirty:
            return False
        self._dirty = False
        adj = symmetric_adjacency(self._peers)
        adj_all = directed_adjacency(self._peers)
        if adj == self._adj and adj_all == self._adj_all:
            return False
        self._adj, self._adj_all = adj, adj_all
        self._unicast = unicast_next_hops(adj, self.ourself)
        self._unicast_all = unicast_next_hops(adj_all, self.ourself)
        # Trees of other sources are computed when a broadcast from them comes.
        self._broadcast = {}
        self._broadcast_all = {}
        self._changed = True
        self.generation += 1
        return True

    def notify(self) -> None:
        self.ensure()
        if self._changed:
            self._changed = False
            for callback in self._callbacks:
                callback()

    # --- lookups ------------------------------------------------------------

    def unicast(self, dst: PeerName) -> PeerName | None:
        """Next hop to ``dst`` over established symmetric connections (None: no route)."""
        return self._unicast.get(dst)

    def unicast_all(self, dst: PeerName) -> PeerName | None:
        """Next hop to ``dst`` over all connections (None: no route)."""
        return self._unicast_all.get(dst)

    def broadcast(self, src: PeerName) -> list[PeerName]:
        """Our children on ``src``'s tree of established symmetric connections."""
        hops = self._broadcast.get(src)
        if hops is None:
            hops = self._broadcast[src] = broadcast_next_hops(self._adj, src, self.ourself)
        return hops

    def broadcast_all(self, src: PeerName) -> list[PeerName]:
        """Our children on ``src``'s tree of all connections (gossip)."""
        hops = self._broadcast_all.get(src)
        if hops is None:
            hops = self._broadcast_all[src] = broadcast_next_hops(self._adj_all, src, self.ourself)
        return hops

    def reachable(self) -> set[PeerName]:
        """Peers reachable over established symmetric connections, ourselves included."""
        return set(self._unicast)

    def reachable_all(self) -> set[PeerName]:
        return set(self._unicast_all)

    def unicast_table(self) -> NextHops:
        return dict(self._unicast)

    def random_neighbours(self, exclude: PeerName | None = None) -> list[PeerName]:
        """min(2·log2(peers), neighbours) neighbours, at random, favouring bottlenecks.

        A neighbour through which we reach many peers is more likely to be
        picked: if it is the only way to half the mesh, gossip must go there.
        """
        weights = Counter(
            hop for hop in self._unicast_all.values() if hop is not None and hop != exclude
        )
        if not weights:
            return []
        needed = min(int(2 * math.log2(max(len(self._unicast_all), 2))), len(weights))
        # Weighted sampling without replacement (Efraimidis-Spirakis keys).
        keyed = sorted(weights, key=lambda n: random.random() ** (1.0 / weights[n]), reverse=True)
        return keyed[:needed]

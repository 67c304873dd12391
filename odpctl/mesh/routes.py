"""Routes: unicast next hops and per-source broadcast trees, by breadth-first search.

The search is deterministic: it goes level by level from the source, and
within a level visits peers in ascending name order; a peer's parent is the
first peer of the previous level (the lowest-named) connected to it.  So
every peer that holds the same topology computes the same routes and the
same trees, and that is what makes broadcasts work without loops or
duplicates: for a broadcast from S, each peer forwards to its children on
*S's* tree, which every peer computes alike, so each peer receives it once.

Two graphs:

- established and symmetric: a connection counts only if both ends report it
  and both say it is established (the overlay works both ways).  For data.
- all: every connection any peer reports (an edge from the reporter).  For
  gossip, which must flow while connections come up, and for deciding which
  peers are still reachable.

A router asks for the tree of every source whose broadcasts it relays, and
the topology changes often while a mesh forms, so the graphs are kept as bit
masks over peer slots, updated entry by entry as entries change: a search is
then a handful of integer operations per level, where walking adjacency
lists costs a dict lookup per edge.  In a full mesh of 100 peers that is
the difference between microseconds and milliseconds, per source, per change.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol

from .names import PeerName
from .peer import ESTABLISHED, Peer


class TopologyView(Protocol):
    """What routes need of the topology."""

    @property
    def peers(self) -> Mapping[PeerName, Peer]: ...

    def take_changes(self) -> dict[PeerName, set[PeerName] | None]: ...


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``, ascending."""
    if mask.bit_count() > 16:
        # Dense: let C walk the bits (as a string of 0s and 1s, lowest first).
        return [i for i, c in enumerate(bin(mask)[:1:-1]) if c == "1"]
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class Routes:
    """The routes of one peer, kept up to date with its topology.

    Every lookup first applies the topology's pending changes (cheap: only
    the changed entries are looked at), so a broadcast relayed a moment
    after an update goes along the tree that update implies; relaying along
    a stale tree is how broadcasts get lost while a mesh forms.  The change
    callbacks (the router revalidates its flows) run from `notify`, which
    the node calls once changes settle, not from within a lookup.
    """

    def __init__(self, topology: TopologyView, ourself: PeerName) -> None:
        self._topology = topology
        self.ourself = ourself
        self.generation = 0  # grows with each change of the routes
        self._changed = False
        self._callbacks: list[Callable[[], None]] = []
        # Slots: a bit position per peer named anywhere (with an entry or
        # only mentioned in others'); freed when nothing names it any more.
        self._slot: dict[PeerName, int] = {}
        self._names: list[PeerName] = []
        self._free: list[int] = []
        self._out_all: list[int] = []  # peers each one reports a connection to
        self._out_est: list[int] = []  # ... an established connection to
        self._in_all: list[int] = []  # peers that report a connection to each one
        self._in_est: list[int] = []
        self._sym: list[int] = []  # established both ways: out_est & in_est
        self._stale = False  # next hops not computed since the graph changed
        self._unicast: dict[PeerName, PeerName | None] = {ourself: None}
        self._unicast_all: dict[PeerName, PeerName | None] = {ourself: None}
        self._broadcast: dict[PeerName, list[PeerName]] = {}
        self._broadcast_all: dict[PeerName, list[PeerName]] = {}

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    # --- keeping the graphs ---------------------------------------------------

    def _slot_of(self, name: PeerName) -> int:
        slot = self._slot.get(name)
        if slot is None:
            if self._free:
                slot = self._free.pop()
                self._names[slot] = name
            else:
                slot = len(self._names)
                self._names.append(name)
                for masks in (self._out_all, self._out_est, self._in_all, self._in_est, self._sym):
                    masks.append(0)
            self._slot[name] = slot
        return slot

    def _update_remotes(
        self, slot: int, peer: Peer, remotes: set[PeerName], maybe_free: set[int]
    ) -> bool:
        """Update one peer's masks for some of its connections; True if they changed."""
        me = 1 << slot
        changed = False
        for remote in remotes:
            link = peer.conns.get(remote)
            other = self._slot_of(remote) if link is not None else self._slot.get(remote)
            if other is None:
                continue  # gone, and never had a slot: nothing to clear
            bit = 1 << other
            for want, out, into in (
                (link is not None, self._out_all, self._in_all),
                (link is not None and bool(link[1] & ESTABLISHED), self._out_est, self._in_est),
            ):
                if bool(out[slot] & bit) != want:
                    out[slot] ^= bit
                    into[other] ^= me
                    changed = True
                    maybe_free.add(other)
        return changed

    def _update_peer(
        self,
        name: PeerName,
        peer: Peer | None,
        remotes: set[PeerName] | None,
        maybe_free: set[int],
    ) -> bool:
        """Bring one peer's masks up to date with its entry; True if they changed."""
        slot = self._slot_of(name)
        maybe_free.add(slot)
        if peer is not None and remotes is not None:
            return self._update_remotes(slot, peer, remotes, maybe_free)
        new_all = new_est = 0
        if peer is not None:
            slot_of = self._slot_of
            for remote, (_, f) in peer.conns.items():
                bit = 1 << slot_of(remote)
                new_all |= bit
                if f & ESTABLISHED:
                    new_est |= bit
        me = 1 << slot
        changed = False
        for old, new, out, into in (
            (self._out_all[slot], new_all, self._out_all, self._in_all),
            (self._out_est[slot], new_est, self._out_est, self._in_est),
        ):
            if old == new:
                continue
            changed = True
            out[slot] = new
            for other in _bits(old ^ new):
                into[other] ^= me
                maybe_free.add(other)
        return changed

    def _release(self, slot: int) -> None:
        """Free a slot nothing refers to any more."""
        name = self._names[slot]
        del self._slot[name]
        self._free.append(slot)

    def ensure(self) -> bool:
        """Apply the topology's changes; True if the routes changed."""
        changes = self._topology.take_changes()
        if not changes:
            return False
        peers = self._topology.peers
        maybe_free: set[int] = set()
        graph_changed = False
        for name, remotes in changes.items():
            graph_changed |= self._update_peer(name, peers.get(name), remotes, maybe_free)
        for slot in maybe_free:
            name = self._names[slot]
            if (
                self._slot.get(name) == slot
                and name not in peers
                and not self._in_all[slot]
                and not self._out_all[slot]
            ):
                self._release(slot)
        if not graph_changed:
            return False  # entries changed, connections did not (or not yet)
        # Next hops and trees are computed when asked for: a mesh that forms
        # changes the graph with every message, and is asked for a tree or
        # two in between.  Any edge may move a parent, so all trees go.
        self._stale = True
        self._broadcast = {}
        self._broadcast_all = {}
        self._changed = True
        self.generation += 1
        return True

    def _fresh(self) -> None:
        """Changes applied and next hops computed."""
        self.ensure()
        if self._stale:
            self._stale = False
            self._sym = [o & i for o, i in zip(self._out_est, self._in_est, strict=True)]
            self._unicast = self._next_hops(self._sym)
            self._unicast_all = self._next_hops(self._out_all)

    def notify(self) -> None:
        """Apply changes; run the callbacks if the routes changed since the last call."""
        self._fresh()
        if self._changed:
            self._changed = False
            for callback in self._callbacks:
                callback()

    # --- searches ---------------------------------------------------------------

    def _by_name(self, mask: int) -> list[int]:
        return sorted(_bits(mask), key=self._names.__getitem__)

    def _next_hops(self, adj: list[int]) -> dict[PeerName, PeerName | None]:
        root = self._slot.get(self.ourself)
        if root is None:
            return {self.ourself: None}
        names = self._names
        hops: dict[int, int] = {root: -1}
        visited = 1 << root
        frontier = [root]
        while frontier:
            found = 0
            for v in frontier:
                new = adj[v] & ~visited
                if not new:
                    continue
                visited |= new
                found |= new
                via = hops[v]
                for w in _bits(new):
                    hops[w] = w if via < 0 else via
            frontier = self._by_name(found)
        return {names[w]: (names[h] if h >= 0 else None) for w, h in hops.items()}

    def _children(self, adj: list[int], src: PeerName) -> list[PeerName]:
        """Our children on ``src``'s tree: where we forward its broadcasts.

        No sorting needed: a level is the union of the previous level's
        neighbours, whatever order they are visited in; and our children
        are our neighbours first reached at the next level, less those a
        lower-named peer of our level reaches too (it is their parent).
        In a dense mesh that is nothing, found in a few operations.
        """
        root = self._slot.get(src)
        me = self._slot.get(self.ourself)
        if root is None or me is None:
            return []
        names = self._names
        visited = level = 1 << root
        my_bit = 1 << me
        while level:
            if level & my_bit:
                children = adj[me] & ~visited
                if children:
                    mine = names[me]
                    for v in _bits(level):
                        if names[v] < mine:
                            children &= ~adj[v]
                            if not children:
                                break
                return [names[w] for w in self._by_name(children)]
            following = 0
            for v in _bits(level):
                following |= adj[v]
            level = following & ~visited
            visited |= level
        return []

    # --- lookups ------------------------------------------------------------

    def unicast(self, dst: PeerName) -> PeerName | None:
        """Next hop to ``dst`` over established symmetric connections (None: no route)."""
        self._fresh()
        return self._unicast.get(dst)

    def unicast_all(self, dst: PeerName) -> PeerName | None:
        """Next hop to ``dst`` over all connections (None: no route)."""
        self._fresh()
        return self._unicast_all.get(dst)

    def broadcast(self, src: PeerName) -> list[PeerName]:
        """Our children on ``src``'s tree of established symmetric connections."""
        self._fresh()
        hops = self._broadcast.get(src)
        if hops is None:
            hops = self._broadcast[src] = self._children(self._sym, src)
        return hops

    def broadcast_all(self, src: PeerName) -> list[PeerName]:
        """Our children on ``src``'s tree of all connections (gossip)."""
        self.ensure()
        hops = self._broadcast_all.get(src)
        if hops is None:
            hops = self._broadcast_all[src] = self._children(self._out_all, src)
        return hops

    def reachable(self) -> set[PeerName]:
        """Peers reachable over established symmetric connections, ourselves included."""
        self._fresh()
        return set(self._unicast)

    def reachable_all(self) -> set[PeerName]:
        self._fresh()
        return set(self._unicast_all)

    def unicast_table(self) -> dict[PeerName, PeerName | None]:
        self._fresh()
        return dict(self._unicast)

    def random_neighbours(self, exclude: PeerName | None = None) -> list[PeerName]:
        """min(2·log2(peers), neighbours) neighbours, at random, favouring bottlenecks.

        A neighbour through which we reach many peers is more likely to be
        picked: if it is the only way to half the mesh, gossip must go there.
        """
        self._fresh()
        weights = Counter(
            hop for hop in self._unicast_all.values() if hop is not None and hop != exclude
        )
        if not weights:
            return []
        needed = min(int(2 * math.log2(max(len(self._unicast_all), 2))), len(weights))
        # Weighted sampling without replacement (Efraimidis-Spirakis keys); a spread of
        # gossip, not a secret: random is the right generator (S311).
        keyed = sorted(weights, key=lambda n: random.random() ** (1.0 / weights[n]), reverse=True)  # noqa: S311
        return keyed[:needed]

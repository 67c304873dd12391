"""Gossip channels: how subsystems (the topology, the router's own state) talk.

The shapes are mesh's (Gossiper, GossipData): a subsystem registers a named
channel with a `Gossiper`, which merges what arrives into its state and says
what was new; the channel carries its `GossipData` three ways:

- unicast: to one peer, relayed hop by hop along unicast routes;
- broadcast: to every peer, each relaying to its children on the spanning
  tree rooted at the originator, so each peer gets it once;
- gossip: to neighbours (a random subset, periodically, or one given
  neighbour), who merge it and pass on only what was news to them.

Data waiting for a busy connection is merged with what comes next
(`GossipData.merge`), so a slow neighbour gets the latest state, not a
backlog.  A channel's name unknown here is relayed blindly for broadcasts
(the peers downstream may know it) and dropped otherwise.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .errors import NoRouteError
from .names import PeerName, format_peer_name
from .routes import Routes
from .wire import Broadcast, Gossip, Message, Unicast

log = logging.getLogger("odpctl.mesh")


class GossipData(Protocol):
    """A mergeable piece of state to send (think: a log-structured delta)."""

    def encode(self) -> list[bytes]:
        """One or more payloads; each becomes one message."""
        ...

    def merge(self, other: GossipData) -> GossipData:
        """This data and ``other`` combined (may return self, updated)."""
        ...


class Gossiper(Protocol):
    """The receiving side of a channel: a subsystem's state."""

    def on_gossip_unicast(self, src: PeerName, msg: bytes) -> None:
        """A unicast message from ``src``."""
        ...

    def on_gossip_broadcast(self, src: PeerName, update: bytes) -> GossipData | None:
        """Merge a broadcast from ``src``; what to relay on (None: nothing)."""
        ...

    def gossip(self) -> GossipData | None:
        """All our state, for periodic gossip and new neighbours (None: nothing)."""
        ...

    def on_gossip(self, src: PeerName, msg: bytes) -> GossipData | None:
        """Merge gossip from neighbour ``src``; what was new, to pass on (None: nothing)."""
        ...


class GossipConnection(Protocol):
    """What a channel needs of a connection."""

    def send(self, msg: Message) -> None: ...

    def queue_gossip(self, channel: str, data: GossipData) -> None: ...

    def queue_broadcast(self, channel: str, src: PeerName, data: GossipData) -> None: ...


class GossipHost(Protocol):
    """What a channel needs of the node."""

    @property
    def name(self) -> PeerName: ...

    @property
    def routes(self) -> Routes: ...

    def connection_to(self, peer: PeerName) -> GossipConnection | None: ...


class RawGossipData:
    """Opaque payloads (what a surrogate channel relays)."""

    __slots__ = ("payloads",)

    def __init__(self, payloads: list[bytes]) -> None:
        self.payloads = payloads

    def encode(self) -> list[bytes]:
        return self.payloads

    def merge(self, other: GossipData) -> GossipData:
        return RawGossipData(self.payloads + other.encode())


class SurrogateGossiper:
    """Stands in for a channel we don't know: relays broadcasts, drops the rest."""

    def on_gossip_unicast(self, _src: PeerName, _msg: bytes) -> None:
        return None

    def on_gossip_broadcast(self, _src: PeerName, update: bytes) -> GossipData | None:
        return RawGossipData([update])

    def gossip(self) -> GossipData | None:
        return None

    def on_gossip(self, _src: PeerName, _msg: bytes) -> GossipData | None:
        # Relaying opaque gossip could loop forever: we can't tell what is new.
        return None


class GossipChannel:
    def __init__(self, name: str, host: GossipHost, gossiper: Gossiper) -> None:
        self.name = name
        self.host = host
        self.gossiper = gossiper

    # --- sending ------------------------------------------------------------

    def gossip_unicast(self, dst: PeerName, msg: bytes) -> None:
        """Send ``msg`` to peer ``dst``; `NoRouteError` if it can't be reached now."""
        if dst == self.host.name:
            raise NoRouteError("a unicast to ourselves")
        self._relay_unicast(Unicast(self.name, self.host.name, dst, msg))

    def gossip_broadcast(self, update: GossipData) -> None:
        """Send ``update`` to every peer, along our broadcast tree."""
        self.relay_broadcast(self.host.name, update)

    def gossip_neighbour_subset(
        self, update: GossipData, *, exclude: PeerName | None = None
    ) -> None:
        """Send ``update`` to a random subset of neighbours (see Routes.random_neighbours)."""
        for neighbour in self.host.routes.random_neighbours(exclude):
            self.send_down(neighbour, update)

    def send_down(self, neighbour: PeerName, data: GossipData) -> bool:
        """Send ``data`` to one neighbour; False if we have no connection to it."""
        conn = self.host.connection_to(neighbour)
        if conn is None:
            return False
        conn.queue_gossip(self.name, data)
        return True

    def relay_broadcast(self, src: PeerName, update: GossipData) -> None:
        for hop in self.host.routes.broadcast_all(src):
            conn = self.host.connection_to(hop)
            if conn is not None:
                conn.queue_broadcast(self.name, src, update)

    def _relay_unicast(self, msg: Unicast) -> None:
        hop = self.host.routes.unicast_all(msg.dst)
        conn = self.host.connection_to(hop) if hop is not None else None
        if conn is None:
            raise NoRouteError(f"no route to peer {format_peer_name(msg.dst)}")
        conn.send(msg)

    # --- receiving (the node calls these) -------------------------------------

    def deliver_unicast(self, msg: Unicast) -> None:
        if msg.dst == self.host.name:
            self.gossiper.on_gossip_unicast(msg.src, msg.payload)
            return
        try:
            self._relay_unicast(msg)
        except NoRouteError as exc:
            # Routes are in flux; the sender's subsystem retries if it cares.
            log.debug(
                "[gossip %s] dropping unicast from %s: %s",
                self.name,
                format_peer_name(msg.src),
                exc,
            )

    def deliver_broadcast(self, msg: Broadcast) -> None:
        if msg.src == self.host.name:
            # Our own broadcast, back through trees that disagreed for a moment.
            return
        data = self.gossiper.on_gossip_broadcast(msg.src, msg.payload)
        if data is not None:
            self.relay_broadcast(msg.src, data)

    def deliver(self, msg: Gossip) -> None:
        data = self.gossiper.on_gossip(msg.src, msg.payload)
        if data is not None:
            self.gossip_neighbour_subset(data, exclude=msg.src)

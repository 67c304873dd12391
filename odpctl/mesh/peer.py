"""A peer as the topology knows it: identity, version, and its connections.

Every peer publishes its own entry; the entry's ``version`` grows with each
change its owner makes, so the newest entry wins wherever two meet.  A
restarted peer (same name, new UID) bumps its version past its previous
incarnation's as soon as it hears of it, so its new entry wins everywhere.

A peer's connections are kept two ways, each built from the other when first
asked for: as parallel lists (remotes, addresses, flags), which is how they
arrive on the wire and all that routing needs, and as a dict of
`ConnectionSummary`, for people and for our own entry, which we edit.  In a
mesh of a hundred peers an entry lists a hundred connections and every
change of it reaches every peer: building objects for each would cost more
than everything else a peer does with it.
"""

from __future__ import annotations

from typing import NamedTuple

from .names import PeerName, PeerUID, ShortID, format_peer_name

# The UID of a placeholder peer: one that others mention but whose own entry
# has not reached us yet.  Real UIDs are never 0.
NO_UID = PeerUID(0)

# Connection flags, as on the wire.
OUTBOUND = 1
ESTABLISHED = 2


class ConnectionSummary(NamedTuple):
    """One connection as its owner reports it to the mesh."""

    # The remote peer's listening address as the owner saw it ("ip:port"), or
    # "" if unknown: what peer discovery dials.
    address: str
    outbound: bool
    established: bool

    @property
    def flags(self) -> int:
        return (OUTBOUND if self.outbound else 0) | (ESTABLISHED if self.established else 0)


Links = tuple[list[PeerName], list[str], list[int]]


class Peer:
    __slots__ = ("_connections", "_links", "name", "nickname", "short_id", "uid", "version")

    def __init__(
        self,
        name: PeerName,
        nickname: str = "",
        uid: PeerUID = NO_UID,
        version: int = 0,
        short_id: ShortID | None = None,
        connections: dict[PeerName, ConnectionSummary] | None = None,
        *,
        links: Links | None = None,
    ) -> None:
        self.name = name
        self.nickname = nickname
        self.uid = uid
        self.version = version
        self.short_id = short_id
        if connections is None and links is None:
            connections = {}
        self._connections = connections
        self._links = links

    @property
    def placeholder(self) -> bool:
        return self.uid == NO_UID

    def rank(self) -> tuple[int, int]:
        """Order of entries for one name: the greater is the newer."""
        return (self.version, self.uid)

    @property
    def connections(self) -> dict[PeerName, ConnectionSummary]:
        if self._connections is None:
            assert self._links is not None
            remotes, addresses, flags = self._links
            self._connections = {
                remote: ConnectionSummary(address, bool(f & OUTBOUND), bool(f & ESTABLISHED))
                for remote, address, f in zip(remotes, addresses, flags, strict=True)
            }
        return self._connections

    def links(self) -> Links:
        if self._links is None:
            conns = self.connections
            self._links = (
                list(conns), [c.address for c in conns.values()], [c.flags for c in conns.values()]
            )
        return self._links

    def set_connection(self, remote: PeerName, summary: ConnectionSummary) -> None:
        self.connections[remote] = summary
        self._links = None

    def remove_connection(self, remote: PeerName) -> bool:
        if self.connections.pop(remote, None) is None:
            return False
        self._links = None
        return True

    def __str__(self) -> str:
        nick = f"({self.nickname})" if self.nickname else ""
        return f"{format_peer_name(self.name)}{nick}"

    def __repr__(self) -> str:
        return (f"Peer({format_peer_name(self.name)}, {self.nickname!r}, uid={self.uid}, "
                f"version={self.version}, short_id={self.short_id}, "
                f"connections={len(self.links()[0])})")

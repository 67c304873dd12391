"""A peer as the topology knows it: identity, version, and its connections.

Every peer publishes its own entry; the entry's ``version`` grows with each
change its owner makes, so the newest entry wins wherever two meet.  A
restarted peer (same name, new UID) bumps its version past its previous
incarnation's as soon as it hears of it, so its new entry wins everywhere.

Connections are kept as plain ``remote -> (address, flags)`` tuples, built
straight from the wire by C code: in a mesh of a hundred peers an entry lists
a hundred connections and each change of it reaches every peer, so building
an object per connection would cost more than everything else a peer does
with it.  `ConnectionSummary` is the readable view, for people.
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

# remote -> (its listening address as the owner saw it, or ""; flags)
Conns = dict[PeerName, tuple[str, int]]
Links = tuple[list[PeerName], list[str], list[int]]


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

    @classmethod
    def of(cls, link: tuple[str, int]) -> ConnectionSummary:
        address, flags = link
        return cls(address, bool(flags & OUTBOUND), bool(flags & ESTABLISHED))


class Peer:
    __slots__ = ("_links", "conns", "name", "nickname", "short_id", "uid", "version")

    def __init__(
        self,
        name: PeerName,
        nickname: str = "",
        uid: PeerUID = NO_UID,
        version: int = 0,
        short_id: ShortID | None = None,
        conns: Conns | None = None,
    ) -> None:
        self.name = name
        self.nickname = nickname
        self.uid = uid
        self.version = version
        self.short_id = short_id
        self.conns: Conns = conns if conns is not None else {}
        self._links: Links | None = None

    @property
    def placeholder(self) -> bool:
        return self.uid == NO_UID

    def rank(self) -> tuple[int, int]:
        """Order of entries for one name: the greater is the newer."""
        return (self.version, self.uid)

    @property
    def connections(self) -> dict[PeerName, ConnectionSummary]:
        """The connections, readable (built on each call: for people, not loops)."""
        return {remote: ConnectionSummary.of(link) for remote, link in self.conns.items()}

    def links(self) -> Links:
        """The connections as parallel lists, as the wire has them."""
        if self._links is None:
            conns = self.conns
            self._links = (
                list(conns),
                [a for a, _ in conns.values()],
                [f for _, f in conns.values()],
            )
        return self._links

    def set_connection(self, remote: PeerName, summary: ConnectionSummary) -> None:
        self.conns[remote] = (summary.address, summary.flags)
        self._links = None

    def remove_connection(self, remote: PeerName) -> bool:
        if self.conns.pop(remote, None) is None:
            return False
        self._links = None
        return True

    def __str__(self) -> str:
        nick = f"({self.nickname})" if self.nickname else ""
        return f"{format_peer_name(self.name)}{nick}"

    def __repr__(self) -> str:
        return (
            f"Peer({format_peer_name(self.name)}, {self.nickname!r}, uid={self.uid}, "
            f"version={self.version}, short_id={self.short_id}, "
            f"connections={len(self.conns)})"
        )

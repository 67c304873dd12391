"""A peer as the topology knows it: identity, version, and its connections.

Every peer publishes its own entry; the entry's ``version`` grows with each
change its owner makes, so the newest entry wins wherever two meet.  A
restarted peer (same name, new UID) bumps its version past its previous
incarnation's as soon as it hears of it, so its new entry wins everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .names import PeerName, PeerUID, ShortID, format_peer_name

# The UID of a placeholder peer: one that others mention but whose own entry
# has not reached us yet.  Real UIDs are never 0.
NO_UID = PeerUID(0)


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """One connection as its owner reports it to the mesh."""

    remote: PeerName
    # The remote peer's listening address as the owner saw it ("ip:port"), or
    # "" if unknown: what peer discovery dials.
    address: str
    outbound: bool
    established: bool


@dataclass(slots=True)
class Peer:
    name: PeerName
    nickname: str = ""
    uid: PeerUID = NO_UID
    version: int = 0
    short_id: ShortID | None = None
    connections: dict[PeerName, ConnectionSummary] = field(default_factory=dict)

    @property
    def placeholder(self) -> bool:
        return self.uid == 0

    def rank(self) -> tuple[int, int]:
        """Order of entries for one name: the greater is the newer."""
        return (self.version, self.uid)

    def __str__(self) -> str:
        nick = f"({self.nickname})" if self.nickname else ""
        return f"{format_peer_name(self.name)}{nick}"

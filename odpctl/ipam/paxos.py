"""Agreeing on the peers the ring is first made for: Paxos over gossip.

Weave Net's way: every participant's Paxos state (what it promised, what it
accepted) is gossiped to all, and each one acts on what it knows of the
others.  An acceptor promises the highest proposal it has seen and accepts
a value only from the proposer of the proposal it promised; a proposer whose
proposal a quorum promised chooses the value accepted under the highest
proposal among them, else its own (the peers it has heard from); a value a
quorum accepted under one proposal is chosen, and every peer that sees it
makes the same ring from it.

Only a participant changes its own claims, and each change is an increase,
so merging everyone's claims by the greater is a CRDT like the ring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from odpctl.errors import DecodeError
from odpctl.mesh.names import PeerName

Proposal = tuple[int, int]  # (round, proposer): ordered, unique per proposer
NONE: Proposal = (0, 0)


@dataclass(frozen=True, slots=True)
class Claims:
    promise: Proposal = NONE
    accepted: Proposal = NONE
    value: tuple[PeerName, ...] = ()

    def rank(self) -> tuple[Proposal, Proposal]:
        return self.promise, self.accepted


@dataclass
class Paxos:
    ourself: PeerName
    quorum_of: int  # the N of consensus=N
    knows: dict[PeerName, Claims] = field(default_factory=dict)
    touched: bool = True  # our claims changed since `take_touched`

    def __post_init__(self) -> None:
        self.knows.setdefault(self.ourself, Claims())

    @property
    def quorum(self) -> int:
        return self.quorum_of // 2 + 1

    def heard(self) -> int:
        return len(self.knows)

    def merge(self, others: dict[PeerName, Claims]) -> bool:
        changed = False
        for peer, claims in others.items():
            if peer == self.ourself:
                continue  # nobody knows better than we what we claimed
            mine = self.knows.get(peer)
            if mine is None or claims.rank() > mine.rank():
                self.knows[peer] = claims
                changed = True
        return changed

    def propose(self) -> None:
        """Start a new proposal, above every one seen."""
        top = max(max(c.promise[0], c.accepted[0]) for c in self.knows.values())
        ours = self.knows[self.ourself]
        self.knows[self.ourself] = Claims((top + 1, self.ourself), ours.accepted, ours.value)
        self.touched = True

    def think(self) -> bool:
        """Act on what we know: promise, choose, accept; whether our claims changed."""
        before = ours = self.knows[self.ourself]
        highest = max(c.promise for c in self.knows.values())
        if highest > ours.promise:
            ours = Claims(highest, ours.accepted, ours.value)
        current = ours.promise
        if current != NONE and ours.accepted != current:
            proposer = PeerName(current[1])
            if proposer == self.ourself:
                promised = [c for c in self.knows.values() if c.promise == current]
                if len(promised) >= self.quorum:
                    prior = max(promised, key=lambda c: c.accepted)
                    value = prior.value if prior.accepted != NONE else tuple(sorted(self.knows))
                    ours = Claims(current, current, value)
            else:
                leader = self.knows.get(proposer)
                if leader is not None and leader.accepted == current:
                    ours = Claims(current, current, leader.value)
        self.knows[self.ourself] = ours
        if ours != before:
            self.touched = True
        return ours != before

    def consensus(self) -> tuple[PeerName, ...] | None:
        """The chosen value, once a quorum accepted it under one proposal."""
        votes: dict[Proposal, int] = {}
        for claims in self.knows.values():
            if claims.accepted != NONE:
                votes[claims.accepted] = votes.get(claims.accepted, 0) + 1
        for proposal, count in votes.items():
            if count >= self.quorum:
                return next(c.value for c in self.knows.values() if c.accepted == proposal)
        return None

    def take_touched(self) -> bool:
        """Whether our claims changed since the last call."""
        touched, self.touched = self.touched, False
        return touched

    def encode(self, peers: Iterable[PeerName] | None = None) -> dict[str, Any]:
        """Claims, with each distinct value once (a value names up to every peer)."""
        values: dict[tuple[PeerName, ...], int] = {}
        claims = []
        for p in self.knows if peers is None else peers:
            c = self.knows[p]
            ref = values.setdefault(c.value, len(values) + 1) if c.value else 0
            claims.append([p, *c.promise, *c.accepted, ref])
        return {"claims": claims, "values": [list(v) for v in values]}


def decode_claims(data: Any) -> dict[PeerName, Claims]:
    try:
        if not isinstance(data, dict):
            raise TypeError("not a map")
        values = [_value(v) for v in _list(data.get("values"))]
        out: dict[PeerName, Claims] = {}
        for item in _list(data.get("claims")):
            if type(item) is not list or len(item) != 6:
                raise ValueError(f"bad claims {item!r}")
            p, r1, p1, r2, p2, ref = item
            if not all(type(x) is int and 0 <= x < _MAX for x in item) or ref > len(values):
                raise ValueError(f"bad claims {item!r}")
            value = values[ref - 1] if ref else ()
            out[PeerName(p)] = Claims((r1, p1), (r2, p2), value)
        return out
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"malformed IPAM consensus state: {exc}") from None


_MAX = 1 << 64


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"bad list {value!r}")
    return value


def _value(value: Any) -> tuple[PeerName, ...]:
    if not all(type(x) is int and 0 <= x < 1 << 48 for x in _list(value)):
        raise ValueError(f"bad value {value!r}")
    return tuple(PeerName(x) for x in value)

"""Paxos over gossip: peers that see each other's claims in any order agree on one value."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.ipam.paxos import Paxos, decode_claims
from odpctl.mesh.names import PeerName


def run(
    n: int, quorum_of: int, proposers: list[int], rng: random.Random, steps: int = 400
) -> list[Paxos]:
    """``n`` peers exchanging claims at random, the ``proposers`` proposing now and then."""
    peers = [Paxos(PeerName(i + 1), quorum_of) for i in range(n)]
    for _ in range(steps):
        a, b = rng.sample(peers, 2)
        if b.merge(dict(a.knows)):
            b.think()
        if rng.random() < 0.05:
            p = peers[rng.choice(proposers)]
            if p.consensus() is None:
                p.propose()
                p.think()
    return peers


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**32), st.integers(1, 3))
def test_peers_never_choose_two_values(n: int, seed: int, duelling: int) -> None:
    rng = random.Random(seed)
    peers = run(n, n, list(range(min(duelling, n))), rng)
    chosen = {p.consensus() for p in peers} - {None}
    assert len(chosen) <= 1
    # Gossip until everyone has heard everything: all see the same outcome.
    for _ in range(3):
        for a in peers:
            for b in peers:
                if b.merge(dict(a.knows)):
                    b.think()
    final = {p.consensus() for p in peers}
    assert len(final) == 1
    assert chosen <= final


def test_one_proposer_and_a_quorum_choose_the_peers_heard() -> None:
    peers = [Paxos(PeerName(i + 1), 3) for i in range(3)]
    for a in peers:
        for b in peers:
            b.merge(dict(a.knows))
    peers[0].propose()
    for _ in range(4):
        for a in peers:
            a.think()
            for b in peers:
                b.merge(dict(a.knows))
    values = {p.consensus() for p in peers}
    assert values == {(PeerName(1), PeerName(2), PeerName(3))}


def test_a_minority_never_decides() -> None:
    peers = [Paxos(PeerName(i + 1), 5) for i in range(2)]
    for _ in range(5):
        peers[0].propose()
        for a in peers:
            a.think()
            for b in peers:
                b.merge(dict(a.knows))
    assert all(p.consensus() is None for p in peers)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-1, 2**65) | st.text(max_size=3),
        lambda kids: st.lists(kids, max_size=7),
        max_leaves=40,
    )
)
def test_hostile_claims_raise_decode_error(data: object) -> None:
    try:
        decode_claims(data)
    except DecodeError:
        return

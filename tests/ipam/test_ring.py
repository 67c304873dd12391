"""The ring CRDT: merge laws, ownership, grants, and its decoder against hostile input."""

from __future__ import annotations

import contextlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.ipam.errors import Refused
from odpctl.ipam.ring import Ring
from odpctl.mesh.names import PeerName
from odpctl.mesh.wire import pack, unpack

START, END = 0x0A200000, 0x0A200000 + 4096
PEERS = [PeerName(n) for n in (0x0201, 0x0202, 0x0203, 0x0204)]


def made(peers: list[PeerName] = PEERS[:3]) -> Ring:
    ring = Ring(START, END)
    ring.make(peers)
    return ring


def merged(*rings: Ring) -> Ring:
    out = Ring(START, END)
    for ring in rings:
        out.merge(ring)
    return out


def owners(ring: Ring) -> list[PeerName | None]:
    return [ring.owner(a) for a in range(START, END, 7)]


def test_make_is_deterministic_and_covers_the_range() -> None:
    a, b = made(PEERS[:3]), made(list(reversed(PEERS[:3])))
    assert a == b
    assert sum(a.owned_counts().values()) == END - START
    assert a.tokens[0] == START
    assert set(a.owned_counts()) == set(PEERS[:3])


def test_grant_moves_ownership_and_only_that() -> None:
    ring = made()
    lo, hi = ring.owned(PEERS[0])[0]
    mid = lo + (hi - lo) // 2
    ring.grant(mid, hi, PEERS[0], PEERS[3])
    assert ring.owner(mid - 1) == PEERS[0] and ring.owner(mid) == PEERS[3]
    assert ring.owner(hi) == PEERS[1]
    assert sum(ring.owned_counts().values()) == END - START
    with pytest.raises(ValueError, match="not one range"):
        ring.grant(mid, hi, PEERS[0], PEERS[2])  # no longer PEERS[0]'s


def test_a_grant_in_the_middle_keeps_both_ends() -> None:
    ring = made()
    lo, hi = ring.owned(PEERS[1])[0]
    ring.grant(lo + 10, lo + 20, PEERS[1], PEERS[0])
    assert ring.owned(PEERS[1]) == [(lo, lo + 10), (lo + 20, hi)]
    assert (lo + 10, lo + 20) in ring.owned(PEERS[0])


def test_rings_made_for_different_peers_refuse_each_other() -> None:
    ours, theirs = made(PEERS[:3]), made(PEERS[1:])
    with pytest.raises(Refused, match="made for peers"):
        ours.check_compatible(theirs, "peer x")
    with pytest.raises(Refused, match="allocates from"):
        ours.check_compatible(Ring(START, END + 256), "peer x")
    ours.check_compatible(Ring(START, END), "an empty ring")  # not made yet: fine


def test_transfer_and_free_reports_win_by_version() -> None:
    base = made()
    a, b = base.copy(), base.copy()
    a.report_free(PEERS[0], {a.tokens[0]: 5})
    b.transfer(PEERS[2], PEERS[1])
    assert merged(a, b) == merged(b, a)
    both = merged(a, b)
    assert both.free_counts()[PEERS[0]] == 5
    assert PEERS[2] not in both.owned_counts()


@st.composite
def histories(draw: st.DrawFn) -> list[Ring]:
    """Replicas of one ring, each changed by owners only (as peers do), gossiping at random."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(2, 4))
    replicas = {p: made(PEERS[:3]) for p in PEERS[:n]}
    for _ in range(draw(st.integers(0, 25))):
        actor = rng.choice(list(replicas))
        ring = replicas[actor]
        op = rng.random()
        if op < 0.4:
            other = rng.choice(list(replicas))
            ring.merge(replicas[other])
        elif op < 0.8:
            owned = ring.owned(actor)
            ranges = [(t, lo, hi) for t, lo, hi, e in ring.ranges() if e.peer == actor]
            if owned and ranges:
                _, lo, hi = rng.choice(ranges)
                a = rng.randrange(lo, hi)
                b = rng.randrange(a + 1, hi + 1)
                ring.grant(a, b, actor, rng.choice(PEERS))
        else:
            ring.report_free(
                actor, {t: rng.randrange(100) for t, _, _, e in ring.ranges() if e.peer == actor}
            )
    return list(replicas.values())


@settings(max_examples=200, deadline=None)
@given(histories())
def test_merge_is_commutative_associative_idempotent(replicas: list[Ring]) -> None:
    a, b = replicas[0], replicas[1]
    c = replicas[-1]
    assert merged(a, b) == merged(b, a)
    assert merged(merged(a, b), c) == merged(a, merged(b, c))
    assert merged(a, a) == merged(a)
    again = merged(a, b)
    assert not again.merge(b) and not again.merge(a)


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_gossip_order_converges_and_owns_each_address_once(
    replicas: list[Ring], rng: random.Random
) -> None:
    order = list(replicas)
    rng.shuffle(order)
    final = merged(*order)
    assert final == merged(*replicas)
    # Every address has one owner, the ranges tile the whole range.
    assert sum(final.owned_counts().values()) == END - START
    spans = sorted((lo, hi) for _, lo, hi, _ in final.ranges())
    assert spans[0][0] == START and spans[-1][1] == END
    assert all(x[1] == y[0] for x, y in itertools.pairwise(spans))


def test_encoding_round_trips() -> None:
    ring = made()
    ring.grant(START + 5, START + 9, PEERS[0], PEERS[3])
    assert Ring.decode(unpack(pack(ring.encode()))) == ring


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-2, 2**65) | st.text(max_size=4),
        lambda kids: (
            st.lists(kids, max_size=5)
            | st.dictionaries(
                st.sampled_from(["start", "end", "seeds", "entries", "removals"]), kids, max_size=5
            )
        ),
        max_leaves=30,
    )
)
def test_hostile_encodings_raise_decode_error(data: object) -> None:
    with contextlib.suppress(DecodeError):
        Ring.decode(data)


def test_decoder_refuses_an_entry_outside_the_range() -> None:
    encoded = made().encode()
    encoded["entries"].append([END + 1, 1, 0, 0])
    with pytest.raises(DecodeError, match="bad token"):
        Ring.decode(encoded)


def test_a_delta_carries_what_changed_and_refuses_another_clusters_ring() -> None:
    ring = made()
    ring.take_touched()  # making is no news: every peer makes the same ring
    ring.grant(START + 5, START + 9, PEERS[0], PEERS[3])
    tokens, victims = ring.take_touched()
    delta = Ring.decode(unpack(pack(ring.encode_partial(tokens, victims))))
    assert delta.partial and set(delta.tokens) == tokens
    replica = made()
    replica.check_compatible(delta, "peer x")
    replica.merge(delta)
    assert replica == ring
    with pytest.raises(Refused, match="made for other peers"):
        made(PEERS[1:]).check_compatible(delta, "peer x")

"""DNS records: their merge (a CRDT), our own records' authority, peers gone, tombstones, gossip."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.dns.gossip import (
    DnsGossiper,
    MalformedRecords,
    RecordsData,
    decode_payload,
    decode_record,
    encode_record,
)
from odpctl.dns.records import TOMBSTONE_LIFETIME, Record, Records
from odpctl.mesh.names import PeerName
from odpctl.mesh.wire import pack

US, A, B = PeerName(1), PeerName(2), PeerName(3)
WEB = "web1.odpctl.local."


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


records_st = st.builds(
    Record,
    container=st.sampled_from(["c1", "c2"]),
    origin=st.sampled_from([A, B]),
    address=st.sampled_from(["10.32.0.1", "10.32.0.2"]),
    hostname=st.sampled_from([WEB, "db.odpctl.local."]),
    version=st.integers(1, 4),
    tombstone=st.sampled_from([0.0, 1_700_000_000.0, 1_700_000_005.0]),
)


def state(records: Records) -> dict[object, Record]:
    return {r.key: r for r in records}


def merged(*batches: list[Record]) -> Records:
    mine = Records(US, Clock())
    for batch in batches:
        mine.merge(batch)
    return mine


@settings(max_examples=100, deadline=None)
@given(st.lists(records_st, max_size=12), st.lists(records_st, max_size=12))
def test_merge_is_commutative(xs: list[Record], ys: list[Record]) -> None:
    assert state(merged(xs, ys)) == state(merged(ys, xs))


@settings(max_examples=100, deadline=None)
@given(st.lists(records_st, max_size=12), st.randoms())
def test_merge_ignores_order_and_repeats(xs: list[Record], rnd: object) -> None:
    shuffled = list(xs) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    one_by_one = merged(*[[r] for r in shuffled])
    assert state(one_by_one) == state(merged(xs))
    again = merged(xs)
    assert again.merge(xs) == []  # idempotent: nothing new the second time


@settings(max_examples=100, deadline=None)
@given(st.lists(records_st, max_size=12))
def test_lookups_follow_the_winners(xs: list[Record]) -> None:
    mine = merged(xs)
    winners = state(mine)
    for hostname in (WEB, "db.odpctl.local."):
        expect = sorted({r.address for r in winners.values() if r.hostname == hostname and r.live})
        assert sorted(mine.addresses(hostname)) == expect
        assert sorted(mine.shuffled(hostname)) == expect


def test_higher_version_wins_and_tombstone_wins_a_tie() -> None:
    live1 = Record("c1", A, "10.32.0.1", WEB, version=1)
    dead1 = Record("c1", A, "10.32.0.1", WEB, version=1, tombstone=Clock().now)
    live2 = Record("c1", A, "10.32.0.1", WEB, version=2)
    for order in itertools.permutations([live1, dead1]):
        mine = merged(list(order))
        assert mine.addresses(WEB) == ()
    for order in itertools.permutations([live1, dead1, live2]):
        mine = merged(list(order))
        assert mine.addresses(WEB) == ("10.32.0.1",)


def test_our_records_add_remove_and_readd() -> None:
    clock = Clock()
    mine = Records(US, clock)
    first = mine.add("c1", "10.32.0.1", WEB)
    assert mine.add("c1", "10.32.0.1", WEB) is first  # announcing again changes nothing
    mine.add("c2", "10.32.0.2", WEB)
    assert sorted(mine.addresses(WEB)) == ["10.32.0.1", "10.32.0.2"]
    assert mine.names("10.32.0.1") == (WEB,)
    [gone] = mine.remove(container="c1")
    assert gone.version == 2 and gone.tombstone == clock.now
    assert mine.addresses(WEB) == ("10.32.0.2",) and mine.names("10.32.0.1") == ()
    assert mine.add("c1", "10.32.0.1", WEB).version == 3


def test_a_stale_copy_of_our_record_is_answered_with_a_higher_version() -> None:
    clock = Clock()
    mine = Records(US, clock)
    ours = mine.add("c1", "10.32.0.1", WEB)
    # Another peer holds a tombstone from an earlier run of ours at a higher version.
    [answer] = mine.merge([Record("c1", US, "10.32.0.1", WEB, version=7, tombstone=clock.now - 10)])
    assert answer.version == 8 and answer.live and mine.addresses(WEB) == ("10.32.0.1",)
    assert ours.version == 1
    # A live record an earlier run announced, which we no longer have: tombstoned.
    [dead] = mine.merge([Record("c9", US, "10.32.0.9", "old.odpctl.local.", version=4)])
    assert dead.version == 5 and not dead.live
    assert mine.addresses("old.odpctl.local.") == ()
    assert mine.merge([Record("c1", US, "10.32.0.1", WEB, version=2)]) == []


def test_records_of_a_gone_peer_are_dropped_and_come_back() -> None:
    theirs = Records(A)
    theirs.add("c1", "10.32.0.1", WEB)
    mine = Records(US)
    gossiper = DnsGossiper(mine)
    their_gossip = DnsGossiper(theirs).gossip()
    assert their_gossip is not None
    [payload] = their_gossip.encode()
    assert gossiper.on_gossip(A, payload) is not None
    assert mine.addresses(WEB) == ("10.32.0.1",)
    assert [r.hostname for r in mine.peer_gone(A)] == [WEB]
    assert mine.addresses(WEB) == () and len(mine) == 0
    assert mine.peer_gone(US) == []
    gossiper.on_gossip(A, payload)
    assert mine.addresses(WEB) == ("10.32.0.1",)


def test_records_of_peers_the_mesh_forgot_are_not_taken() -> None:
    mine = Records(US)
    known = {A}
    gossiper = DnsGossiper(mine, known=known.__contains__)
    data = RecordsData([Record("c1", A, "10.32.0.1", WEB), Record("c2", B, "10.32.0.2", WEB)])
    [payload] = data.encode()
    gossiper.on_gossip_broadcast(A, payload)
    assert mine.addresses(WEB) == ("10.32.0.1",)


def test_tombstones_are_collected_after_30_minutes() -> None:
    clock = Clock()
    mine = Records(US, clock)
    mine.add("c1", "10.32.0.1", WEB)
    mine.remove(hostname=WEB)
    mine.merge([Record("c2", A, "10.32.0.2", WEB, version=2, tombstone=clock.now)])
    clock.now += TOMBSTONE_LIFETIME - 1
    assert mine.collect() == [] and len(mine) == 2
    clock.now += 2
    assert len(mine.collect()) == 2 and len(mine) == 0


def test_gossip_from_a_far_off_clock_is_refused_with_the_reason() -> None:
    clock = Clock()
    mine = Records(US, clock)
    gossiper = DnsGossiper(mine, max_skew=60)
    payload = pack([clock.now + 3600, [encode_record(Record("c1", A, "10.32.0.1", WEB))]])
    assert gossiper.on_gossip(A, payload) is None
    assert mine.addresses(WEB) == ()
    assert gossiper.refused_skew == 1
    assert gossiper.last_refusal is not None and "3600 s ahead" in gossiper.last_refusal
    near = pack([clock.now + 30, [encode_record(Record("c1", A, "10.32.0.1", WEB))]])
    assert gossiper.on_gossip(A, near) is not None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",
        pack(1),
        pack([1.0]),
        pack(["x", []]),
        pack([1.0, [1]]),
        pack([1.0, [["c", 2, "10.0.0.1", WEB, 0, 0]]]),
        pack([1.0, [["c", 2, "10.0.0.300", WEB, 1, 0]]]),
        pack([1.0, [["c", 2, "10.0.0.1", "Web1..x", 1, 0]]]),
        pack([1.0, [["c", -2, "10.0.0.1", WEB, 1, 0]]]),
        pack([1.0, [["c", 2, "10.0.0.1", WEB, 1, "x"]]]),
    ],
)
def test_malformed_gossip_is_counted_and_dropped(payload: bytes) -> None:
    mine = Records(US)
    mine.add("c1", "10.32.0.1", WEB)
    gossiper = DnsGossiper(mine)
    assert gossiper.on_gossip(A, payload) is None
    assert gossiper.on_gossip_broadcast(A, payload) is None
    assert gossiper.malformed == 2
    assert mine.addresses(WEB) == ("10.32.0.1",)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_hostile_gossip_never_raises(payload: bytes) -> None:
    gossiper = DnsGossiper(Records(US))
    gossiper.on_gossip(A, payload)


@settings(max_examples=100, deadline=None)
@given(st.lists(records_st, max_size=20))
def test_gossip_data_round_trips_and_merges_to_the_winners(xs: list[Record]) -> None:
    data = RecordsData(xs[: len(xs) // 2]).merge(RecordsData(xs[len(xs) // 2 :]))
    assert isinstance(data, RecordsData)
    decoded = [r for payload in data.encode() for r in decode_payload(payload)[1]]
    assert state(merged(decoded)) == state(merged(xs))
    for r in xs:
        assert decode_record(encode_record(r)) == r


def test_a_record_list_is_split_over_payloads() -> None:
    many = [Record(f"c{i}", A, "10.32.0.1", WEB) for i in range(1200)]
    payloads = RecordsData(many).encode()
    assert len(payloads) == 3
    assert sum(len(decode_payload(p)[1]) for p in payloads) == 1200
    with pytest.raises(MalformedRecords):
        decode_record(["c", 2, "10.0.0.1", WEB, 1])


def test_restored_records_are_ours_as_they_were() -> None:
    before = Records(US)
    before.add("c1", "10.32.0.1", WEB)
    before.remove(container="c1")
    before.add("c1", "10.32.0.1", WEB)
    after = Records(US)
    after.restore([*before.own(), Record("c2", A, "10.32.0.2", WEB)])
    assert after.addresses(WEB) == ("10.32.0.1",)
    assert [r.version for r in after.own()] == [3]


def test_a_tombstone_older_than_the_lifetime_is_not_taken() -> None:
    clock = Clock()
    mine = Records(US, clock)
    old = Record("c1", A, "10.32.0.1", WEB, version=2, tombstone=clock.now - TOMBSTONE_LIFETIME - 1)
    assert mine.merge([old]) == [] and len(mine) == 0
    fresh = Record("c1", A, "10.32.0.1", WEB, version=2, tombstone=clock.now - 60)
    assert mine.merge([fresh]) == [fresh]

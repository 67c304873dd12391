"""The topology store: merging entries, deltas, digests, garbage collection, short IDs."""

from __future__ import annotations

import pytest

from odpctl.mesh.errors import MalformedMessage
from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.peer import ESTABLISHED, ConnectionSummary, Peer
from odpctl.mesh.routes import Routes
from odpctl.mesh.topology import (
    DELTA,
    DIGEST,
    REQUEST,
    UPDATE,
    Topology,
    decode_payload,
)
from odpctl.mesh.wire import pack

from .helpers import name, peer


def wire(*peers: Peer) -> list:  # type: ignore[type-arg]
    """``peers`` as an UPDATE off the wire."""
    source = Topology(Peer(PeerName(0xFFFFFF), "src", PeerUID(9), 1, ShortID(1)))
    for p in peers:
        source.peers[p.name] = p
    (payload,) = source.encode_update([p.name for p in peers])
    kind, entries = decode_payload(payload)
    assert kind == UPDATE
    return entries  # type: ignore[no-any-return]


def local(n: int = 0, short_id: int = 7) -> Topology:
    return Topology(Peer(name(n), "me", PeerUID(1000 + n), 1, ShortID(short_id)))


def test_newer_versions_win_older_are_ignored() -> None:
    t = local()
    b = peer(name(1), {name(0): True}, version=5)
    result = t.apply_update(wire(b))
    assert result.improved == {name(1)}
    assert t.peers[name(1)].version == 5
    old = peer(name(1), {}, version=4)
    assert t.apply_update(wire(old)).improved == set()
    assert t.peers[name(1)].conns  # still version 5's
    assert t.apply_update(wire(peer(name(1), {}, version=6))).improved == {name(1)}
    assert not t.peers[name(1)].conns


def test_same_version_other_uid_is_ordered_by_uid() -> None:
    t = local()
    a = peer(name(1), {}, version=3)
    t.apply_update(wire(a))
    b = Peer(name(1), "again", PeerUID(a.uid + 1), 3, ShortID(5))
    assert t.apply_update(wire(b)).improved == {name(1)}
    assert t.apply_update(wire(a)).improved == set()


def test_mentioned_peers_become_placeholders_until_their_entry_comes() -> None:
    t = local()
    t.apply_update(wire(peer(name(1), {name(2): True, name(0): True})))
    assert t.peers[name(2)].placeholder
    assert t.apply_update(wire(peer(name(2), {name(1): True}, version=1))).improved == {name(2)}
    assert not t.peers[name(2)].placeholder


def test_gossip_about_an_old_incarnation_of_ourselves_moves_our_version_past_it() -> None:
    t = local()
    me = t.ourself
    ghost = Peer(me.name, "me", PeerUID(me.uid + 1), 40, ShortID(3))
    result = t.apply_update(wire(ghost))
    assert result.ourself_changed
    assert me.version == 41 and me.uid == 1000
    assert t.peers[me.name] is me


def test_garbage_collection_drops_unreachable_peers_but_not_neighbours() -> None:
    t = local()
    t.set_connection(name(1), ConnectionSummary("", True, True))
    t.apply_update(
        wire(
            peer(name(1), {name(0): True, name(2): True}),
            peer(name(2), {name(1): True}),
            peer(name(5), {}),
        )
    )
    routes = Routes(t, t.ourself.name)
    gone = []
    t.on_gc.append(lambda p: gone.append(p.name))
    removed = t.garbage_collect(routes.reachable_all(), keep=())
    assert [p.name for p in removed] == gone == [name(5)]
    assert set(t.peers) == {name(0), name(1), name(2)}
    # 1 drops its connection to 2: 2 is unreachable now.
    t.apply_update(wire(peer(name(1), {name(0): True}, version=2)))
    t.garbage_collect(routes.reachable_all(), keep=())
    assert set(t.peers) == {name(0), name(1)}
    # A neighbour is kept even before its entry makes it reachable.
    t.add_neighbour(name(9), "nine", PeerUID(99), ShortID(9))
    t.garbage_collect(routes.reachable_all(), keep={name(9)})
    assert name(9) in t.peers


def test_a_forgotten_peer_stays_forgotten_until_news_of_it_comes() -> None:
    t = local()
    t.set_connection(name(1), ConnectionSummary("", True, True))
    t.apply_update(wire(peer(name(1), {name(0): True})))
    routes = Routes(t, t.ourself.name)
    gone = peer(name(5), {name(6): True}, version=3)
    t.apply_update(wire(gone))
    t.garbage_collect(routes.reachable_all(), keep=())
    assert name(5) not in t.peers
    # A neighbour that has not forgotten it yet gossips the same entry (or an
    # older one) back: no news, it stays forgotten.
    assert t.apply_update(wire(gone)).improved == set()
    assert t.apply_update(wire(peer(name(5), {}, version=2))).improved == set()
    assert name(5) not in t.peers
    # A newer version (it made a connection), or a new run of it (another UID): news.
    assert t.apply_update(wire(peer(name(5), {name(6): True}, version=4))).improved == {name(5)}
    t.garbage_collect(routes.reachable_all(), keep=())
    restarted = Peer(name(5), "again", PeerUID(4242), 1, ShortID(5))
    assert t.apply_update(wire(restarted)).improved == {name(5)}


def test_digest_comparison() -> None:
    t = local()
    t.apply_update(wire(peer(name(1), {}, version=5), peer(name(2), {}, version=5)))
    p1, p2 = t.peers[name(1)], t.peers[name(2)]
    theirs = [
        name(1),
        p1.uid,
        4,
        name(2),
        p2.uid,
        6,
        name(3),
        77,
        1,
        t.ourself.name,
        t.ourself.uid,
        t.ourself.version,
    ]
    newer_here, newer_there, moved = t.compare_digest(theirs)
    assert newer_here == {name(1)}
    assert newer_there == {name(2), name(3)}
    assert not moved
    # Their digest lacks peer 1 altogether, and lists an old us at a higher version.
    newer_here, _, moved = t.compare_digest([t.ourself.name, t.ourself.uid + 1, 50])
    assert moved and t.ourself.version == 51
    assert newer_here == {name(0), name(1), name(2)}
    kind, flat = decode_payload(t.encode_digest())
    assert kind == DIGEST and len(flat) == 9


def test_delta_broadcasts() -> None:
    owner = local(1)
    for i in range(2, 12):
        owner.set_connection(name(i), ConnectionSummary(f"10.0.0.{i}:6783", True, True))
    first = owner.own_broadcast()
    assert first is not None and decode_payload(first)[0] == UPDATE  # no base yet
    assert owner.own_broadcast() is None  # nothing changed since
    owner.set_connection(name(3), ConnectionSummary("10.0.0.3:6783", False, False))
    owner.set_connection(name(12), ConnectionSummary("10.0.0.12:6783", True, True))
    owner.remove_connection(name(2))
    delta_payload = owner.own_broadcast()
    assert delta_payload is not None
    kind, delta = decode_payload(delta_payload)
    assert kind == DELTA and delta.removed == [name(2)] and name(3) in delta.changed

    receiver = local(0)
    _, entries = decode_payload(first)
    receiver.apply_update(entries)
    result = receiver.apply_delta(delta)
    assert result.improved == {name(1)}
    got = receiver.peers[name(1)]
    assert got.version == owner.ourself.version
    assert got.conns == owner.ourself.conns
    assert got.connections[name(3)] == ConnectionSummary("10.0.0.3:6783", False, False)
    # A receiver without the delta's base can't apply it, and says so.
    stranger = local(8)
    assert stranger.apply_delta(delta).behind == {name(1)}
    # Applying it twice does nothing.
    assert receiver.apply_delta(delta).improved == set()


def test_delta_falls_back_to_a_whole_entry_when_most_connections_changed() -> None:
    owner = local(1)
    owner.set_connection(name(2), ConnectionSummary("", True, True))
    owner.own_broadcast()
    for i in range(3, 8):
        owner.set_connection(name(i), ConnectionSummary("", True, True))
    payload = owner.own_broadcast()
    assert payload is not None and decode_payload(payload)[0] == UPDATE


def test_short_id_collision_lowest_name_keeps_it() -> None:
    low, high = sorted((name(1), name(2)))
    # We have the higher name: we move.
    t = Topology(Peer(high, "me", PeerUID(5), 1, ShortID(42)))
    changes = []
    t.on_short_ids_changed.append(lambda: changes.append(1))
    version = t.ourself.version
    result = t.apply_update(wire(Peer(low, "other", PeerUID(6), 1, ShortID(42))))
    assert result.ourself_changed
    assert t.ourself.short_id != 42 and t.ourself.version > version
    assert t.by_short_id(42) is t.peers[low]
    assert t.by_short_id(t.ourself.short_id) is t.ourself  # type: ignore[arg-type]
    assert changes
    # We have the lower name: we keep it; the other is secondary until it moves.
    t = Topology(Peer(low, "me", PeerUID(5), 1, ShortID(42)))
    result = t.apply_update(wire(Peer(high, "other", PeerUID(6), 1, ShortID(42))))
    assert not result.ourself_changed and t.ourself.short_id == 42
    assert t.by_short_id(42) is t.ourself
    assert not t.owns_short_id(t.peers[high]) and t.owns_short_id(t.ourself)
    # The other moves (its newer entry): the ID is ours alone.
    t.apply_update(wire(Peer(high, "other", PeerUID(6), 2, ShortID(43))))
    assert t.by_short_id(43) is t.peers[high]


def test_encoding_round_trip_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("odpctl.mesh.topology.UPDATE_CHUNK", 20_000)
    t = local()
    many = [peer(name(i), {name(j): True for j in range(1, 300) if j != i}) for i in range(1, 40)]
    for p in many:
        t.peers[p.name] = p
    payloads = t.encode_update([p.name for p in many])
    assert len(payloads) > 1  # split below the frame limit
    entries = [e for p in payloads for e in decode_payload(p)[1]]
    receiver = local(500)
    receiver.apply_update(entries)
    for p in many:
        assert receiver.peers[p.name].conns == p.conns
        assert receiver.peers[p.name].nickname == p.nickname


@pytest.mark.parametrize(
    "payload",
    [
        pack([UPDATE, [[1, "n", 1, 1, 5, [2, "a", 0, 2, "b", 0]]]]),  # a peer listed twice
        pack([UPDATE, [[1, "n", 1, 1, 5, [1, "a", 0]]]]),  # itself
        pack([UPDATE, [[1, "n", 1, 1, 5, [2, "a"]]]]),  # not triples
        pack([UPDATE, [[1, "n", 1, 1, 5, [2, 3, 0]]]]),  # address not a string
        pack([UPDATE, [[1, "n", 1, 1, 5000, []]]]),  # short ID out of range
        pack([UPDATE, [[1, "n", 1, 1, 5, [2, "a", 256]]]]),  # flags out of range
        pack([UPDATE, [[1, "n", 1, 1, 5, [-2, "a", 0]]]]),  # name out of range
        pack([UPDATE, [[1 << 48, "n", 1, 1, 5, []]]]),  # name out of range
        pack([UPDATE, [[1, "n", 0, 1, 5, []]]]),  # UID 0
        pack([UPDATE, [[1, "n", 1, True, 5, []]]]),  # bool is not a version
        pack([DELTA, 1, 1, 5, 5, "n", 1, [], []]),  # version not after base
        pack([DIGEST, [1, 2]]),
        pack([REQUEST, ["x"]]),
        pack([9, []]),
        pack({"not": "a list"}),
    ],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    t = local(77)

    def receive() -> None:
        kind, content = decode_payload(payload)
        if kind == UPDATE:
            t.apply_update(content)

    with pytest.raises(MalformedMessage):
        receive()


def test_established_flag_round_trips() -> None:
    t = local()
    t.set_connection(name(1), ConnectionSummary("a:1", True, False))
    assert t.ourself.conns[name(1)] == ("a:1", 1)
    t.set_connection(name(1), ConnectionSummary("a:1", False, True))
    assert t.ourself.conns[name(1)] == ("a:1", ESTABLISHED)

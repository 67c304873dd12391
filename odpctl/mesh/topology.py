"""The topology: every known peer's entry, merged from gossip; short IDs.

`Topology` is the store (the model of mesh's Peers): it merges entries from
updates (newer versions win), indexes the 12-bit short IDs and resolves their
collisions, drops the peers that became unreachable, and records which
entries changed (routes are updated from that, not recomputed from scratch).
`TopologyGossiper` is its gossip channel:

- a new neighbour gets the full topology (a JOIN: an UPDATE with every
  entry, which the neighbour spreads on its side, see below);
- a peer's change of its own entry is broadcast along its spanning tree as
  a DELTA (the connections that changed since its previous broadcast: a
  few bytes, where the entry lists every connection; a mesh that forms
  changes every entry a hundred times); a peer whose copy is not the
  delta's base asks the owner for the whole entry (a unicast REQUEST);
  each peer relays each version once, even if it had it already from
  elsewhere (its children on this tree may not have), and never twice (so
  that where trees disagree for a moment, a broadcast that comes round
  again stops): with consistent trees, everyone gets it once;
- what a peer learns from a new neighbour's JOIN (the other side of a
  join) it broadcasts on its own tree, and others relay only what was new
  to them: that costs one message per peer and entry set, where relaying
  everything would cost one per peer per joining peer;
- periodically, a DIGEST (name, UID, version of each entry: a few bytes per
  peer, where a full entry carries all its connections) goes to a random
  subset of neighbours, which answer with the entries they have newer and a
  REQUEST for those they lack; this repairs whatever a broadcast missed
  while the topology was in flux, at a fraction of the cost of gossiping
  full topologies.  What a repair brings is not spread further: the peers
  that lacked it repair themselves the same way.

Short IDs: each peer picks one at random; when two peers claim the same one,
the peer with the lowest name keeps it, and the others pick again (they
learn it from gossip, as everyone does).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .errors import MalformedMessage, NoRouteError
from .gossip import GossipChannel, GossipData
from .names import NAME_MAX, SHORT_ID_COUNT, UID_MAX, PeerName, PeerUID, ShortID, format_peer_name
from .peer import ConnectionSummary, Conns, Peer
from .wire import MAX_NICKNAME, check_int, check_list, check_name, check_str, pack, unpack

log = logging.getLogger("odpctl.mesh")

CHANNEL = "topology"

# Payload kinds on the topology channel.
UPDATE = 0
DIGEST = 1
REQUEST = 2
DELTA = 3
JOIN = 4  # an UPDATE for a new neighbour, to spread on its side

# How long a peer we forgot stays forgotten against gossip of the same entry.
# Peers forget an unreachable one at slightly different times; without this, each
# would hand the entry back to the others, which had just dropped it, forever.
FORGET_MEMORY = 60.0

MAX_ADDRESS = 300
MAX_ENTRIES = 1 << 16
MAX_CONNECTIONS = 1 << 16
# Split big UPDATEs so that each stays well below the frame limit.
UPDATE_CHUNK = 512 * 1024


@dataclass(slots=True)
class ApplyResult:
    """What an update did: every name it carried, and those that were news."""

    received: set[PeerName] = field(default_factory=set)
    improved: set[PeerName] = field(default_factory=set)
    # Our own entry changed (its version jumped past an old incarnation's,
    # or our short ID moved): it must be gossiped.
    ourself_changed: bool = False
    # Entries a delta could not be applied to (our copy is not its base).
    behind: set[PeerName] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Delta:
    """An owner's change of its entry: from version ``base`` to ``version``."""

    name: PeerName
    uid: PeerUID
    base: int
    version: int
    nickname: str
    short_id: ShortID | None
    changed: Conns  # connections added or changed
    removed: list[PeerName]


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An entry off the wire: its header checked, the rest only if it is used."""

    name: PeerName
    uid: PeerUID
    version: int
    fields: list[Any]


class Topology:
    def __init__(self, ourself: Peer) -> None:
        self.ourself = ourself
        self.peers: dict[PeerName, Peer] = {ourself.name: ourself}
        self._short_ids: dict[ShortID, set[PeerName]] = {}
        # Encoded entries, reused until the entry changes: one change is sent
        # to many neighbours, and a full topology to every new one.
        self._packed: dict[PeerName, tuple[int, int, bytes]] = {}
        # Changed entries -> the connections that changed (None: any of them).
        self._changes: dict[PeerName, set[PeerName] | None] = {ourself.name: None}
        self._digest: tuple[int, bytes] | None = None
        # Our entry as of our last broadcast, for deltas: its version, and
        # the connections changed since.
        self._broadcast_base: int | None = None
        self._dirty: set[PeerName] = set()
        self.generation = 0  # grows with every change
        self.on_short_ids_changed: list[Callable[[], None]] = []
        self.on_gc: list[Callable[[Peer], None]] = []
        self._short_ids_dirty = False
        # Forgotten peers: name -> (the UID and version we forgot, when)
        self._forgotten: dict[PeerName, tuple[int, int, float]] = {}
        self._index_add(ourself)

    # --- lookups ------------------------------------------------------------

    def get(self, name: PeerName) -> Peer | None:
        return self.peers.get(name)

    def __len__(self) -> int:
        return len(self.peers)

    def by_short_id(self, short_id: int) -> Peer | None:
        """The peer that owns ``short_id``: the lowest name among its claimants."""
        names = self._short_ids.get(ShortID(short_id))
        return self.peers[min(names)] if names else None

    def owns_short_id(self, peer: Peer) -> bool:
        if peer.short_id is None:
            return False
        claimants = self._short_ids.get(peer.short_id)
        return claimants is not None and min(claimants) == peer.name

    def take_changes(self) -> dict[PeerName, set[PeerName] | None]:
        """The entries that changed (or came or went) since the last call.

        Each with the remote peers whose connections changed, or None if
        anything may have: routes update their graphs from this.
        """
        changes, self._changes = self._changes, {}
        return changes

    def _changed(self, name: PeerName, remotes: Iterable[PeerName] | None = None) -> None:
        if remotes is None:
            self._changes[name] = None
        elif name not in self._changes:
            self._changes[name] = set(remotes)
        elif (known := self._changes[name]) is not None:
            known.update(remotes)
        self.generation += 1

    # --- our own entry ------------------------------------------------------

    def bump(self, remotes: Iterable[PeerName] | None = None) -> None:
        """Our entry changed: a new version, so that it wins over the old one."""
        self.ourself.version += 1
        self._changed(self.ourself.name, remotes)

    def set_connection(self, remote: PeerName, summary: ConnectionSummary) -> None:
        self.ourself.set_connection(remote, summary)
        self._dirty.add(remote)
        self.bump((remote,))

    def remove_connection(self, remote: PeerName) -> bool:
        if not self.ourself.remove_connection(remote):
            return False
        self._dirty.add(remote)
        self.bump((remote,))
        return True

    def own_broadcast(self) -> bytes | None:
        """Our entry's change since the last call, as a payload to broadcast.

        A DELTA when that is smaller than the whole entry (and there was a
        previous broadcast to be the delta's base), else an UPDATE; None if
        the entry did not change.
        """
        ourself = self.ourself
        base = self._broadcast_base
        if base == ourself.version:
            return None
        if base is not None and 2 * len(self._dirty) <= len(ourself.conns) + 1:
            changed: list[Any] = []
            removed = []
            for remote in self._dirty:
                link = ourself.conns.get(remote)
                if link is None:
                    removed.append(remote)
                else:
                    changed += (remote, *link)
            payload = pack(
                [
                    DELTA,
                    ourself.name,
                    ourself.uid,
                    base,
                    ourself.version,
                    ourself.nickname,
                    -1 if ourself.short_id is None else ourself.short_id,
                    changed,
                    removed,
                ]
            )
        else:
            payload = self.encode_update([ourself.name])[0]
        self._broadcast_base = ourself.version
        self._dirty.clear()
        return payload

    def add_neighbour(
        self, name: PeerName, nickname: str, uid: PeerUID, short_id: ShortID
    ) -> tuple[Peer, bool]:
        """The entry of a peer we just connected to, made from its HELLO if new.

        Returns (peer, restarted): restarted if we knew an earlier incarnation.
        A new entry gets version 0, so that the peer's own entry replaces it
        as soon as it arrives.
        """
        peer = self.peers.get(name)
        if peer is None or peer.placeholder:
            if peer is not None:
                self._index_remove(peer)
            peer = Peer(name, nickname, uid, 0, short_id)
            self.peers[name] = peer
            self._index_add(peer)
            self._changed(name)
            self._notify_short_ids()
            return peer, False
        return peer, peer.uid != uid

    # --- merging ------------------------------------------------------------

    def apply_update(self, entries: Iterable[RawEntry]) -> ApplyResult:
        """Merge entries; `MalformedMessage` if one that is used does not decode."""
        result = ApplyResult()
        ourself = self.ourself
        for raw in entries:
            result.received.add(raw.name)
            if raw.name == ourself.name:
                self._about_ourself(raw.uid, raw.version, result)
                continue
            current = self.peers.get(raw.name)
            if (
                current is not None
                and not current.placeholder
                and ((raw.version, raw.uid) <= current.rank())
            ):
                continue
            if current is None and self._forgotten_entry(raw.name, raw.uid, raw.version):
                continue  # stale: unless a peer we know connects to it again
            entry = _decode_entry(raw)
            self._store(entry, current, entry.conns, None, result)
        if self.resolve_short_id():
            result.ourself_changed = True
        self._notify_short_ids()
        return result

    def apply_delta(self, delta: Delta) -> ApplyResult:
        result = ApplyResult(received={delta.name})
        if delta.name == self.ourself.name:
            self._about_ourself(delta.uid, delta.version, result)
            return result
        current = self.peers.get(delta.name)
        if (
            current is not None
            and not current.placeholder
            and ((delta.version, delta.uid) <= current.rank())
        ):
            return result  # we have this version, or a newer one
        if current is None or current.uid != delta.uid or current.version != delta.base:
            result.behind.add(delta.name)
            return result
        conns = dict(current.conns)
        conns.update(delta.changed)
        for remote in delta.removed:
            conns.pop(remote, None)
        entry = Peer(delta.name, delta.nickname, delta.uid, delta.version, delta.short_id, conns)
        self._store(entry, current, delta.changed, [*delta.changed, *delta.removed], result)
        if self.resolve_short_id():
            result.ourself_changed = True
        self._notify_short_ids()
        return result

    def _about_ourself(self, uid: int, version: int, result: ApplyResult) -> None:
        if uid != self.ourself.uid and version >= self.ourself.version:
            # Gossip about a previous incarnation of ours: jump past it.
            self.ourself.version = version + 1
            self._changed(self.ourself.name)
            result.ourself_changed = True

    def _store(
        self,
        entry: Peer,
        current: Peer | None,
        mentioned: Iterable[PeerName],
        changed_remotes: Iterable[PeerName] | None,
        result: ApplyResult,
    ) -> None:
        """Put ``entry`` in place of ``current``, with placeholders for the peers it
        mentions that we have never heard of, so that routes can go through them
        until their own entries come."""
        if current is not None:
            self._index_remove(current)
        self.peers[entry.name] = entry
        self._index_add(entry)
        self._changed(entry.name, changed_remotes)
        result.improved.add(entry.name)
        for remote in mentioned:
            if remote not in self.peers:
                self.peers[remote] = Peer(remote)
                self._changed(remote)

    def garbage_collect(
        self, reachable: Collection[PeerName], keep: Collection[PeerName]
    ) -> list[Peer]:
        """Forget the peers neither reachable from us nor connected to us."""
        removed = [
            peer
            for name, peer in self.peers.items()
            if name not in reachable and name not in keep and name != self.ourself.name
        ]
        now = time.monotonic()
        self._forgotten = {
            name: f for name, f in self._forgotten.items() if now - f[2] < FORGET_MEMORY
        }
        for peer in removed:
            del self.peers[peer.name]
            if not peer.placeholder:
                self._forgotten[peer.name] = (peer.uid, peer.version, now)
            self._packed.pop(peer.name, None)
            self._index_remove(peer)
            self._changed(peer.name)
        if removed:
            # A peer that left may have held a short ID we wanted.
            self.resolve_short_id()
            self._notify_short_ids()
            for peer in removed:
                for callback in self.on_gc:
                    callback(peer)
        return removed

    def _forgotten_entry(self, name: PeerName, uid: int, version: int) -> bool:
        """Whether this is an entry we forgot lately (or an older one of the same run),
        and still nobody we know connects to it. A new run of the peer (another UID),
        a newer version, or a peer of ours connecting to it is news again."""
        forgotten = self._forgotten.get(name)
        if forgotten is None:
            return False
        old_uid, old_version, when = forgotten
        if time.monotonic() - when >= FORGET_MEMORY:
            del self._forgotten[name]
            return False
        if uid != old_uid or version > old_version:
            return False
        return not any(name in peer.conns for peer in self.peers.values())

    # --- short IDs ----------------------------------------------------------

    def _index_add(self, peer: Peer) -> None:
        if peer.short_id is None:
            return
        claimants = self._short_ids.setdefault(peer.short_id, set())
        before = min(claimants) if claimants else None
        claimants.add(peer.name)
        if min(claimants) != before:
            self._short_ids_dirty = True

    def _index_remove(self, peer: Peer) -> None:
        if peer.short_id is None:
            return
        claimants = self._short_ids.get(peer.short_id)
        if not claimants or peer.name not in claimants:
            return
        before = min(claimants)
        claimants.discard(peer.name)
        if not claimants:
            del self._short_ids[peer.short_id]
            self._short_ids_dirty = True
        elif min(claimants) != before:
            self._short_ids_dirty = True

    def resolve_short_id(self) -> bool:
        """Pick a new short ID if a peer with a lower name claims ours; True if we moved."""
        ourself = self.ourself
        assert ourself.short_id is not None
        claimants = self._short_ids.get(ourself.short_id, set())
        if min(claimants, default=ourself.name) == ourself.name:
            return False
        free = self._free_short_id()
        if free is None:
            # All 4096 taken: keep ours (secondary) and try again after a GC.
            return False
        old = ourself.short_id
        self._index_remove(ourself)
        ourself.short_id = free
        self._index_add(ourself)
        self.bump()
        log.info("short ID %d is taken by a peer with a lower name; now using %d", old, free)
        return True

    def _free_short_id(self) -> ShortID | None:
        for _ in range(16):  # usually the first guess is free
            guess = ShortID(secrets.randbelow(SHORT_ID_COUNT))
            if guess not in self._short_ids:
                return guess
        free = [ShortID(i) for i in range(SHORT_ID_COUNT) if ShortID(i) not in self._short_ids]
        return secrets.choice(free) if free else None

    def _notify_short_ids(self) -> None:
        if self._short_ids_dirty:
            self._short_ids_dirty = False
            for callback in self.on_short_ids_changed:
                callback()

    # --- encoding -----------------------------------------------------------

    def _packed_entry(self, peer: Peer) -> bytes:
        cached = self._packed.get(peer.name)
        if cached is not None and cached[0] == peer.version and cached[1] == peer.uid:
            return cached[2]
        remotes, addresses, flags = peer.links()
        flat: list[Any] = [None] * (3 * len(remotes))
        flat[0::3], flat[1::3], flat[2::3] = remotes, addresses, flags
        data = pack(
            [
                peer.name,
                peer.nickname,
                peer.uid,
                peer.version,
                -1 if peer.short_id is None else peer.short_id,
                flat,
            ]
        )
        self._packed[peer.name] = (peer.version, peer.uid, data)
        return data

    def encode_update(self, names: Iterable[PeerName], kind: int = UPDATE) -> list[bytes]:
        """UPDATE (or JOIN) payloads carrying the current entries of ``names``."""
        entries = [
            self._packed_entry(peer)
            for name in names
            if (peer := self.peers.get(name)) is not None and not peer.placeholder
        ]
        payloads = []
        start = 0
        while start < len(entries):
            size, end = 0, start
            while end < len(entries) and (end == start or size + len(entries[end]) <= UPDATE_CHUNK):
                size += len(entries[end])
                end += 1
            payloads.append(_payload(kind, entries[start:end]))
            start = end
        return payloads

    def encode_digest(self) -> bytes:
        if self._digest is not None and self._digest[0] == self.generation:
            return self._digest[1]
        flat: list[int] = []
        for peer in self.peers.values():
            if not peer.placeholder:
                flat += (peer.name, peer.uid, peer.version)
        data = pack([DIGEST, flat])
        self._digest = (self.generation, data)
        return data

    def compare_digest(self, flat: list[int]) -> tuple[set[PeerName], set[PeerName], bool]:
        """(names we have newer, names they have newer, our version moved)."""
        newer_here: set[PeerName] = set()
        newer_there: set[PeerName] = set()
        seen: set[PeerName] = set()
        ourself = self.ourself
        moved = False
        for i in range(0, len(flat), 3):
            name, uid, version = PeerName(flat[i]), flat[i + 1], flat[i + 2]
            seen.add(name)
            if name == ourself.name:
                if uid != ourself.uid and version >= ourself.version:
                    ourself.version = version + 1
                    self._changed(ourself.name)
                    moved = True
                if (version, uid) != ourself.rank():
                    newer_here.add(name)
                continue
            peer = self.peers.get(name)
            if peer is None or peer.placeholder or (version, uid) > peer.rank():
                newer_there.add(name)
            elif (version, uid) < peer.rank():
                newer_here.add(name)
        for name, peer in self.peers.items():
            if name not in seen and not peer.placeholder:
                newer_here.add(name)
        return newer_here, newer_there, moved


def _payload(kind: int, packed_items: list[bytes]) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    head: bytes = (
        packer.pack_array_header(2)
        + packer.pack(kind)
        + packer.pack_array_header(len(packed_items))
    )
    return head + b"".join(packed_items)


def decode_payload(data: bytes) -> tuple[int, Any]:
    """A topology payload -> (kind, checked content); `MalformedMessage` if invalid.

    UPDATE, JOIN -> list[RawEntry]; DIGEST -> flat [name, uid, version, ...];
    REQUEST -> list of names; DELTA -> Delta.
    """
    obj = unpack(data, "topology payload")
    if type(obj) is not list or len(obj) < 2 or type(obj[0]) is not int:
        raise MalformedMessage("invalid topology payload")
    kind = obj[0]
    if kind in (UPDATE, JOIN):
        entries = check_list(obj[1], "topology entries", MAX_ENTRIES)
        return kind, [_decode_header(e) for e in entries]
    if kind == DIGEST:
        flat = check_list(obj[1], "topology digest", 3 * MAX_ENTRIES)
        if len(flat) % 3:
            raise MalformedMessage("invalid topology digest length")
        for i in range(0, len(flat), 3):
            check_name(flat[i])
            check_int(flat[i + 1], "peer UID", 1, UID_MAX)
            check_int(flat[i + 2], "peer version")
        return DIGEST, flat
    if kind == REQUEST:
        names = check_list(obj[1], "topology request", MAX_ENTRIES)
        return REQUEST, [check_name(n) for n in names]
    if kind == DELTA:
        return DELTA, _decode_delta(obj)
    raise MalformedMessage(f"unknown topology payload kind {kind}")


def _decode_header(entry: Any) -> RawEntry:
    fields = check_list(entry, "topology entry")
    if len(fields) < 6:
        raise MalformedMessage("invalid topology entry: too few fields")
    return RawEntry(
        check_name(fields[0]),
        PeerUID(check_int(fields[2], "peer UID", 1, UID_MAX)),
        check_int(fields[3], "peer version"),
        fields,
    )


def _decode_conns(value: Any, name: PeerName) -> Conns:
    """Flat [remote, address, flags, ...] -> checked connections."""
    flat = check_list(value, "connections", 3 * MAX_CONNECTIONS)
    if len(flat) % 3:
        raise MalformedMessage("invalid connections length")
    remotes, addresses, flags = flat[0::3], flat[1::3], flat[2::3]
    # Checked with C-speed builtins, not per element in Python: see peer.py.
    if remotes and (
        not {type(r) for r in remotes} <= {int}
        or min(remotes) < 0
        or max(remotes) > NAME_MAX
        or not {type(a) for a in addresses} <= {str}
        or max(map(len, addresses)) > MAX_ADDRESS
        or not {type(f) for f in flags} <= {int}
        or min(flags) < 0
        or max(flags) > 255
    ):
        raise MalformedMessage(f"invalid connections of peer {format_peer_name(name)}")
    conns = dict(zip(remotes, zip(addresses, flags, strict=True), strict=True))
    if name in conns or len(conns) != len(remotes):
        raise MalformedMessage(
            f"peer {format_peer_name(name)} lists itself or a peer twice in its connections"
        )
    return conns


def _decode_entry(raw: RawEntry) -> Peer:
    fields = raw.fields
    short_id = check_int(fields[4], "short ID", -1, SHORT_ID_COUNT - 1)
    return Peer(
        name=raw.name,
        nickname=check_str(fields[1], "nickname", MAX_NICKNAME),
        uid=raw.uid,
        version=raw.version,
        short_id=None if short_id < 0 else ShortID(short_id),
        conns=_decode_conns(fields[5], raw.name),
    )


def _decode_delta(obj: list[Any]) -> Delta:
    if len(obj) < 9:
        raise MalformedMessage("invalid topology delta: too few fields")
    name = check_name(obj[1])
    base = check_int(obj[3], "peer version")
    version = check_int(obj[4], "peer version")
    if version <= base:
        raise MalformedMessage("invalid topology delta: version not after its base")
    short_id = check_int(obj[6], "short ID", -1, SHORT_ID_COUNT - 1)
    removed = [check_name(r) for r in check_list(obj[8], "removed connections", MAX_CONNECTIONS)]
    return Delta(
        name=name,
        uid=PeerUID(check_int(obj[2], "peer UID", 1, UID_MAX)),
        base=base,
        version=version,
        nickname=check_str(obj[5], "nickname", MAX_NICKNAME),
        short_id=None if short_id < 0 else ShortID(short_id),
        changed=_decode_conns(obj[7], name),
        removed=removed,
    )


# --- the topology's gossip channel ------------------------------------------


class TopologyGossipData:
    """Topology to send: entries (by name), requests and a digest.

    Holds names, not entries: encoding happens when the message leaves, so a
    connection that was busy sends the entries as they are then, not as
    they were when queued.
    """

    __slots__ = ("digest", "join", "raw", "request", "topology", "update")

    def __init__(
        self,
        topology: Topology,
        *,
        update: Iterable[PeerName] = (),
        request: Iterable[PeerName] = (),
        digest: bool = False,
        raw: Iterable[bytes] = (),
        join: bool = False,
    ) -> None:
        self.topology = topology
        self.update = set(update)
        self.request = set(request)
        self.digest = digest
        self.raw = list(raw)  # payloads relayed as they came (deltas), in order
        self.join = join  # the update is a new neighbour's full topology

    def encode(self) -> list[bytes]:
        payloads = []
        if self.request:
            payloads.append(pack([REQUEST, sorted(self.request)]))
        payloads += self.raw
        if self.update:
            payloads += self.topology.encode_update(self.update, JOIN if self.join else UPDATE)
        if self.digest:
            payloads.append(self.topology.encode_digest())
        return payloads

    def merge(self, other: GossipData) -> GossipData:
        assert isinstance(other, TopologyGossipData)
        self.update |= other.update
        self.request |= other.request
        self.digest = self.digest or other.digest
        self.join = self.join or other.join
        self.raw += other.raw
        return self


class TopologyGossiper:
    """The `Gossiper` of the topology channel (see the module's docstring).

    ``changed(result, spread)`` tells the node what an update did; ``spread``
    asks it to broadcast the news, which came from one neighbour only.
    """

    # Ask an owner for its whole entry at most this often (a delta we can't
    # apply may be followed by others we can't apply either).
    REQUEST_INTERVAL = 2.0

    def __init__(self, topology: Topology, changed: Callable[[ApplyResult, bool], None]) -> None:
        self.topology = topology
        self._changed = changed
        self.channel: GossipChannel | None = None  # set once the channel exists
        # Per broadcast source: the version of its own entry we relayed last.
        self._relayed: dict[PeerName, tuple[int, int]] = {}
        self._requested: dict[PeerName, float] = {}

    def data(self, **kwargs: Any) -> TopologyGossipData:
        return TopologyGossipData(self.topology, **kwargs)

    def _first_relay(self, src: PeerName, rank: tuple[int, int]) -> bool:
        """True the first time we see this version of ``src``'s entry on its tree."""
        if self._relayed.get(src, (-1, 0)) >= rank:
            return False
        self._relayed[src] = rank
        return True

    def on_gossip_unicast(self, src: PeerName, msg: bytes) -> None:
        kind, content = decode_payload(msg)
        assert self.channel is not None
        if kind == REQUEST:
            for payload in self.topology.encode_update(content):
                self._unicast(src, payload)
        elif kind == UPDATE:
            self._changed(self.topology.apply_update(content), False)
        else:
            raise MalformedMessage("unexpected topology unicast")

    def _unicast(self, dst: PeerName, payload: bytes) -> None:
        assert self.channel is not None
        # No route: routes are in flux, and the digests repair what this would have.
        with contextlib.suppress(NoRouteError):
            self.channel.gossip_unicast(dst, payload)

    def on_gossip_broadcast(self, src: PeerName, update: bytes) -> GossipData | None:
        kind, content = decode_payload(update)
        if kind == DELTA:
            delta: Delta = content
            if delta.name != src:
                raise MalformedMessage("a topology delta must come from the peer it describes")
            result = self.topology.apply_delta(delta)
            self._changed(result, False)
            if result.behind:
                self._request(src)
            # Relayed as it came, even if we could not apply it: our
            # children on src's tree may hold its base.
            if self._first_relay(src, (delta.version, delta.uid)):
                return self.data(raw=[update])
            return None
        if kind != UPDATE:
            raise MalformedMessage("a topology broadcast must be an UPDATE or a DELTA")
        result = self.topology.apply_update(content)
        self._changed(result, False)
        relay = result.improved - {src}
        peer = self.topology.peers.get(src)
        if src in result.received and peer is not None and self._first_relay(src, peer.rank()):
            relay.add(src)
        return self.data(update=relay) if relay else None

    def _request(self, owner: PeerName) -> None:
        now = time.monotonic()
        if now - self._requested.get(owner, -1e9) < self.REQUEST_INTERVAL:
            return
        self._requested[owner] = now
        self._unicast(owner, pack([REQUEST, [owner]]))

    def gossip(self) -> GossipData | None:
        return self.data(digest=True)

    def on_gossip(self, src: PeerName, msg: bytes) -> GossipData | None:
        kind, content = decode_payload(msg)
        assert self.channel is not None
        if kind == JOIN:
            # The other side of a join: everyone on ours should hear it.  The
            # node broadcasts it with its own entry, whose connection to that
            # neighbour is what makes the news reachable (see MeshNode._settle).
            self._changed(self.topology.apply_update(content), True)
        elif kind == UPDATE:  # a repair: ours only
            self._changed(self.topology.apply_update(content), False)
        elif kind == DIGEST:
            newer_here, newer_there, moved = self.topology.compare_digest(content)
            if moved:
                self._changed(ApplyResult(ourself_changed=True), False)
            if newer_here or newer_there:
                self.channel.send_down(src, self.data(update=newer_here, request=newer_there))
        elif kind == REQUEST:
            self.channel.send_down(src, self.data(update=content))
        else:
            raise MalformedMessage("a topology delta must be broadcast")
        return None

    def forget(self, name: PeerName) -> None:
        """A peer was garbage-collected: drop what we remember of it."""
        self._relayed.pop(name, None)
        self._requested.pop(name, None)

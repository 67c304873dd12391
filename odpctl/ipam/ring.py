"""The ring: who owns which part of the range, as a CRDT.

The range ``[start, end)`` is cut at tokens; the entry at a token says which
peer owns the addresses from it up to the next token (the last one up to
``end``; the first token is always ``start``).  Only an entry's owner
changes it (to give space away, or to report how much is free in it), each
time with a higher version; new tokens are only made by an owner cutting its
own range.  Merging two rings keeps every token, and at each token the entry
that is greatest in (version, peer, free): a join of a lattice, so merging is
commutative, associative and idempotent, and replicas that have seen the
same updates, in any order, hold the same ring.

A ring is made once, from a list of peers (given as seeds, or agreed by
Paxos): every peer that makes it from the same list makes the same entries.
Rings made from different lists (or over different ranges) never merge: the
mismatch is refused with a reason (Weave Net's users met it as silent
address clashes).

``removals`` records who takes over a dead peer's ranges (``odpctl ipam
rmpeer``): a lease merged by its greatest (counter, taker, done), so that
two hosts running rmpeer for the same peer see each other and one stands
back.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from odpctl.errors import DecodeError
from odpctl.mesh.names import PeerName, format_peer_name

from .addr import format_ip
from .errors import Refused


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    version: int
    peer: PeerName
    free: int

    def bumped(self, **changes: int) -> Entry:
        return Entry(
            self.version + 1,
            PeerName(changes.get("peer", self.peer)),
            changes.get("free", self.free),
        )


@dataclass(frozen=True, slots=True, order=True)
class Removal:
    """``taker`` is taking (``done``: took) the ranges of a dead peer."""

    counter: int
    taker: PeerName
    done: bool = False


class Ring:
    def __init__(self, start: int, end: int) -> None:
        if not 0 <= start < end <= 1 << 32:
            raise ValueError(f"bad range [{start}, {end})")
        self.start = start
        self.end = end
        self.seeds: tuple[PeerName, ...] = ()
        self.tokens: list[int] = []
        self.entries: dict[int, Entry] = {}
        self.removals: dict[PeerName, Removal] = {}
        # What we changed ourselves since `take_touched`: what we announce.
        self.touched: set[int] = set()
        self.touched_removals: set[PeerName] = set()
        self.partial = False  # decoded from a delta: some entries only, seeds by digest
        self.digest = 0  # of the seeds, as a delta gives them
        self._owned: dict[PeerName, list[tuple[int, int]]] = {}  # cache; any change clears

    # --- reading ---------------------------------------------------------------

    @property
    def made(self) -> bool:
        return bool(self.seeds)

    def ranges(self) -> Iterator[tuple[int, int, int, Entry]]:
        """(token, from, to, entry) for every entry, in address order."""
        tokens = self.tokens
        for i, token in enumerate(tokens):
            upto = tokens[i + 1] if i + 1 < len(tokens) else self.end
            yield token, token, upto, self.entries[token]

    def owned(self, peer: PeerName) -> list[tuple[int, int]]:
        """The ranges ``peer`` owns, adjacent ones joined."""
        cached = self._owned.get(peer)
        if cached is None:
            cached = self._owned[peer] = self._find_owned(peer)
        return list(cached)

    def _find_owned(self, peer: PeerName) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for _, lo, hi, entry in self.ranges():
            if entry.peer != peer:
                continue
            if out and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
        return out

    def owner(self, addr: int) -> PeerName | None:
        if not self.tokens or not self.start <= addr < self.end:
            return None
        i = bisect.bisect_right(self.tokens, addr) - 1
        return self.entries[self.tokens[i]].peer

    def owned_counts(self) -> dict[PeerName, int]:
        counts: dict[PeerName, int] = {}
        for _, lo, hi, entry in self.ranges():
            counts[entry.peer] = counts.get(entry.peer, 0) + hi - lo
        return counts

    def free_counts(self) -> dict[PeerName, int]:
        """What each owner last reported free."""
        counts: dict[PeerName, int] = {}
        for _, _, _, entry in self.ranges():
            counts[entry.peer] = counts.get(entry.peer, 0) + entry.free
        return counts

    def peers(self) -> set[PeerName]:
        return {entry.peer for entry in self.entries.values()}

    def choose_donor(
        self, ourself: PeerName, alive: set[PeerName], rng: random.Random
    ) -> PeerName | None:
        """A live peer to ask for space, drawn with weights its free counts."""
        counts = [
            (peer, free)
            for peer, free in sorted(self.free_counts().items())
            if peer != ourself and peer in alive and free > 0
        ]
        if not counts:
            return None
        chosen: PeerName = rng.choices([p for p, _ in counts], weights=[w for _, w in counts])[0]
        return chosen

    # --- changing (by the owner) ---------------------------------------------------

    def make(self, peers: Iterable[PeerName]) -> None:
        """Split the range evenly among ``peers``: the same ring wherever it is made."""
        seeds = tuple(sorted(set(peers)))
        if not seeds:
            raise ValueError("a ring needs at least one peer")
        size = self.end - self.start
        share, extra = divmod(size, len(seeds))
        token = self.start
        for i, peer in enumerate(seeds):
            width = share + (1 if i < extra else 0)
            if width == 0:
                break
            # Not news to announce: every peer makes the same ring itself.
            self.entries[token] = Entry(0, peer, width)
            self.tokens.append(token)
            token += width
        self._owned.clear()
        self.seeds = seeds

    def grant(self, lo: int, hi: int, frm: PeerName, to: PeerName) -> None:
        """``frm`` gives ``[lo, hi)``, inside one range of its own, to ``to``."""
        i = bisect.bisect_right(self.tokens, lo) - 1
        if i < 0 or not lo < hi:
            raise ValueError(f"grant of [{lo}, {hi}): outside the ring")
        token = self.tokens[i]
        entry = self.entries[token]
        upto = self.tokens[i + 1] if i + 1 < len(self.tokens) else self.end
        if entry.peer != frm or hi > upto:
            raise ValueError(f"grant of [{lo}, {hi}): not one range of {format_peer_name(frm)}")
        if hi < upto:
            # The rest of the range stays ours, under a token of its own.
            self._put(hi, Entry(entry.version + 1, frm, 0))
        if lo == token:
            self._put(token, entry.bumped(peer=to, free=0))
        else:
            self._put(token, entry.bumped())
            self._put(lo, Entry(entry.version + 1, to, 0))

    def transfer(self, frm: PeerName, to: PeerName) -> int:
        """Every entry of ``frm`` becomes ``to``'s; how many addresses moved."""
        moved = 0
        for token, lo, hi, entry in list(self.ranges()):
            if entry.peer == frm:
                self._put(token, entry.bumped(peer=to))
                moved += hi - lo
        return moved

    def report_free(self, peer: PeerName, free: dict[int, int]) -> bool:
        """``peer``'s free counts by token; whether any changed."""
        changed = False
        for token, count in free.items():
            entry = self.entries.get(token)
            if entry is not None and entry.peer == peer and entry.free != count:
                self._put(token, entry.bumped(free=count))
                changed = True
        return changed

    def lease(self, victim: PeerName, removal: Removal, *, ours: bool = True) -> None:
        self.removals[victim] = removal
        if ours:
            self.touched_removals.add(victim)

    def _put(self, token: int, entry: Entry, *, ours: bool = True) -> None:
        if token not in self.entries:
            bisect.insort(self.tokens, token)
        self.entries[token] = entry
        if ours:
            self.touched.add(token)
        self._owned.clear()

    # --- merging -------------------------------------------------------------------

    def check_compatible(self, other: Ring, who: str) -> None:
        """Refuse a ring we must never merge, saying why."""
        if (other.start, other.end) != (self.start, self.end):
            raise Refused(
                f"{who} allocates from {describe(other.start, other.end)}, "
                f"we from {describe(self.start, self.end)}",
                hint="give every router the same --ipalloc-range",
            )
        if self.made and other.partial and other.digest != seeds_digest(self.seeds):
            raise Refused(
                f"{who}'s ring was made for other peers than ours "
                f"({_names(self.seeds)}): two clusters bootstrapped apart",
                hint="give every router the same --ipalloc-init, or reset one side",
            )
        if self.made and other.made and other.seeds != self.seeds:
            raise Refused(
                f"{who}'s ring was made for peers {_names(other.seeds)}, ours for "
                f"{_names(self.seeds)}: two clusters bootstrapped apart",
                hint="give every router the same --ipalloc-init, or reset one side",
            )

    def merge(self, other: Ring) -> bool:
        """Merge ``other`` in (it must be compatible); whether anything changed."""
        changed = False
        if other.made and not self.made:
            self.seeds = other.seeds
            changed = True
        for token, entry in other.entries.items():
            mine = self.entries.get(token)
            if mine is None or entry > mine:
                self._put(token, entry, ours=False)
                changed = True
        for victim, removal in other.removals.items():
            mine_r = self.removals.get(victim)
            if mine_r is None or removal > mine_r:
                self.lease(victim, removal, ours=False)
                changed = True
        return changed

    def take_touched(self) -> tuple[set[int], set[PeerName]]:
        """The tokens and removals changed since the last call."""
        touched = (self.touched, self.touched_removals)
        self.touched, self.touched_removals = set(), set()
        return touched

    def copy(self) -> Ring:
        ring = Ring(self.start, self.end)
        ring.merge(self)
        return ring

    # --- encoding ------------------------------------------------------------------

    def encode(self) -> dict[str, Any]:
        return self._encode(self.tokens, sorted(self.removals))

    def encode_partial(self, tokens: Iterable[int], victims: Iterable[PeerName]) -> dict[str, Any]:
        """These entries and removals only, and the seeds by their digest: a delta."""
        return {
            **self._encode(sorted(tokens), sorted(victims)),
            "seeds": [],
            "partial": True,
            "digest": seeds_digest(self.seeds),
        }

    def _encode(self, tokens: Iterable[int], victims: Iterable[PeerName]) -> dict[str, Any]:
        entries = [(t, self.entries[t]) for t in tokens]
        removals = [(v, self.removals[v]) for v in victims]
        return {
            "start": self.start,
            "end": self.end,
            "seeds": list(self.seeds),
            "entries": [[t, e.peer, e.version, e.free] for t, e in entries],
            "removals": [[v, r.counter, r.taker, r.done] for v, r in removals],
        }

    @classmethod
    def decode(cls, data: Any) -> Ring:
        """A ring from its encoding; `DecodeError` for anything malformed or hostile."""
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            ring = cls(_int(data["start"]), _int(data["end"]))
            ring.seeds = tuple(PeerName(_int(p)) for p in _list(data["seeds"]))
            for item in _list(data["entries"]):
                token, peer, version, free = (_int(x) for x in _list(item, 4))
                if not ring.start <= token < ring.end or token in ring.entries:
                    raise ValueError(f"bad token {token}")
                ring._put(token, Entry(version, PeerName(peer), free))
            for item in _list(data["removals"]):
                victim, counter, taker, done = _list(item, 4)
                ring.removals[PeerName(_int(victim))] = Removal(
                    _int(counter), PeerName(_int(taker)), bool(done)
                )
            ring.partial = data.get("partial") is True
            if ring.partial:
                ring.digest = _int(data.get("digest"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"malformed IPAM ring: {exc}") from None
        if ring.tokens and ring.tokens[0] != ring.start and not ring.partial:
            raise DecodeError("malformed IPAM ring: no entry at the start of the range")
        if ring.tokens and not ring.seeds and not ring.partial:
            raise DecodeError("malformed IPAM ring: entries but no seeds")
        return ring

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ring) and self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]


def seeds_digest(seeds: Iterable[PeerName]) -> int:
    data = b"".join(p.to_bytes(6, "big") for p in seeds)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def describe(start: int, end: int) -> str:
    return f"{format_ip(start)}-{format_ip(end - 1)}"


def _names(peers: Iterable[PeerName]) -> str:
    return ",".join(format_peer_name(p) for p in peers)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise ValueError(f"expected a small non-negative integer, got {value!r}")
    return value


def _list(value: Any, length: int | None = None) -> list[Any]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise ValueError(f"expected a list{f' of {length}' if length else ''}, got {value!r}")
    return value

"""The DNS records of the mesh: a grow-only map merged by version.

A record says that container ``container`` on peer ``origin`` has address
``address`` under ``hostname``.  Only its origin changes a record, bumping
its version each time; a removed record stays as a tombstone (with the wall
time of its removal) so that the removal travels as far as the record did,
and is collected after `TOMBSTONE_LIFETIME`.

Two copies of a record merge by rank: the higher version wins, and at equal
versions a tombstone wins over a live record (a removal raced with a
re-announcement of the same version).  The rank is a total order, so merging
is commutative, associative and idempotent: every peer ends with the same
map whatever order the gossip came in.

A peer the mesh forgot takes its records with it (nobody can tombstone them
any more); its next gossip brings them back.  Our own records are ours to
say: a copy of one that outranks ours (we restarted without our state) is
answered by our state at a higher version.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from odpctl.mesh.names import PeerName

TOMBSTONE_LIFETIME = 30 * 60.0


class Key(NamedTuple):
    origin: PeerName
    container: str
    address: str
    hostname: str


@dataclass(frozen=True, slots=True)
class Record:
    container: str
    origin: PeerName
    address: str
    hostname: str
    version: int = 1
    tombstone: float = 0.0  # wall time of the removal; 0: live

    @property
    def key(self) -> Key:
        return Key(self.origin, self.container, self.address, self.hostname)

    @property
    def live(self) -> bool:
        return not self.tombstone

    def rank(self) -> tuple[int, bool, float]:
        return (self.version, bool(self.tombstone), self.tombstone)


class Records:
    """Every record this peer knows, with the indexes the server answers from."""

    def __init__(self, ourself: PeerName, clock: Callable[[], float] = time.time) -> None:
        self.ourself = ourself
        self.clock = clock
        self._records: dict[Key, Record] = {}
        self._addresses: dict[str, tuple[str, ...]] = {}  # hostname -> live addresses
        self._names: dict[str, tuple[str, ...]] = {}  # address -> live hostnames
        # Bumped on every change of what a query can see: answer caches key on it.
        self.generation = 0
        self.on_change: list[Callable[[list[Record]], None]] = []

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self._records.values()))

    def all(self) -> list[Record]:
        return sorted(self._records.values(), key=lambda r: (r.hostname, r.address, r.origin))

    def get(self, key: Key) -> Record | None:
        return self._records.get(key)

    def own(self) -> list[Record]:
        return [r for r in self._records.values() if r.origin == self.ourself]

    # --- queries (the server's thread reads these; each value is replaced whole) ---

    def addresses(self, hostname: str) -> tuple[str, ...]:
        return self._addresses.get(hostname, ())

    def names(self, address: str) -> tuple[str, ...]:
        return self._names.get(address, ())

    def shuffled(self, hostname: str) -> list[str]:
        found = list(self._addresses.get(hostname, ()))
        random.shuffle(found)
        return found

    # --- our own records -----------------------------------------------------------

    def add(self, container: str, address: str, hostname: str) -> Record:
        """Announce (or re-announce) one of our records; the record as it now is."""
        key = Key(self.ourself, container, address, hostname)
        old = self._records.get(key)
        if old is not None and old.live:
            return old
        record = Record(
            container, self.ourself, address, hostname, version=old.version + 1 if old else 1
        )
        self._apply([record])
        return record

    def remove(
        self,
        *,
        container: str | None = None,
        hostname: str | None = None,
        address: str | None = None,
    ) -> list[Record]:
        """Tombstone our live records matching every criterion given; those tombstones."""
        now = self.clock()
        doomed = [
            replace(r, version=r.version + 1, tombstone=now)
            for r in self.own()
            if r.live
            and (container is None or r.container == container)
            and (hostname is None or r.hostname == hostname)
            and (address is None or r.address == address)
        ]
        self._apply(doomed)
        return doomed

    def restore(self, records: Iterable[Record]) -> None:
        """Our records as a previous run of this peer left them."""
        self._apply([r for r in records if r.origin == self.ourself])

    # --- merging --------------------------------------------------------------------

    def merge(
        self, records: Iterable[Record], *, known: Callable[[PeerName], bool] | None = None
    ) -> list[Record]:
        """Merge records from elsewhere; the ones that changed ours (to pass on).

        ``known`` tells the origins the mesh knows: records of others are
        dropped (a forgotten peer's, relayed by a peer that has not forgotten it yet).
        """
        changed: dict[Key, Record] = {}
        expired = self.clock() - TOMBSTONE_LIFETIME
        for record in records:
            if record.tombstone and record.tombstone < expired:
                continue  # collected here already, or about to be: not news to anyone
            if record.origin == self.ourself:
                for answer in self._own_copy(record):
                    changed[answer.key] = answer
                    self._records[answer.key] = answer
                continue
            if known is not None and not known(record.origin):
                continue
            old = changed.get(record.key) or self._records.get(record.key)
            if old is None or record.rank() > old.rank():
                changed[record.key] = record
        news = list(changed.values())
        self._apply(news)
        return news

    def _own_copy(self, record: Record) -> list[Record]:
        """A copy of one of our records came back: ours is the truth, at a higher version."""
        ours = self._records.get(record.key)
        if ours is not None and ours.version > record.version:
            return []
        if ours is None:
            if not record.live:
                return [record]  # a removal of ours we had forgotten: keep it till collected
            # Announced by an earlier run of ours and lost since: we do not have it.
            return [replace(record, version=record.version + 1, tombstone=self.clock())]
        if ours.version == record.version and ours.rank() >= record.rank():
            return []
        return [replace(ours, version=record.version + 1)]

    def peer_gone(self, origin: PeerName) -> list[Record]:
        """The mesh forgot ``origin``: its records go (its gossip brings them back)."""
        if origin == self.ourself:
            return []
        gone = [r for r in self._records.values() if r.origin == origin]
        self._drop(gone)
        return gone

    def collect(self, lifetime: float = TOMBSTONE_LIFETIME) -> list[Record]:
        """Forget the tombstones older than ``lifetime``; those collected."""
        limit = self.clock() - lifetime
        old = [r for r in self._records.values() if r.tombstone and r.tombstone < limit]
        self._drop(old)
        return old

    # --- bookkeeping -------------------------------------------------------------------

    def _apply(self, records: list[Record]) -> None:
        if not records:
            return
        for record in records:
            self._records[record.key] = record
        self._reindex(records)

    def _drop(self, records: list[Record]) -> None:
        if not records:
            return
        for record in records:
            self._records.pop(record.key, None)
        self._reindex(records)

    def _reindex(self, records: list[Record]) -> None:
        hostnames = {r.hostname for r in records}
        addresses = {r.address for r in records}
        live = [
            r
            for r in self._records.values()
            if r.live and (r.hostname in hostnames or r.address in addresses)
        ]
        for hostname in hostnames:
            found = tuple(sorted({r.address for r in live if r.hostname == hostname}))
            self._set(self._addresses, hostname, found)
        for address in addresses:
            found = tuple(sorted({r.hostname for r in live if r.address == address}))
            self._set(self._names, address, found)
        self.generation += 1
        for callback in self.on_change:
            callback(records)

    @staticmethod
    def _set(index: dict[str, tuple[str, ...]], key: str, value: tuple[str, ...]) -> None:
        if value:
            index[key] = value
        else:
            index.pop(key, None)

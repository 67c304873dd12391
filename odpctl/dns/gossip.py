"""The DNS records' mesh gossip channel.

A payload is ``[wall time of sending, [record, ...]]``, each record a list
``[container, origin, address, hostname, version, tombstone]``.  Changes
are broadcast as they happen; the whole map goes out with the periodic
gossip and to each new neighbour, which repairs whatever a broadcast missed.

Gossip from a peer whose clock is off by more than `MAX_CLOCK_SKEW` is
refused, with the reason logged: its tombstones would be collected too early
or never (Weave Net #3053).  A payload that does not decode is counted and
logged, and dropped: the rest of the mesh (and the DNS server) carry on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from odpctl.errors import UsageError
from odpctl.mesh.errors import MeshError
from odpctl.mesh.gossip import GossipData
from odpctl.mesh.names import NAME_MAX, PeerName, format_peer_name
from odpctl.mesh.wire import pack, unpack

from .names import normalize_address, normalize_name
from .records import Key, Record, Records

log = logging.getLogger("odpctl.dns")

CHANNEL = "dns"
MAX_CLOCK_SKEW = 60.0
RECORDS_PER_PAYLOAD = 500  # keeps a payload far below the mesh's frame limit
_LOG_EVERY = 60.0  # per peer and reason, at most one warning this often


class MalformedRecords(MeshError):
    """A DNS gossip payload that does not decode to records."""


def encode_record(r: Record) -> list[Any]:
    return [r.container, r.origin, r.address, r.hostname, r.version, r.tombstone]


def _text(value: Any, limit: int) -> str:
    if type(value) is not str or not 0 < len(value) <= limit:
        raise MalformedRecords(
            f"a DNS record's text field is not a string of 1 to {limit} characters"
        )
    return value


def decode_record(item: Any) -> Record:
    if type(item) is not list or len(item) != 6:
        raise MalformedRecords("a DNS record is not a list of 6 fields")
    container, origin, address, hostname, version, tombstone = item
    if type(origin) is not int or not 0 <= origin <= NAME_MAX:
        raise MalformedRecords("a DNS record's origin is not a peer name")
    if type(version) is not int or not 0 < version < 1 << 62:
        raise MalformedRecords("a DNS record's version is not a positive integer")
    if type(tombstone) not in (int, float) or not 0 <= tombstone < 1e11:
        raise MalformedRecords("a DNS record's tombstone is not a time")
    address, hostname = _text(address, 15), _text(hostname, 254)
    try:
        if normalize_address(address) != address or normalize_name(hostname, ".") != hostname:
            raise MalformedRecords("a DNS record's address or name is not in canonical form")
    except UsageError as exc:
        raise MalformedRecords(f"a DNS record is invalid: {exc}") from None
    return Record(
        _text(container, 256), PeerName(origin), address, hostname, version, float(tombstone)
    )


def decode_payload(payload: bytes) -> tuple[float, list[Record]]:
    """``(sender's wall time, records)``; `MalformedRecords` or `MalformedMessage` if bad."""
    doc = unpack(payload, "DNS gossip")
    if type(doc) is not list or len(doc) != 2 or type(doc[1]) is not list:
        raise MalformedRecords("DNS gossip is not [time, [record, ...]]")
    sent = doc[0]
    if type(sent) not in (int, float):
        raise MalformedRecords("DNS gossip carries no sending time")
    return float(sent), [decode_record(item) for item in doc[1]]


class RecordsData:
    """Records to send (`GossipData`): merged with what comes next while queued."""

    __slots__ = ("clock", "records")

    def __init__(self, records: Iterable[Record], clock: Callable[[], float] = time.time) -> None:
        self.records: dict[Key, Record] = {}
        self.clock = clock
        self._take(records)

    def _take(self, records: Iterable[Record]) -> None:
        for record in records:
            mine = self.records.get(record.key)
            if mine is None or record.rank() > mine.rank():
                self.records[record.key] = record

    def encode(self) -> list[bytes]:
        items = [encode_record(r) for r in self.records.values()]
        now = self.clock()
        return [
            pack([now, items[i : i + RECORDS_PER_PAYLOAD]])
            for i in range(0, max(len(items), 1), RECORDS_PER_PAYLOAD)
        ]

    def merge(self, other: GossipData) -> GossipData:
        if not isinstance(other, RecordsData):
            return other
        merged = RecordsData(self.records.values(), self.clock)
        merged._take(other.records.values())
        return merged


class DnsGossiper:
    """The `Gossiper` of the DNS channel, over a `Records`."""

    def __init__(
        self,
        records: Records,
        *,
        known: Callable[[PeerName], bool] | None = None,
        max_skew: float = MAX_CLOCK_SKEW,
    ) -> None:
        self.records = records
        self.known = known
        self.max_skew = max_skew
        self.malformed = 0
        self.refused_skew = 0
        self.last_refusal: str | None = None
        self._logged: dict[tuple[PeerName, str], float] = {}

    def data(self, records: Iterable[Record]) -> RecordsData:
        return RecordsData(records, self.records.clock)

    def on_gossip_unicast(self, src: PeerName, msg: bytes) -> None:
        self._merge(src, msg)

    def on_gossip_broadcast(self, src: PeerName, update: bytes) -> GossipData | None:
        return self._merge(src, update)

    def on_gossip(self, src: PeerName, msg: bytes) -> GossipData | None:
        return self._merge(src, msg)

    def gossip(self) -> GossipData | None:
        everything = list(self.records)
        return self.data(everything) if everything else None

    def _merge(self, src: PeerName, payload: bytes) -> RecordsData | None:
        try:
            sent, records = decode_payload(payload)
        except MeshError as exc:
            self.malformed += 1
            self._warn(src, "malformed", f"DNS gossip from {format_peer_name(src)} dropped: {exc}")
            return None
        skew = sent - self.records.clock()
        if abs(skew) > self.max_skew:
            self.refused_skew += 1
            self.last_refusal = (
                f"DNS gossip from {format_peer_name(src)} refused: its clock is "
                f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} ours "
                f"(at most {self.max_skew:.0f} s allowed; run NTP on both hosts)"
            )
            self._warn(src, "skew", self.last_refusal)
            return None
        changed = self.records.merge(records, known=self.known)
        return self.data(changed) if changed else None

    def _warn(self, src: PeerName, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._logged.get((src, kind), -_LOG_EVERY) >= _LOG_EVERY:
            self._logged[(src, kind)] = now
            log.warning("%s", text)

    def status(self) -> dict[str, Any]:
        return {
            "malformed": self.malformed,
            "refused_clock_skew": self.refused_skew,
            "last_refusal": self.last_refusal,
        }

"""Answers to DNS queries from the mesh's records (no sockets here).

`Answerer.respond` takes a query's bytes and returns the answer's bytes,
`FORWARD` for a name that is not ours, or None for bytes to drop (too short
to answer, or a response).  Everything hostile ends as a FORMERR answer or a
drop, counted.  Answers to UDP queries are kept per query (all but its ID)
until the records change, so that the common query costs a dict lookup; a
name with several addresses keeps a few orders of them, one picked at random
each time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .names import address_of_reverse, in_domain
from .records import Records

FORWARD: Final = "forward"
MIN_UDP = 512
CACHE_MAX = 10_000
ORDERS = 8  # orders of a name's addresses kept for answers from the cache


@dataclass
class Counters:
    queries: int = 0
    local: int = 0
    forwarded: int = 0
    nxdomain: int = 0
    formerr: int = 0
    notimp: int = 0
    refused: int = 0
    truncated: int = 0
    servfail: int = 0
    dropped_malformed: int = 0
    dropped_responses: int = 0
    rate_limited: int = 0
    tcp_connections: int = 0
    tcp_refused: int = 0
    tcp_errors: int = 0
    forward_overload: int = 0
    errors: int = 0
    cache_hits: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Answerer:
    records: Records
    domain: str
    ttl: int = 1
    max_udp: int = 4096  # the EDNS0 payload size we offer
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self._cache: dict[bytes, tuple[bytes, ...]] = {}
        self._generation = -1

    def respond(self, wire: bytes, *, tcp: bool = False) -> bytes | str | None:
        self.counters.queries += 1
        if len(wire) < 12:
            self.counters.dropped_malformed += 1
            return None
        if wire[2] & 0x80:
            self.counters.dropped_responses += 1  # a response, maybe reflected at us
            return None
        if not tcp:
            if self._generation != self.records.generation:
                self._cache.clear()
                self._generation = self.records.generation
            cached = self._cache.get(wire[2:])
            if cached is not None:
                self.counters.cache_hits += 1
                self.counters.local += 1
                if cached[0][1] & 0x0F == dns.rcode.NXDOMAIN:  # the rcode, after the ID
                    self.counters.nxdomain += 1
                # One of the shuffled orders made with the answers: not a secret.
                order = random.choice(cached) if len(cached) > 1 else cached[0]  # noqa: S311
                return wire[:2] + order
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError, UnicodeError):
            return self._header_only(wire, dns.rcode.FORMERR)
        return self._answer(query, wire, tcp)

    def _answer(self, query: dns.message.Message, wire: bytes, tcp: bool) -> bytes | str | None:
        if query.opcode() != dns.opcode.QUERY:
            return self._header_only(wire, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            return self._header_only(wire, dns.rcode.FORMERR)
        if query.edns > 0:
            response = dns.message.make_response(query, our_payload=self.max_udp)
            response.set_rcode(dns.rcode.BADVERS)
            return self._wire(response, query, tcp)
        question = query.question[0]
        qname = question.name.to_text().lower()
        local = self._lookup_name(qname)
        if local is None:
            return FORWARD
        if question.rdclass != dns.rdataclass.IN:
            return self._header_only(wire, dns.rcode.REFUSED)
        self.counters.local += 1
        _hostname, addresses, names = local
        orders = 1
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and len(addresses) > 1:
            orders = ORDERS
        answers = tuple(
            self._local(query, tcp, question.name, question.rdtype, addresses, names)
            for _ in range(orders)
        )
        if not tcp and len(self._cache) < CACHE_MAX:
            self._cache[wire[2:]] = tuple(a[2:] for a in answers)
        return random.choice(answers)  # noqa: S311 - an order to spread load, not a secret

    def _lookup_name(self, qname: str) -> tuple[str, list[str], tuple[str, ...]] | None:
        """``(hostname, addresses, reverse names)`` if ``qname`` is ours to answer."""
        if qname.count(".") == 1 and qname != ".":
            qname = qname + self.domain  # a single label: a container's name
        if in_domain(qname, self.domain):
            return qname, list(self.records.addresses(qname)), ()
        address = address_of_reverse(qname)
        if address is not None and (names := self.records.names(address)):
            return qname, [], names
        return None

    def _local(
        self,
        query: dns.message.Message,
        tcp: bool,
        owner: dns.name.Name,
        rdtype: int,
        addresses: list[str],
        names: tuple[str, ...],
    ) -> bytes:
        response = dns.message.make_response(query, our_payload=self.max_udp)
        response.flags |= dns.flags.AA | dns.flags.RA
        if addresses:
            random.shuffle(addresses)
            if rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                response.answer.append(
                    dns.rrset.from_text_list(
                        owner, self.ttl, dns.rdataclass.IN, dns.rdatatype.A, addresses
                    )
                )
        elif names:
            if rdtype in (dns.rdatatype.PTR, dns.rdatatype.ANY):
                response.answer.append(
                    dns.rrset.from_text_list(
                        owner, self.ttl, dns.rdataclass.IN, dns.rdatatype.PTR, list(names)
                    )
                )
        else:
            self.counters.nxdomain += 1
            response.set_rcode(dns.rcode.NXDOMAIN)
        return self._wire(response, query, tcp)

    def _wire(self, response: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
        limit = (
            65535
            if tcp
            else max(MIN_UDP, min(query.payload, self.max_udp) if query.edns >= 0 else MIN_UDP)
        )
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            self.counters.truncated += 1
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)

    def _header_only(self, wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
        """An answer with the query's ID and no sections (the query may not parse)."""
        if rcode == dns.rcode.FORMERR:
            self.counters.formerr += 1
        elif rcode == dns.rcode.NOTIMP:
            self.counters.notimp += 1
        elif rcode == dns.rcode.REFUSED:
            self.counters.refused += 1
        elif rcode == dns.rcode.SERVFAIL:
            self.counters.servfail += 1
        response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
        response.flags = dns.flags.QR | (
            int.from_bytes(wire[2:4], "big") & (dns.flags.RD | 0x7800)
        )  # keep RD and the opcode
        response.set_rcode(rcode)
        return response.to_wire()

    def servfail(self, wire: bytes) -> bytes:
        return self._header_only(wire, dns.rcode.SERVFAIL)

"""The DNS server on loopback: local names, forwarding, truncation, hostile input, floods."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.dns.answer import FORWARD, Answerer
from odpctl.dns.names import DEFAULT_DOMAIN
from odpctl.dns.records import Records
from odpctl.dns.upstream import parse_resolv_conf
from odpctl.mesh.names import PeerName

from .servers import Served, serving

WEB = "web1.odpctl.local."


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    with serving(tmp_path) as s:
        s.add("c1", "10.32.0.1", WEB)
        yield s


def ask(
    s: Served, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    host, port = s.where
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=3)
    return dns.query.udp(query, host, port=port, timeout=3)


def addresses(response: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in response.answer for rd in rrset]


@pytest.mark.parametrize("tcp", [False, True])
def test_a_local_name_over_udp_and_tcp(served: Served, tcp: bool) -> None:
    response = ask(served, WEB, tcp=tcp)
    assert response.rcode() == dns.rcode.NOERROR
    assert addresses(response) == ["10.32.0.1"]
    assert response.answer[0].ttl == 1
    assert response.flags & dns.flags.AA


def test_a_single_label_gets_the_domain(served: Served) -> None:
    response = ask(served, "WEB1.")
    assert addresses(response) == ["10.32.0.1"]


def test_unknown_name_nxdomain_known_name_other_type_empty(served: Served) -> None:
    assert ask(served, "nope.odpctl.local.").rcode() == dns.rcode.NXDOMAIN
    empty = ask(served, WEB, "AAAA")
    assert empty.rcode() == dns.rcode.NOERROR and empty.answer == []


def test_ptr_of_a_local_address(served: Served) -> None:
    response = ask(served, "1.0.32.10.in-addr.arpa.", "PTR")
    assert [rd.to_text() for rd in response.answer[0]] == [WEB]


def test_several_addresses_come_shuffled(served: Served) -> None:
    for i in range(2, 7):
        served.add(f"c{i}", f"10.32.0.{i}", WEB)
    orders = {tuple(addresses(ask(served, WEB))) for _ in range(40)}
    assert all(sorted(o) == [f"10.32.0.{i}" for i in range(1, 7)] for o in orders)
    assert len(orders) > 1


def test_a_removed_name_is_nxdomain_at_once(served: Served) -> None:
    assert addresses(ask(served, WEB)) == ["10.32.0.1"]  # now in the answer cache
    served.lt.call(lambda: served.records.remove(hostname=WEB))
    assert ask(served, WEB).rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("tcp", [False, True])
def test_other_names_are_forwarded_upstream(served: Served, tcp: bool) -> None:
    response = ask(served, "example.org.", tcp=tcp)
    assert addresses(response) == ["192.0.2.1"]
    assert served.upstream.queries == 1


def test_servfail_when_upstreams_fail_and_resolv_conf_reread(served: Served) -> None:
    assert addresses(ask(served, "example.org.")) == ["192.0.2.1"]
    # Nothing listens on 127.0.0.3: after the re-read, every upstream fails.
    served.resolv.write_text("# changed\nnameserver 127.0.0.3\n")
    time.sleep(1.1)
    assert ask(served, "example.org.").rcode() == dns.rcode.SERVFAIL
    assert served.server.status()["upstreams"] == ["127.0.0.3"]
    assert served.server.counters.servfail >= 1


def test_no_upstream_at_all_is_servfail(tmp_path: Path) -> None:
    with serving(tmp_path, upstream_up=False) as s:
        assert ask(s, "example.org.").rcode() == dns.rcode.SERVFAIL


def test_truncation_and_edns_sizes(served: Served) -> None:
    many = "many.odpctl.local."
    for i in range(100):
        served.add(f"m{i}", f"10.33.0.{i}", many)
    plain = ask(served, many)
    assert plain.flags & dns.flags.TC and plain.answer == []
    big = ask(served, many, use_edns=0, payload=4096)
    assert not big.flags & dns.flags.TC and len(addresses(big)) == 100
    assert big.payload == 4096
    small = ask(served, many, use_edns=0, payload=1200)
    assert small.flags & dns.flags.TC
    assert len(addresses(ask(served, many, tcp=True))) == 100
    assert served.server.counters.truncated >= 2


def udp_raw(s: Served, wire: bytes, timeout: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, s.where)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def compression_loop() -> bytes:
    # One question whose name is a pointer to itself (offset 12).
    return struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"


def test_malformed_packets_get_formerr_or_nothing(served: Served) -> None:
    loop = udp_raw(served, compression_loop())
    assert loop is not None
    reply = dns.message.from_wire(loop)
    assert reply.id == 0x4242 and reply.rcode() == dns.rcode.FORMERR
    assert udp_raw(served, b"\x01\x02\x03", timeout=0.3) is None
    garbage = udp_raw(served, b"\x12\x34\x01\x00" + b"\xff" * 40)
    assert garbage is not None and dns.message.from_wire(garbage).rcode() == dns.rcode.FORMERR
    # A response sent to us is not answered (no reflection loops).
    assert udp_raw(served, b"\x12\x34\x81\x80" + b"\x00" * 8, timeout=0.3) is None
    counters = served.server.counters
    assert counters.formerr >= 2 and counters.dropped_malformed >= 1
    assert counters.dropped_responses >= 1
    assert addresses(ask(served, WEB)) == ["10.32.0.1"]


def test_a_64k_tcp_message_and_a_cut_one(served: Served) -> None:
    with socket.create_connection(served.where, timeout=3) as sock:
        sock.sendall(struct.pack("!H", 65535) + b"\x00\x07\x01\x00" + b"\xaa" * 65531)
        (size,) = struct.unpack("!H", sock.recv(2))
        reply = dns.message.from_wire(sock.recv(size))
        assert reply.id == 7 and reply.rcode() == dns.rcode.FORMERR
    with socket.create_connection(served.where, timeout=3) as sock:
        sock.sendall(struct.pack("!H", 500) + b"\x00" * 10)  # and hangs up
    assert addresses(ask(served, WEB, tcp=True)) == ["10.32.0.1"]


def test_a_flood_is_rate_limited_per_source(tmp_path: Path) -> None:
    with serving(tmp_path, rate=50) as s:
        s.add("c1", "10.32.0.1", WEB)
        wire = dns.message.make_query(WEB, "A").to_wire()
        start = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            for _ in range(2000):
                flood.sendto(wire, s.where)
        counters = s.server.counters
        # The whole flood handled (or dropped by the kernel) before another source
        # asks: on a loaded machine that may take seconds.
        deadline, seen = time.monotonic() + 30, -1
        while time.monotonic() < deadline:
            time.sleep(0.3)
            handled = counters.queries + counters.rate_limited
            if handled >= 2000 or handled == seen:
                break
            seen = handled
        elapsed = time.monotonic() - start
        # How many of the 2,000 the server reads at all depends on its socket buffer
        # and the machine's load (the kernel drops the rest): some were refused, and
        # no more were answered than the limit allows.
        assert counters.rate_limited > 0
        # The burst (100) and 50/s for as long as the flood lasted.
        assert counters.queries <= 100 + 50 * elapsed + 10
        # Another source is still answered.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.5", 0))
            other.settimeout(10)
            other.sendto(wire, s.where)
            assert addresses(dns.message.from_wire(other.recv(65535))) == ["10.32.0.1"]


def test_resolv_conf_parsing() -> None:
    text = "# c\nsearch x\nnameserver 10.0.0.1\nnameserver  fe80::1%eth0\nnameserver bad\n"
    assert parse_resolv_conf(text) == ["10.0.0.1", "fe80::1"]


_records = Records(PeerName(1))
_records.add("c1", "10.32.0.1", WEB)
_answerer = Answerer(_records, DEFAULT_DOMAIN)
_valid = [
    dns.message.make_query(n, t).to_wire()
    for n in (WEB, "x.org.", "web1.")
    for t in ("A", "PTR", "AAAA")
]


def check_answer(wire: bytes, tcp: bool) -> None:
    answer = _answerer.respond(wire, tcp=tcp)
    if answer is None or answer is FORWARD:
        return
    assert isinstance(answer, bytes)
    reply = dns.message.from_wire(answer)
    assert reply.id == int.from_bytes(wire[:2], "big")
    assert reply.flags & dns.flags.QR


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_random_bytes_get_an_answer_or_nothing(wire: bytes, tcp: bool) -> None:
    check_answer(wire, tcp)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(_valid),
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=6),
    st.booleans(),
)
def test_fuzz_mutated_queries(base: bytes, flips: list[tuple[int, int]], tcp: bool) -> None:
    wire = bytearray(base)
    for pos, value in flips:
        if pos < len(wire):
            wire[pos] = value
        else:
            wire.append(value)
    check_answer(bytes(wire), tcp)

"""A DNS server of ours on loopback, on an event loop in a thread, with a fake upstream."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dns.message
import dns.rcode
import dns.rrset

from odpctl.dns.answer import Answerer
from odpctl.dns.names import DEFAULT_DOMAIN
from odpctl.dns.records import Records
from odpctl.dns.server import DnsServer, Listen
from odpctl.dns.upstream import Upstreams
from odpctl.mesh.names import PeerName

T = TypeVar("T")
UPSTREAM_ADDRESS = "127.0.0.2"  # loopback, not the one our server listens on


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()

        return self.run(wrapped())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A query with 192.0.2.1 (UDP and TCP); counts the queries."""

    def __init__(self) -> None:
        self.queries = 0
        self.transport: Any = None

    def answer(self, wire: bytes) -> bytes:
        self.queries += 1
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1")
        )
        return response.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answer(data), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        answer = self.answer(await reader.readexactly(size))
        writer.write(struct.pack("!H", len(answer)) + answer)
        await writer.drain()
        writer.close()


class Served:
    def __init__(
        self,
        lt: LoopThread,
        records: Records,
        server: DnsServer,
        upstream: FakeUpstream,
        resolv: Path,
    ) -> None:
        self.lt, self.records, self.server = lt, records, server
        self.upstream, self.resolv = upstream, resolv

    @property
    def where(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def add(self, container: str, address: str, hostname: str) -> None:
        self.lt.call(lambda: self.records.add(container, address, hostname))


@contextmanager
def serving(tmp_path: Path, *, rate: float = 0.0, upstream_up: bool = True) -> Iterator[Served]:
    lt = LoopThread()
    records = Records(PeerName(1))
    resolv = tmp_path / "resolv.conf"
    upstream = FakeUpstream()
    cleanups: list[Callable[[], None]] = []
    try:
        port = 0
        if upstream_up:

            async def start_upstream() -> int:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: upstream, local_addr=(UPSTREAM_ADDRESS, 0)
                )
                udp_port = transport.get_extra_info("sockname")[1]
                tcp = await asyncio.start_server(upstream.serve_tcp, UPSTREAM_ADDRESS, udp_port)
                cleanups.extend((transport.close, tcp.close))
                return int(udp_port)

            port = lt.run(start_upstream())
        resolv.write_text(
            f"nameserver {UPSTREAM_ADDRESS}\n" if upstream_up else "nameserver 127.0.0.3\n"
        )
        upstreams = Upstreams(resolv, port=port or 9, timeout=0.5, exclude={"127.0.0.1"})
        server = DnsServer(
            Answerer(records, DEFAULT_DOMAIN), upstreams, Listen("127.0.0.1", 0), rate=rate
        )
        lt.run(server.start())
        try:
            yield Served(lt, records, server, upstream, resolv)
        finally:
            lt.run(server.stop())
    finally:
        for cleanup in cleanups:
            lt.call(cleanup)
        lt.close()

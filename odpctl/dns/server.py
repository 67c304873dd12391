"""The DNS server: UDP and TCP on one address, answering from the mesh's records.

UDP queries are read by a thread of their own (a blocking socket costs far
less per query than the event loop's datagram callbacks); names that are not
ours go to the event loop, which forwards them upstream and sends the answer
back on the same socket.  TCP connections run on the event loop.  Nothing a
client sends stops the server: every failure is counted and, at worst, the
one query is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from odpctl.errors import OdpError, PermissionDeniedError

from .answer import FORWARD, Answerer
from .upstream import Upstreams

log = logging.getLogger("odpctl.dns")

DNS_PORT = 53
MAX_FORWARDS = 256  # queries waiting for an upstream at once
MAX_TCP = 128  # TCP connections at once
TCP_IDLE = 10.0
MAX_SOURCES = 65_536  # sources tracked by the rate limiter


class DnsServerError(OdpError):
    """The DNS server cannot start (its address is taken, not ours, ...)."""


class RateLimiter:
    """A token bucket per source address; ``rate`` 0 means no limit."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate * 2, 1.0)
        self._buckets: dict[str, list[float]] = {}

    def allow(self, source: str) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= MAX_SOURCES:
                self._buckets.clear()  # a spoofed flood must not grow this without bound
            bucket = self._buckets[source] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True


@dataclass(frozen=True)
class Listen:
    address: str
    port: int = DNS_PORT


class DnsServer:
    def __init__(
        self, answerer: Answerer, upstreams: Upstreams, listen: Listen, *, rate: float = 0.0
    ) -> None:
        self.answerer = answerer
        self.upstreams = upstreams
        self.listen = listen
        self.limiter = RateLimiter(rate)
        self.counters = answerer.counters
        self._udp: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._tcp: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forwards = 0
        self._tcp_open = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False

    @property
    def port(self) -> int:
        """The UDP port bound (the configured one, or the one the kernel gave for 0)."""
        return self._udp.getsockname()[1] if self._udp is not None else self.listen.port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Port 0: the kernel picks the UDP port, and TCP takes the same one if it is free.
        for _ in range(10 if self.listen.port == 0 else 1):
            try:
                await self._bind()
                break
            except DnsServerError as exc:
                if self.listen.port != 0 or exc.errno != errno.EADDRINUSE:
                    raise
        else:
            raise DnsServerError(f"no port free for UDP and TCP on {self.listen.address}")
        self._running = True
        self._thread = threading.Thread(target=self._udp_loop, name="dns-udp", daemon=True)
        self._thread.start()
        log.info(
            "DNS server on %s:%d (UDP and TCP), domain %s",
            self.listen.address,
            self.port,
            self.answerer.domain,
        )

    async def _bind(self) -> None:
        where = f"{self.listen.address}:{self.listen.port}"
        try:
            family = socket.AF_INET6 if ":" in self.listen.address else socket.AF_INET
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.bind((self.listen.address, self.listen.port))
            except OSError:
                udp.close()
                raise
            self._udp = udp
            self._tcp = await asyncio.start_server(
                self._serve_tcp, self.listen.address, self.port, reuse_address=True
            )
        except PermissionError:
            self._close_udp()
            raise PermissionDeniedError(
                f"cannot serve DNS on {where}: permission denied",
                errno=errno.EACCES,
                hint="run as root",
            ) from None
        except OSError as exc:
            self._close_udp()
            raise DnsServerError(
                f"cannot serve DNS on {where}: {exc.strerror or exc}",
                errno=exc.errno,
                hint="is another DNS server (dnsmasq?) listening there, "
                "or is the address not on this host?",
            ) from None

    async def stop(self) -> None:
        self._running = False
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        if self._thread is not None:
            self._wake_udp_thread()
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        self._close_udp()

    def _wake_udp_thread(self) -> None:
        """An empty datagram to our socket: the thread's blocking receive returns and
        sees the stop.  (A timeout instead would cost a poll() before every receive.)"""
        if self._udp is None:
            return
        address = self._udp.getsockname()
        with socket.socket(self._udp.family, socket.SOCK_DGRAM) as waker:
            try:
                waker.sendto(b"", address)
            except OSError:
                self._udp.shutdown(socket.SHUT_RDWR)  # wakes the receive too

    def _close_udp(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def status(self) -> dict[str, Any]:
        return {
            "listen": f"{self.listen.address}:{self.port}",
            "domain": self.answerer.domain,
            "ttl": self.answerer.ttl,
            "upstreams": self.upstreams.servers(),
            "upstream_failures": self.upstreams.failures,
            "rate_limit": self.limiter.rate,
            "counters": self.counters.as_dict(),
        }

    # --- UDP -------------------------------------------------------------------------

    def _udp_loop(self) -> None:
        sock, loop = self._udp, self._loop
        assert sock is not None and loop is not None
        respond, allow, counters = self.answerer.respond, self.limiter.allow, self.counters
        limited = self.limiter.rate > 0
        while self._running:
            try:
                wire, source = sock.recvfrom(65535)
            except OSError as exc:
                if not self._running:
                    return
                counters.errors += 1
                log.debug("DNS UDP receive: %s", exc)
                continue
            if not self._running:
                return
            try:
                if limited and not allow(source[0]):
                    counters.rate_limited += 1
                    continue
                answer = respond(wire)
                if type(answer) is bytes:
                    sock.sendto(answer, source)
                elif answer is FORWARD:
                    loop.call_soon_threadsafe(self._forward, wire, source)
            except OSError as exc:
                counters.errors += 1
                log.debug("DNS UDP send to %s: %s", source, exc)
            except Exception:
                # A bug must cost one query, never the server.
                counters.errors += 1
                log.exception("DNS query from %s", source)

    def _forward(self, wire: bytes, source: Any) -> None:
        if self._forwards >= MAX_FORWARDS:
            self.counters.forward_overload += 1
            return
        self._spawn(self._forward_udp(wire, source))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward_udp(self, wire: bytes, source: Any) -> None:
        answer = await self._upstream(wire, tcp=False)
        sock = self._udp
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendto(answer, source)

    async def _upstream(self, wire: bytes, *, tcp: bool) -> bytes:
        self._forwards += 1
        self.counters.forwarded += 1
        try:
            answer = await self.upstreams.query(wire, tcp=tcp)
        finally:
            self._forwards -= 1
        return answer if answer is not None else self.answerer.servfail(wire)

    # --- TCP -------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = peer[0] if peer else "?"
        if self._tcp_open >= MAX_TCP:
            self.counters.tcp_refused += 1
            writer.close()
            return
        self._tcp_open += 1
        self.counters.tcp_connections += 1
        try:
            while self._running:
                (size,) = struct.unpack(
                    "!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                )
                wire = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                if not self.limiter.allow(source):
                    self.counters.rate_limited += 1
                    break
                answer = self.answerer.respond(wire, tcp=True)
                if answer is FORWARD:
                    answer = await self._upstream(wire, tcp=True)
                if not isinstance(answer, bytes):
                    break  # nothing to say to this: the connection goes
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            self.counters.tcp_errors += 1
            log.exception("DNS TCP connection from %s", source)
        finally:
            self._tcp_open -= 1
            writer.close()

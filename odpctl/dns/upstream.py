"""The upstream servers a DNS server forwards other names to: the host's resolv.conf.

The file is read again when it changes (checked at most once a second), as
a laptop's or a DHCP client's resolv.conf does.  Our own addresses are left
out: forwarding to ourselves would loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import struct
import time
from collections.abc import Collection
from pathlib import Path

log = logging.getLogger("odpctl.dns")

RESOLV_CONF = Path("/etc/resolv.conf")
CHECK_INTERVAL = 1.0


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order (invalid ones skipped)."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(str(ipaddress.ip_address(words[1].split("%")[0])))
    return found


class Upstreams:
    def __init__(
        self,
        path: Path = RESOLV_CONF,
        *,
        port: int = 53,
        timeout: float = 2.0,
        exclude: Collection[str] = (),
    ) -> None:
        self.path = path
        self.port = port
        self.timeout = timeout
        self.exclude = set(exclude)
        self._servers: list[str] = []
        self._stamp: tuple[int, int, int] | None = None
        self._checked = -CHECK_INTERVAL
        self.failures = 0

    def servers(self) -> list[str]:
        now = time.monotonic()
        if now - self._checked >= CHECK_INTERVAL:
            self._checked = now
            self._reload()
        return self._servers

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            text = self.path.read_text()
        except OSError as exc:
            if self._stamp is not None or self._servers:
                log.warning("cannot read %s (%s): no upstream DNS servers", self.path, exc.strerror)
            self._stamp, self._servers = None, []
            return
        self._stamp = stamp
        servers = [
            s
            for s in parse_resolv_conf(text)
            if s not in self.exclude and not ipaddress.ip_address(s).is_unspecified
        ]
        if servers != self._servers:
            log.info("upstream DNS servers from %s: %s", self.path, ", ".join(servers) or "none")
        self._servers = servers

    async def query(self, wire: bytes, *, tcp: bool = False) -> bytes | None:
        """The first answer of an upstream server to query ``wire``; None if all fail."""
        for server in self.servers():
            try:
                return await asyncio.wait_for(self._ask(server, wire, tcp), self.timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                self.failures += 1
                log.debug("upstream %s: %s", server, exc or type(exc).__name__)
        return None

    async def _ask(self, server: str, wire: bytes, tcp: bool) -> bytes:
        # Our own query ID upstream: a spoofed answer has to guess it.
        our_id = secrets.token_bytes(2)
        query = our_id + wire[2:]
        answer = await (self._ask_tcp if tcp else self._ask_udp)(server, query)
        if len(answer) < 12 or answer[:2] != our_id or not answer[2] & 0x80:
            raise ValueError("an answer that is not to our query")
        return wire[:2] + answer[2:]

    async def _ask_udp(self, server: str, query: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (server, self.port))
            await loop.sock_sendall(sock, query)
            return await loop.sock_recv(sock, 65535)

    async def _ask_tcp(self, server: str, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(server, self.port)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()

"""The userspace fallback path: frames carried by the routers over UDP.

When a connection's fast path fails (UDP 6784 blocked, path MTU, no kernel
VXLAN), frames for that neighbour go through userspace instead: the miss
handler sends them here, no flow is installed (every frame is a miss), and
the neighbour's router receives them on UDP 6783 and injects them into its
datapath with a packet execute, or relays them on.  Weave calls this path
"sleeve".  The header names the source and destination peers' short IDs,
as the VNI does on the fast path.

With a mesh password every datagram is sealed with the keys of the
connection to the neighbour it goes to (`links`), magic "OE": each hop opens
what it receives with the incoming connection's keys and seals what it
relays with the outgoing one's.  The header stays readable and is
authenticated.  Without a password datagrams are plaintext, magic "OS", as
before; a mesh with a password takes sealed ones only.  Whatever is refused
is counted by its reason, and goes no further.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable

from odpctl.crypto.errors import ReplayError, SealError
from odpctl.errors import DecodeError

from .links import Links

log = logging.getLogger("odpctl.router")

PORT = 6783
MAGIC = b"OS"
SEALED_MAGIC = b"OE"
_HEADER = struct.Struct("!2sHH")  # magic, source short ID, destination short ID
MAX_DATAGRAM = 65535

Receiver = Callable[[int, int, bytes, str], None]  # src short, dst short, frame, from IP


class Refused(DecodeError):
    """A datagram the fallback drops; its message is the reason it is counted under."""


def encode(links: Links, ip: str, src_short: int, dst_short: int, frame: bytes) -> bytes:
    """The datagram carrying ``frame`` to the neighbour at ``ip``."""
    if not links.required:
        return _HEADER.pack(MAGIC, src_short, dst_short) + frame
    link = links.by_ip.get(ip)
    if link is None or link.sealer is None:
        raise Refused("no key to seal with")  # never plaintext instead
    try:
        return link.sealer.seal(_HEADER.pack(SEALED_MAGIC, src_short, dst_short), frame)
    except SealError as exc:  # its counter exhausted: the connection must be renewed
        raise Refused(exc.message) from None


def decode(links: Links, ip: str, data: bytes) -> tuple[int, int, bytes]:
    """(source short ID, destination short ID, frame) of a datagram from ``ip``.

    Raises `Refused` (a `DecodeError`) with the reason to count it under.
    """
    if len(data) < _HEADER.size:
        raise Refused("truncated")
    magic, src, dst = _HEADER.unpack_from(data)
    if magic == MAGIC:
        if links.required:
            raise Refused("plaintext fallback")
        frame = data[_HEADER.size :]
    elif magic == SEALED_MAGIC:
        link = links.by_ip.get(ip)
        if link is None or link.opener is None:
            raise Refused("sealed, from no neighbour")
        try:
            frame = link.opener.open(data, _HEADER.size)
        except ReplayError:
            link.replays += 1
            raise Refused("replay") from None
        except SealError:
            link.auth_failures += 1
            raise Refused("authentication failed") from None
    else:
        raise Refused("bad magic")
    if len(frame) < 14:
        raise Refused("truncated")
    return src, dst, frame


class Fallback:
    def __init__(self, links: Links, port: int = PORT, host: str = "0.0.0.0") -> None:  # noqa: S104 - peers' address
        self.links = links
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.sent = 0
        self.received = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, ip: str, src_short: int, dst_short: int, frame: bytes) -> None:
        try:
            self.sock.sendto(encode(self.links, ip, src_short, dst_short, frame), (ip, self.port))
            self.sent += 1
        except Refused as exc:
            self.links.drops.add(f"not sent: {exc.message}")
        except OSError as exc:
            self.errors += 1
            log.debug("fallback send to %s: %s", ip, exc)

    def start(self, receiver: Receiver) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(receiver,), name="fallback-rx", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, receiver: Receiver) -> None:
        while not self._stop.is_set():
            try:
                data, (ip, _) = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                self.errors += 1
                continue
            try:
                src, dst, frame = decode(self.links, ip, data)
            except Refused as exc:
                self.links.drops.add(f"fallback: {exc.message}")
                continue
            self.received += 1
            try:
                receiver(src, dst, frame, ip)
            except Exception:  # one bad frame must not end the fallback path
                self.errors += 1
                log.exception("fallback receive")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with contextlib.suppress(OSError):
            self.sock.close()

"""The userspace fallback path: frames carried by the routers over UDP.

When a connection's fast path fails (UDP 6784 blocked, path MTU, no kernel
VXLAN), frames for that neighbour go through userspace instead: the miss
handler sends them here, no flow is installed (every frame is a miss), and
the neighbour's router receives them on UDP 6783 and injects them into its
datapath with a packet execute, or relays them on.  Weave calls this path
"sleeve".  The header names the source and destination peers' short IDs,
as the VNI does on the fast path.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable

log = logging.getLogger("odpctl.router")

PORT = 6783
MAGIC = b"OS"
_HEADER = struct.Struct("!2sHH")  # magic, source short ID, destination short ID
MAX_DATAGRAM = 65535

Receiver = Callable[[int, int, bytes, str], None]  # src short, dst short, frame, from IP


class Fallback:
    def __init__(self, port: int = PORT, host: str = "0.0.0.0") -> None:  # noqa: S104 - peers' address
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
            self.sock.sendto(_HEADER.pack(MAGIC, src_short, dst_short) + frame, (ip, self.port))
            self.sent += 1
        except OSError as exc:
            self.errors += 1
            log.debug("fallback send to %s: %s", ip, exc)

    def start(self, receiver: Receiver) -> None:
        self._thread = threading.Thread(target=self._run, args=(receiver,),
                                        name="fallback-rx", daemon=True)
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
            if len(data) < _HEADER.size + 14:
                self.errors += 1
                continue
            magic, src, dst = _HEADER.unpack_from(data)
            if magic != MAGIC:
                self.errors += 1
                continue
            self.received += 1
            try:
                receiver(src, dst, data[_HEADER.size:], ip)
            except Exception:  # one bad frame must not end the fallback path
                self.errors += 1
                log.exception("fallback receive")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with contextlib.suppress(OSError):
            self.sock.close()

"""A netdev port's packet sockets: made ahead, closed behind, off the request path.

Each ring a packet socket sets up (PACKET_RX_RING, PACKET_TX_RING) waits
out a kernel RCU grace period, 8-24 ms apiece, and closing a packet socket
waits out one to three more.  Paid inside ``vport add`` and ``vport del``,
they were most of a container's attach and detach (a CNI ADD waits on
them).  So a worker thread keeps a socket ready for the next port: its
options and rings set, not bound to any device, so it receives nothing
and counts no drops until a port binds it.  The same thread closes the
sockets of ports that are gone.

Sockets belong to the network namespace of the thread that makes them:
the worker starts from the thread that first asks, the datapath server's,
and inherits its namespace.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable

from odpctl.datapath.pktring import PACKET_AUXDATA, Rings, rx_frame_size
from odpctl.datapath.ports.base import MAX_FRAME, SO_RCVBUFFORCE, SO_SNDBUFFORCE

SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23

Ringed = tuple[socket.socket, "Rings | None"]


def ringed_socket(mtu: int) -> Ringed:
    """An unbound packet socket with virtio-net headers, its rings sized for ``mtu``.

    Protocol 0, so that nothing queues on it until it is bound.  Without
    rings (the kernel refused them) the port reads and writes a frame per
    system call.  The options come first: the kernel refuses most of them
    once a ring is set.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        with contextlib.suppress(OSError):  # Linux 4.20+
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        for opt, size in ((SO_RCVBUFFORCE, 4 << 20), (SO_SNDBUFFORCE, 4 << 20)):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
        try:
            rings: Rings | None = Rings(sock, mtu, MAX_FRAME)
        except OSError:
            rings = None
    except BaseException:
        sock.close()
        raise
    return sock, rings


def _close(socks: tuple[socket.socket, ...]) -> None:
    for sock in socks:
        sock.close()


def _close_ringed(made: Ringed) -> None:
    sock, rings = made
    if rings is not None:
        rings.close()
    sock.close()


class PacketSockets:
    """Ringed sockets for new ports, one kept ready per RX slot size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[int, Ringed] = {}
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.taken_ready = 0  # sockets a port found ready (the others were made on demand)

    def take(self, mtu: int) -> Ringed:
        """A ringed socket for a device of ``mtu``, ready if one is; another is
        made ahead for the next port."""
        slot = rx_frame_size(mtu)
        with self._lock:
            ready = self._ready.pop(slot, None)
        self._submit(lambda: self._refill(mtu, slot))
        if ready is None:
            return ringed_socket(mtu)
        self.taken_ready += 1
        return ready

    def discard(self, *socks: socket.socket) -> None:
        """Close ``socks`` (a gone port's, unregistered from every selector) soon."""
        self._submit(lambda: _close(socks))

    def prepare(self, mtu: int = 1500) -> None:
        """Have a socket for ``mtu`` made ahead (a datapath is new: ports will come)."""
        self._submit(lambda: self._refill(mtu, rx_frame_size(mtu)))

    def wait_ready(self, mtu: int = 1500, timeout: float = 5.0) -> bool:
        """Wait until a socket for ``mtu`` is ready (for tests and benchmarks)."""
        done = threading.Event()
        self.prepare(mtu)
        self._submit(done.set)
        done.wait(timeout)
        with self._lock:
            return rx_frame_size(mtu) in self._ready

    def close(self) -> None:
        """Close what waits to be closed, and the ready sockets; no more are made."""
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready.values()), {}
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join()
            self._worker = None
        for made in ready:
            _close_ringed(made)

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if not self._closed:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._work, name="packet-sockets", daemon=True
                    )
                    self._worker.start()
                self._jobs.put(job)
                return
        job()  # closing down: a discard closes at once, a refill does nothing

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            # A socket not made ahead (out of descriptors, say) is made on
            # demand by the next port, which then says why it cannot be.
            with contextlib.suppress(OSError):
                job()

    def _refill(self, mtu: int, slot: int) -> None:
        with self._lock:
            if self._closed or slot in self._ready:
                return
        made = ringed_socket(mtu)
        with self._lock:
            if not self._closed and slot not in self._ready:
                self._ready[slot] = made
                return
        _close_ringed(made)

"""Memory-mapped packet rings (TPACKET_V2) for AF_PACKET ports.

With rings, the kernel writes received frames into memory shared with us
and sends the frames we write there when told to, so that a burst of
packets costs no system call per packet: none to receive (only the poll
that says frames are waiting), one to send a whole batch.  System calls
are the dearest thing the Python data path does.

Each frame slot starts with a ``struct tpacket2_hdr``; its ``tp_status``
word says who owns it.  The virtio-net header sits right before the frame
data, received or sent, since the socket has PACKET_VNET_HDR.

The RX ring has many small slots, each sized for one frame of the device's
MTU, so that a burst of thousands of small frames (a miss storm) fits in it
while the datapath catches up.  A frame bigger than a slot (a GSO
super-packet) is not lost: with PACKET_COPY_THRESH the kernel also queues the
whole frame on the socket and marks its slot TP_STATUS_COPY, and it is read
from there, in its turn.  (TPACKET_V3 packs frames of any size into blocks,
but hands a block over only when it is full or its timer expires: at low
rates every frame would wait for the timer.)
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_COPY_THRESH = 7
PACKET_AUXDATA = 8
PACKET_VERSION = 10
PACKET_LOSS = 14
PACKET_TX_RING = 13
TPACKET_V2 = 1

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 0x1
TP_STATUS_COPY = 0x2
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 0x1
TP_STATUS_SENDING = 0x2
TP_STATUS_WRONG_FORMAT = 0x4

# struct tpacket2_hdr: status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid, pad
_HDR = struct.Struct("=IIIHHIIHH4x")
_STATUS = struct.Struct("=I")
_TX_LEN = struct.Struct("=II")  # status, len
_STATS = struct.Struct("=II")  # struct tpacket_stats: packets, drops
# Where a sent frame's data starts: TPACKET_ALIGN(sizeof(struct tpacket2_hdr)).
TX_DATA_OFFSET = 32
VNET_LEN = 10

# struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
AUXDATA = struct.Struct("=IIIHHHH")
AUX_SPACE = socket.CMSG_SPACE(AUXDATA.size)
# An RX slot holds the slot's header, the kernel's alignment (up to 128
# bytes before the frame, virtio-net header included) and a frame of the
# MTU with two VLAN tags; bigger frames come through the socket instead.
RX_HEADROOM = 128 + 22
RX_MIN_FRAME = 2048
# The ring's size: 4,096 slots of 2 KiB, enough for a 2,000-frame burst
# with room to spare; bigger slots (a jumbo MTU) mean fewer of them.
RX_RING_BYTES = 8 << 20
# Blocks of 64 KiB: the kernel allocates each as one run of pages, and small
# runs are easy to find.
RX_BLOCK_MIN = 1 << 16
# The TX ring only carries small frames (bigger ones are sent directly).
TX_FRAME_SIZE = 4096
TX_FRAMES_PER_BLOCK = 16
TX_BLOCK_SIZE = 1 << 16
TX_MAX = TX_FRAME_SIZE - 32


_libc = ctypes.CDLL(None, use_errno=True)
_libc.setsockopt.argtypes = [
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
]


def _set_ring(sock: socket.socket, option: int, request: bytes) -> None:
    """PACKET_RX_RING or PACKET_TX_RING, through libc rather than Python's setsockopt.

    The kernel waits out an RCU grace period in each (8-24 ms), and Python
    holds the GIL across its own setsockopt: a thread making rings ahead
    would stall the datapath's loop that long.  ctypes lets go of it.
    """
    if _libc.setsockopt(sock.fileno(), SOL_PACKET, option, request, len(request)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def rx_frame_size(mtu: int) -> int:
    """The RX slot size for a device of ``mtu``: a power of two, 2 KiB at least."""
    size = RX_MIN_FRAME
    while size < mtu + RX_HEADROOM:
        size *= 2
    return size


def vlan_from_auxdata(anc: list[tuple[int, int, bytes]]) -> tuple[int, int, int]:
    """(status, VLAN TCI, TPID) from a received message's PACKET_AUXDATA, zeros if none."""
    for level, kind, cdata in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= AUXDATA.size:
            status, _len, _snap, _mac, _net, tci, tpid = AUXDATA.unpack_from(cdata)
            return status, tci, tpid
    return 0, 0, 0


def packet_drops(sock: socket.socket) -> int:
    """Frames a packet socket's receive side dropped since last asked (ring or
    receive buffer full): ``tp_drops`` of PACKET_STATISTICS, which reading resets."""
    _packets, drops = _STATS.unpack(sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))
    return int(drops)


class Rings:
    """The RX and TX rings of one packet socket (which must not be bound yet:
    it may be bound any time after, from any thread).

    ``mtu`` sizes the RX slots; frames up to ``max_frame`` bytes (virtio-net
    header included) that do not fit one are read from the socket.  The
    socket should have PACKET_AUXDATA, for the VLAN tag of such frames.
    """

    def __init__(
        self,
        sock: socket.socket,
        mtu: int = 1500,
        max_frame: int = 65536 + VNET_LEN + 4,
        tx_blocks: int = 4,
    ) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        # A malformed frame is skipped, not left to block the ring.
        sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
        # Any frame too big for its slot is also queued whole on the socket.
        sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)
        frame = rx_frame_size(mtu)
        block = max(frame, RX_BLOCK_MIN)
        rx_blocks = max(1, RX_RING_BYTES // block)
        per_block = block // frame
        _set_ring(
            sock,
            PACKET_RX_RING,
            struct.pack("=IIII", block, rx_blocks, frame, rx_blocks * per_block),
        )
        _set_ring(
            sock,
            PACKET_TX_RING,
            struct.pack(
                "=IIII", TX_BLOCK_SIZE, tx_blocks, TX_FRAME_SIZE, tx_blocks * TX_FRAMES_PER_BLOCK
            ),
        )
        rx_size = rx_blocks * block
        self.map = mmap.mmap(
            sock.fileno(),
            rx_size + tx_blocks * TX_BLOCK_SIZE,
            mmap.MAP_SHARED,
            mmap.PROT_READ | mmap.PROT_WRITE,
        )
        self._sock = sock
        self._max_frame = max_frame
        self._rx = [
            (i // per_block) * block + (i % per_block) * frame for i in range(rx_blocks * per_block)
        ]
        self._tx = [
            rx_size
            + (i // TX_FRAMES_PER_BLOCK) * TX_BLOCK_SIZE
            + (i % TX_FRAMES_PER_BLOCK) * TX_FRAME_SIZE
            for i in range(tx_blocks * TX_FRAMES_PER_BLOCK)
        ]
        self._rx_next = 0
        # TX slots in use run from _tx_head (the oldest frame whose slot is
        # not free again) to _tx_next (where we write); the kernel keeps its
        # own pointer to the next frame it sends, somewhere in between.
        self._tx_head = self._tx_next = self._tx_used = 0
        self._tx_waiting = False  # frames queued and not known to be sent
        self.truncated = 0
        self.tx_failed = 0
        self.tx_dropped = 0

    def receive(self, limit: int) -> list[tuple[bytes, int, int, int]]:
        """Up to ``limit`` frames: (virtio-net header + frame, status, VLAN TCI, TPID).

        A frame too big for its slot comes whole from the socket; one the
        kernel could not queue there (its receive buffer full) is cut, and
        dropped and counted in ``truncated``.
        """
        out = []
        m = self.map
        unpack = _HDR.unpack_from
        release = _STATUS.pack_into
        slots = self._rx
        n = len(slots)
        i = self._rx_next
        for _ in range(limit):
            off = slots[i]
            status, length, snaplen, mac, _net, _s, _ns, tci, tpid = unpack(m, off)
            if not status & TP_STATUS_USER:
                break
            if snaplen == length:
                start = off + mac - VNET_LEN
                out.append((m[start : start + VNET_LEN + snaplen], status, tci, tpid))
            elif status & TP_STATUS_COPY:
                self._take_copy(out)
            else:
                self.truncated += 1
            release(m, off, TP_STATUS_KERNEL)
            i = i + 1 if i + 1 < n else 0
        self._rx_next = i
        return out

    def _take_copy(self, out: list[tuple[bytes, int, int, int]]) -> None:
        """The whole frame of a slot marked TP_STATUS_COPY, from the socket's queue."""
        try:
            data, anc, _flags, _addr = self._sock.recvmsg(
                self._max_frame, AUX_SPACE, socket.MSG_DONTWAIT
            )
        except OSError:
            self.truncated += 1
            return
        status, tci, tpid = vlan_from_auxdata(anc)
        out.append((data, status, tci, tpid))

    def queue(self, data: bytes | bytearray) -> bool:
        """Put one virtio-net header + frame in the TX ring; False if it has no room."""
        if len(data) > TX_MAX:
            return False
        if self._tx_used == len(self._tx):
            self._reclaim()
            if self._tx_used == len(self._tx):
                self.flush()
                if self._tx_used == len(self._tx):
                    return False
        off = self._tx[self._tx_next]
        m = self.map
        start = off + TX_DATA_OFFSET
        m[start : start + len(data)] = data
        # The status word last: it hands the slot to the kernel.
        _TX_LEN.pack_into(m, off, TP_STATUS_AVAILABLE, len(data))
        _STATUS.pack_into(m, off, TP_STATUS_SEND_REQUEST)
        self._tx_next = self._after(self._tx_next)
        self._tx_used += 1
        self._tx_waiting = True
        return True

    def flush(self) -> bool:
        """Have the kernel send every frame queued so far; False to try again soon.

        The kernel stops early when the socket's send buffer is full (what
        was sent is still held by a slow receiver): the frames left stay
        queued, in order, and the caller must retry soon rather than wait
        for the next packet.  A frame the device refuses (ENOBUFS: its
        queue is full, or the frame is too big for the other end of a veth)
        is dropped, as the device would drop it, and counted in
        ``tx_dropped``; the kernel would otherwise offer it again and again,
        and the frames behind it would wait for ever.  A device that cannot
        send at all (down, gone) makes every frame left count as failed.
        """
        if not self._tx_waiting:
            return True
        for _ in range(len(self._tx)):
            try:
                self._sock.send(b"", socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS and self._skip_refused():
                    continue  # on with the frames after it
                self._discard_unsent()
            break
        self._reclaim()
        self._tx_waiting = self._kernel_next() is not None
        return not self._tx_waiting

    def _skip_refused(self) -> bool:
        """Drop the frame the kernel stopped at; False if there is none."""
        slot = self._kernel_next()
        if slot is None:
            return False
        # A frame shorter than its virtio-net header is malformed: with
        # PACKET_LOSS the kernel frees its slot and moves on to the next.
        _TX_LEN.pack_into(self.map, self._tx[slot], TP_STATUS_SEND_REQUEST, 0)
        self.tx_dropped += 1
        return True

    def _after(self, slot: int) -> int:
        return slot + 1 if slot + 1 < len(self._tx) else 0

    def _status(self, slot: int) -> int:
        return int(_STATUS.unpack_from(self.map, self._tx[slot])[0])

    def _reclaim(self) -> None:
        """Free the slots of the frames the kernel is done with, oldest first."""
        while self._tx_used:
            status = self._status(self._tx_head)
            if status not in (TP_STATUS_AVAILABLE, TP_STATUS_WRONG_FORMAT):
                return  # still to send, or in flight
            if status == TP_STATUS_WRONG_FORMAT:
                self.tx_failed += 1
            self._tx_head = self._after(self._tx_head)
            self._tx_used -= 1

    def _kernel_next(self) -> int | None:
        """The slot the kernel sends next, if it has not sent everything queued."""
        slot = self._tx_head
        for _ in range(self._tx_used):
            if self._status(slot) == TP_STATUS_SEND_REQUEST:
                return slot
            slot = self._after(slot)
        return None

    def _discard_unsent(self) -> None:
        """Give up the frames not sent yet; the kernel resumes where we write next."""
        first = self._kernel_next()
        if first is None:
            return
        unsent = self._tx_used - (first - self._tx_head) % len(self._tx)
        slot = first
        for _ in range(unsent):
            _STATUS.pack_into(self.map, self._tx[slot], TP_STATUS_AVAILABLE)
            slot = self._after(slot)
        self.tx_failed += unsent
        self._tx_used -= unsent
        self._tx_next = first

    def dropped(self) -> int:
        """Frames the kernel dropped for want of a free RX slot since last asked."""
        return packet_drops(self._sock)

    def close(self) -> None:
        self.map.close()

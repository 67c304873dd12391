"""Device ports: ``netdev`` (an existing interface, through AF_PACKET) and
``internal`` (a TAP device named after the port).

Both exchange packets with the kernel with a virtio-net header in front, so
that TSO super-packets and partial checksums pass through untouched.  A
netdev port reads and (for small frames) writes through memory-mapped
rings, a system call per batch rather than per packet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

from odpctl.datapath import netdev
from odpctl.datapath.packet import (
    VNET_LEN,
    Packet,
    fit_mtu,
)
from odpctl.datapath.pktring import (
    AUX_SPACE,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    TX_MAX,
    Rings,
    packet_drops,
    vlan_from_auxdata,
)
from odpctl.datapath.ports.base import (
    BATCH,
    MAX_FRAME,
    SO_SNDBUFFORCE,
    Owner,
    Port,
    synthetic_ifindex,
)
from odpctl.datapath.ports.sockets import PacketSockets
from odpctl.odp.uapi import VportType

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
ETH_P_ALL = 0x0003

_MREQ = struct.Struct("=iHH8s")


class NetdevPort(Port):
    type = VportType.NETDEV

    def __init__(self, owner: Owner, name: str, port_no: int, sockets: PacketSockets) -> None:
        super().__init__(owner, name, port_no)
        ifindex = netdev.ifindex(name)
        if ifindex is None:
            raise OSError(errno.ENODEV, f"no network device named {name}")
        if netdev.flags(name) & netdev.IFF_LOOPBACK or netdev.hw_type(name) not in (
            netdev.ARPHRD_ETHER,
            netdev.ARPHRD_NONE,
        ):
            raise OSError(errno.EINVAL, f"{name} is not an Ethernet device")
        self.ifindex = ifindex
        self._learn_mtu()
        self._sockets = sockets
        sock, self.rings = sockets.take(self.mtu)
        try:
            sock.bind((name, ETH_P_ALL))
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, self._promisc)
            sock.setblocking(False)
            # With rings, big frames (GSO super-packets) bypass the TX ring:
            # one system call each costs less than another copy through it.
            self._tx_sock = sock if self.rings is None else _plain_sender(name)
        except BaseException:
            self._discard(sock)
            raise
        self.sock = sock
        self._buf = bytearray(MAX_FRAME)

    @property
    def _promisc(self) -> bytes:
        return _MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")

    def _learn_mtu(self) -> None:
        try:
            self.mtu = netdev.mtu(self.name)
        except OSError:
            self.mtu = 1500
        # Frames longer than this (virtio header, Ethernet and a VLAN tag
        # included) need a look before they go out.
        self._big = VNET_LEN + 18 + self.mtu

    def fileno(self) -> int | None:
        return self.sock.fileno()

    def on_readable(self) -> None:
        if self.rings is not None:
            self._read_ring(self.rings)
            return
        recvmsg_into = self.sock.recvmsg_into
        buf = self._buf
        view = memoryview(buf)
        receive = self.owner.receive
        meta = self.meta
        for _ in range(BATCH):
            try:
                n, anc, _flags, _addr = recvmsg_into([view], AUX_SPACE)
            except BlockingIOError:
                break
            except OSError as e:
                self._rx_error(e)  # the port may be gone, its socket with it
                return
            data = bytes(view[:n])
            if anc:
                data = _reinsert_vlan(data, anc)
            self.rx_packets += 1
            self.rx_bytes += n - VNET_LEN
            receive(self, Packet(data, meta))
        # A full receive buffer drops frames as a full ring does: counted alike.
        self.rx_dropped += packet_drops(self.sock)

    def _read_ring(self, rings: Rings) -> None:
        receive = self.owner.receive
        meta = self.meta
        # One batch per wake-up, then the clients get a turn: the ring holds a
        # burst, and a router waiting for its flow puts should not wait for
        # the whole of it (miss latency).
        for data, status, tci, tpid in rings.receive(BATCH):
            if status & TP_STATUS_VLAN_VALID:
                data = _with_vlan(data, tci, tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100)
            self.rx_packets += 1
            self.rx_bytes += len(data) - VNET_LEN
            receive(self, Packet(data, meta))
        self.rx_errors = rings.truncated
        self.rx_dropped += rings.dropped()
        # The ring says nothing of a vanished device: ask the socket.
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._rx_error(OSError(err, os.strerror(err)))

    def _rx_error(self, e: OSError) -> None:
        if e.errno in (errno.ENODEV, errno.ENXIO):
            self.owner.port_gone(self, f"device {self.name} went away")
        elif e.errno != errno.ENETDOWN:
            # A device that is down stays a port, as in the kernel datapath:
            # it carries traffic again once it comes up.
            self.rx_errors += 1

    def send(self, pkt: Packet) -> None:
        data = self._tx_data(pkt)
        if len(data) > self._big or data[1]:  # too big, or GSO (its segments may be)
            fitted = fit_mtu(data, self.mtu)
            if fitted is None:
                self.tx_errors += 1
                return
            data = fitted
        rings = self.rings
        if rings is not None:
            # Only plain frames take the ring: some kernels refuse GSO from it.
            if len(data) <= TX_MAX and not data[1] and len(data) <= self._big:
                if rings.queue(data):
                    self.owner.pending(self)
                    self.tx_packets += 1
                    self.tx_bytes += len(data) - VNET_LEN
                else:
                    self.tx_dropped += 1
                return
            rings.flush()  # what the ring holds goes first
        try:
            self._tx_sock.send(data)
        except BlockingIOError:
            self.tx_dropped += 1
            return
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.ENODEV):
                self.owner.port_gone(self, f"device {self.name} went away")
            elif e.errno == errno.EMSGSIZE:
                self.tx_errors += 1
                self._learn_mtu()
            else:
                self.tx_dropped += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(data) - VNET_LEN

    def flush(self) -> bool:
        if self.rings is None:
            return True
        rings = self.rings
        failed, dropped = rings.tx_failed, rings.tx_dropped
        done = rings.flush()
        self.tx_errors += rings.tx_failed - failed
        self.tx_dropped += rings.tx_dropped - dropped
        return done

    def close(self) -> None:
        # The device stops being promiscuous with the reply, not when the
        # socket is closed (see `PacketSockets`); gone, it is nothing to undo.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(SOL_PACKET, PACKET_DROP_MEMBERSHIP, self._promisc)
        self._discard(self.sock)
        if self._tx_sock is not self.sock:
            self._sockets.discard(self._tx_sock)

    def _discard(self, sock: socket.socket) -> None:
        if self.rings is not None:
            self.rings.close()
        self._sockets.discard(sock)


def _plain_sender(name: str) -> socket.socket:
    """An AF_PACKET socket that only sends, with virtio-net headers."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
        sock.bind((name, 0))  # protocol 0: it receives nothing
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _reinsert_vlan(data: bytes, anc: list[tuple[int, int, bytes]]) -> bytes:
    """Put back a VLAN tag the device stripped into metadata (RX VLAN offload)."""
    status, tci, tpid = vlan_from_auxdata(anc)
    if not status & TP_STATUS_VLAN_VALID:
        return data
    return _with_vlan(data, tci, tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100)


def _with_vlan(data: bytes, tci: int, tpid: int) -> bytes:
    at = VNET_LEN + 12
    out = bytearray(data[:at])
    out += struct.pack("!HH", tpid, tci)
    out += data[at:]
    _shift_csum_start(out, 4)
    return bytes(out)


def _shift_csum_start(d: bytearray, delta: int) -> None:
    flags, gso_type, hdr_len, gso_size, start, offset = struct.unpack_from("=BBHHHH", d)
    if flags or gso_type:
        struct.pack_into(
            "=BBHHHH", d, 0, flags, gso_type, hdr_len + delta, gso_size, start + delta, offset
        )


class InternalPort(Port):
    """A TAP device, or with ``device=False`` a port with no device at all."""

    type = VportType.INTERNAL

    def __init__(self, owner: Owner, name: str, port_no: int, *, device: bool = True) -> None:
        super().__init__(owner, name, port_no)
        self.fd: int | None = None
        if device:
            self.fd = netdev.open_tap(name)
            self.ifindex = netdev.ifindex(name)
        if self.ifindex is None:
            self.ifindex = synthetic_ifindex()

    def fileno(self) -> int | None:
        return self.fd

    def on_readable(self) -> None:
        fd = self.fd
        if fd is None:
            return
        receive = self.owner.receive
        meta = self.meta
        read = os.read
        for _ in range(BATCH):
            try:
                data = read(fd, MAX_FRAME)
            except BlockingIOError:
                return
            except OSError:
                self.rx_errors += 1
                return
            if len(data) <= VNET_LEN:
                continue
            self.rx_packets += 1
            self.rx_bytes += len(data) - VNET_LEN
            receive(self, Packet(data, meta))

    def send(self, pkt: Packet) -> None:
        if self.fd is None:
            self.tx_dropped += 1
            return
        data = self._tx_data(pkt)
        try:
            os.write(self.fd, data)
        except OSError:
            # EIO while the device is down, EAGAIN when its queue is full.
            self.tx_dropped += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(data) - VNET_LEN

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

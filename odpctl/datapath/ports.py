"""Vports: where packets enter and leave the userspace datapath.

``netdev``    an existing interface, through an AF_PACKET socket bound to it
              (promiscuous, outgoing packets ignored, virtio-net headers on).
``internal``  a TAP device named after the port, created with the port and
              gone with it; the datapath's own port 0 is one of these.
``vxlan``,    a UDP socket on the port's destination port (4789, 6081 by
``geneve``    default), doing real encapsulation: what it sends, a Linux
              vxlan device or the kernel datapath's vxlan port receives, and
              the other way round.  The outer addresses, TOS, TTL and UDP
              ports of what arrives become the packet's tunnel key.

Each port reads up to `BATCH` packets per wake-up and hands them to its
datapath; sends never block (a full queue is a counted drop, as on a
device).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from typing import Protocol

from odpctl.datapath import netdev
from odpctl.datapath.layout import (
    AF_INET,
    FIELD,
    OFFSET,
    TUN_GENEVE_OPT,
    TUN_KEY,
    TUN_OAM,
    TUN_VXLAN_OPT,
    port_meta,
)
from odpctl.datapath.packet import (
    VNET_LEN,
    ZERO_VNET,
    Packet,
    frames,
    offload_header,
    tcp_payload_len,
)
from odpctl.datapath.pktring import (
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    TX_MAX,
    Rings,
)
from odpctl.datapath.validate import EgressTunnel
from odpctl.odp.uapi import VportType
from odpctl.odp.vport import DEFAULT_DST_PORTS

BATCH = 64
MAX_FRAME = 65536 + VNET_LEN + 4

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
IP_PKTINFO = 8
IP_RECVTOS = 13
IP_RECVTTL = 12
IP_TTL = 2
IP_TOS = 1
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_DO = 2
SOL_UDP = 17
UDP_GRO = 104

# struct tpacket_auxdata
_AUXDATA = struct.Struct("=IIIHHHH")
_AUX_SPACE = socket.CMSG_SPACE(_AUXDATA.size)
_PKTINFO = struct.Struct("=I4s4s")  # ifindex, spec_dst, addr
_RX_CMSG_SPACE = socket.CMSG_SPACE(_PKTINFO.size) + 3 * socket.CMSG_SPACE(4)
_MREQ = struct.Struct("=iHH8s")
_INT = struct.Struct("=i")
_BE16 = struct.Struct("!H")
_VXLAN = struct.Struct("!BxxxI")  # flags, VNI << 8
_GENEVE = struct.Struct("!BBHI")  # ver/optlen, O/C bits, protocol, VNI << 8
VXLAN_FLAG_VNI = 0x08
VXLAN_FLAG_GBP = 0x80
GENEVE_OAM = 0x80
GENEVE_CRITICAL = 0x40
ETH_P_TEB = 0x6558
DEFAULT_TTL = 64
_PLAIN_FRAME = 1518  # the largest frame a 1500-byte MTU lets through, VLAN tag included
_MSS_TABLE = 4096

# The first synthetic ifindex for ports without a device, far above real ones.
_synthetic = [1 << 24]


def synthetic_ifindex() -> int:
    _synthetic[0] += 1
    return _synthetic[0]


class Owner(Protocol):
    """The datapath a port belongs to."""

    def receive(self, port: Port, pkt: Packet) -> None: ...

    def port_gone(self, port: Port, reason: str) -> None: ...

    def pending(self, port: Port) -> None:
        """``port`` holds output to `Port.flush` once the current batch is done."""


class Port:
    """A vport.  Subclasses open the device or socket in ``__init__``."""

    type: VportType = VportType.UNSPEC

    def __init__(self, owner: Owner, name: str, port_no: int) -> None:
        self.owner = owner
        self.name = name
        self.port_no = port_no
        self.ifindex: int | None = None
        self.upcall_pids: tuple[int, ...] = (0,)
        self.meta = port_meta(port_no)
        # struct ovs_vport_stats order.
        self.rx_packets = self.tx_packets = self.rx_bytes = self.tx_bytes = 0
        self.rx_errors = self.tx_errors = self.rx_dropped = self.tx_dropped = 0
        self.upcall_success = self.upcall_fail = 0

    def fileno(self) -> int | None:
        """The fd to watch for packets, or None for a port that receives nothing."""
        return None

    def on_readable(self) -> None:
        return None

    def send(self, pkt: Packet) -> None:
        self.tx_dropped += 1

    def flush(self) -> None:
        """Send what `send` queued (ports that batch their output)."""
        return None

    def close(self) -> None:
        return None

    def stats(self) -> tuple[int, ...]:
        return (
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_errors,
            self.tx_errors,
            self.rx_dropped,
            self.tx_dropped,
        )

    @property
    def dst_port(self) -> int | None:
        return None

    @property
    def vxlan_gbp(self) -> bool:
        return False

    def _tx_data(self, pkt: Packet) -> bytes | bytearray:
        """What to write to a device with virtio-net headers: truncation applied."""
        if not pkt.cutlen:
            return pkt.data
        # A truncated copy is a plain frame: offloads no longer describe it.
        frame = frames(pkt.data)[0]
        return ZERO_VNET + frame[: max(0, len(frame) - pkt.cutlen)]


class NetdevPort(Port):
    type = VportType.NETDEV

    def __init__(self, owner: Owner, name: str, port_no: int, *, use_rings: bool = True) -> None:
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
        # Protocol 0 until bound, so that nothing from other devices queues up.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.rings: Rings | None = None
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            with contextlib.suppress(OSError):  # Linux 4.20+
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            for opt, size in ((SO_RCVBUFFORCE, 4 << 20), (SO_SNDBUFFORCE, 4 << 20)):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, size)
            if use_rings:
                try:
                    self.rings = Rings(sock)
                except OSError:
                    self.rings = None  # plain reads and writes, a system call each
            sock.bind((name, ETH_P_ALL))
            sock.setsockopt(
                SOL_PACKET, PACKET_ADD_MEMBERSHIP, _MREQ.pack(ifindex, PACKET_MR_PROMISC, 0, b"")
            )
            sock.setblocking(False)
        except BaseException:
            if self.rings is not None:
                self.rings.close()
            sock.close()
            raise
        self.sock = sock
        self._buf = bytearray(MAX_FRAME)
        # With rings, big frames (GSO super-packets) bypass the TX ring: one
        # system call each costs less than another copy through the ring.
        self._tx_sock = sock
        if self.rings is not None:
            self._tx_sock = _plain_sender(name)

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
                n, anc, _flags, _addr = recvmsg_into([view], _AUX_SPACE)
            except BlockingIOError:
                return
            except OSError as e:
                self._rx_error(e)
                return
            data = bytes(view[:n])
            if anc:
                data = _reinsert_vlan(data, anc)
            self.rx_packets += 1
            self.rx_bytes += n - VNET_LEN
            receive(self, Packet(data, meta))

    def _read_ring(self, rings: Rings) -> None:
        receive = self.owner.receive
        meta = self.meta
        for _ in range(4):  # a few ring-fulls per wake-up, then others get a turn
            got = rings.receive(BATCH)
            for data, status, tci, tpid in got:
                if status & TP_STATUS_VLAN_VALID:
                    data = _with_vlan(
                        data, tci, tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                    )
                self.rx_packets += 1
                self.rx_bytes += len(data) - VNET_LEN
                receive(self, Packet(data, meta))
            if len(got) < BATCH:
                break
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
        rings = self.rings
        if rings is not None:
            if len(data) <= TX_MAX:
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
            else:
                self.tx_dropped += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(data) - VNET_LEN

    def flush(self) -> None:
        if self.rings is not None:
            self.rings.flush()
            self.tx_errors = self.rings.tx_failed

    def close(self) -> None:
        if self.rings is not None:
            self.rings.close()
            self._tx_sock.close()
        self.sock.close()


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


def _frame_l3(data: bytes, at: int) -> tuple[int, int]:
    """Offset and EtherType of the network header of the frame at ``data[at:]``."""
    off = at + 12
    (t,) = _BE16.unpack_from(data, off)
    while t in (0x8100, 0x88A8):
        off += 4
        (t,) = _BE16.unpack_from(data, off)
    return off + 2, t


def _reinsert_vlan(data: bytes, anc: list[tuple[int, int, bytes]]) -> bytes:
    """Put back a VLAN tag the device stripped into metadata (RX VLAN offload)."""
    for level, kind, cdata in anc:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(cdata) < _AUXDATA.size:
            continue
        status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(cdata)
        if not status & TP_STATUS_VLAN_VALID:
            return data
        return _with_vlan(data, tci, tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100)
    return data


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


class TunnelPort(Port):
    """Common to VXLAN and Geneve: a UDP socket and the tunnel key of what arrives."""

    def __init__(
        self, owner: Owner, name: str, port_no: int, dst_port: int | None, gbp: bool = False
    ) -> None:
        super().__init__(owner, name, port_no)
        self._dst_port = dst_port if dst_port is not None else DEFAULT_DST_PORTS[self.type]
        self._gbp = gbp
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            # Tunnelled TSO super-frames arrive whole; with UDP_GRO the kernel
            # also says their segment size (and may coalesce datagrams).
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            for opt, size in ((SO_RCVBUFFORCE, 4 << 20), (SO_SNDBUFFORCE, 4 << 20)):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, size)
            sock.bind(("0.0.0.0", self._dst_port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._df = False
        self._set_df(False)
        self._mss: dict[int, int] = {}

    @property
    def dst_port(self) -> int | None:
        return self._dst_port

    @property
    def vxlan_gbp(self) -> bool:
        return self._gbp

    def fileno(self) -> int | None:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def _set_df(self, df: bool) -> None:
        self.sock.setsockopt(
            socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT
        )
        self._df = df

    # Subclasses: the header for an egress tunnel, and the parse of one received.
    def header(self, egress: EgressTunnel) -> bytes:
        raise NotImplementedError

    def decap(self, payload: bytes) -> tuple[int, int, bytes, int] | None:
        """(VNI, extra tunnel flags, options, header length), or None to drop."""
        raise NotImplementedError

    def on_readable(self) -> None:
        recvmsg = self.sock.recvmsg
        for _ in range(BATCH):
            try:
                payload, anc, _flags, addr = recvmsg(MAX_FRAME, _RX_CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError:
                self.rx_errors += 1
                return
            local = tos = ttl = gso_size = 0
            for level, kind, cdata in anc:
                if level == socket.IPPROTO_IP:
                    if kind == IP_PKTINFO and len(cdata) >= _PKTINFO.size:
                        local = int.from_bytes(_PKTINFO.unpack_from(cdata)[2], "big")
                    elif kind == IP_TOS and cdata:
                        tos = cdata[0]
                    elif kind == IP_TTL and len(cdata) >= 4:
                        ttl = _INT.unpack_from(cdata)[0]
                elif level == SOL_UDP and kind == UDP_GRO and len(cdata) >= 2:
                    gso_size = _INT.unpack_from(cdata.ljust(4, b"\0"))[0] & 0xFFFF
            remote = int.from_bytes(socket.inet_aton(addr[0]), "big")
            if gso_size and len(payload) > gso_size and not self._one_frame(payload):
                # Datagrams coalesced by GRO: each was gso_size bytes.
                for at in range(0, len(payload), gso_size):
                    self._decap_one(
                        payload[at : at + gso_size], remote, local, tos, ttl, addr[1], 0
                    )
            else:
                self._decap_one(payload, remote, local, tos, ttl, addr[1], gso_size)

    def _one_frame(self, payload: bytes) -> bool:
        """Whether ``payload`` is one tunnel header and one (super-)frame."""
        parsed = self.decap(payload)
        if parsed is None:
            return False
        hlen = parsed[3]
        try:
            l3, eth_type = _frame_l3(payload, hlen)
            if eth_type == 0x0800:
                return l3 + int(_BE16.unpack_from(payload, l3 + 2)[0]) == len(payload)
            if eth_type == 0x86DD:
                return l3 + 40 + int(_BE16.unpack_from(payload, l3 + 4)[0]) == len(payload)
        except (IndexError, struct.error):
            return False
        return False

    def _decap_one(
        self, payload: bytes, remote: int, local: int, tos: int, ttl: int, sport: int, gso_size: int
    ) -> None:
        parsed = self.decap(payload)
        if parsed is None or len(payload) - parsed[3] < 14:
            self.rx_errors += 1
            return
        vni, flags, opts, hlen = parsed
        meta = self._tunnel_meta(vni, remote, local, tos, ttl, flags, sport, len(opts))
        inner = payload[hlen:]
        self.rx_packets += 1
        self.rx_bytes += len(inner)
        # A TSO super-frame from a tunnel endpoint on this machine arrives
        # whole with no word of its segment size: learn what each remote
        # sends as full-sized segments, to cut the next super-frame alike.
        if len(inner) <= _PLAIN_FRAME:
            mss = tcp_payload_len(inner)
            if mss > self._mss.get(remote, 0):
                if len(self._mss) > _MSS_TABLE and remote not in self._mss:
                    self._mss.clear()
                self._mss[remote] = mss
        vnet = offload_header(inner, gso_size, self._mss.get(remote, 0))
        self.owner.receive(self, Packet(vnet + inner, meta, opts))

    def _tunnel_meta(
        self,
        vni: int,
        remote: int,
        local: int,
        tos: int,
        ttl: int,
        flags: int,
        sport: int,
        opts_len: int,
    ) -> bytes:
        meta = bytearray(self.meta)
        for name, value in (
            ("tun_id", vni),
            ("tun_ipv4_src", remote),
            ("tun_ipv4_dst", local),
            ("tun_tos", tos),
            ("tun_ttl", ttl),
            ("tun_flags", TUN_KEY | flags),
            ("tun_tp_src", sport),
            ("tun_tp_dst", self._dst_port),
            ("tun_proto", AF_INET),
            ("tun_opts_len", opts_len),
        ):
            FIELD[name].pack_into(meta, OFFSET[name], value)
        return bytes(meta)

    def send(self, pkt: Packet) -> None:
        egress = pkt.egress
        if not isinstance(egress, EgressTunnel) or egress.key.tun_proto != AF_INET:
            self.tx_errors += 1  # no tunnel to send it through (or an IPv6 one)
            return
        t = egress.key
        header = self.header(egress)
        df = bool(t.tun_flags & 0x02)
        if df != self._df:
            self._set_df(df)
        dst = (socket.inet_ntoa(t.tun_ipv4_dst.to_bytes(4, "big")), t.tun_tp_dst or self._dst_port)
        cmsgs = [
            (socket.IPPROTO_IP, IP_TTL, _INT.pack(t.tun_ttl or DEFAULT_TTL)),
            (socket.IPPROTO_IP, IP_TOS, _INT.pack(t.tun_tos)),
        ]
        if t.tun_ipv4_src:
            cmsgs.append(
                (
                    socket.IPPROTO_IP,
                    IP_PKTINFO,
                    _PKTINFO.pack(0, t.tun_ipv4_src.to_bytes(4, "big"), bytes(4)),
                )
            )
        for frame in frames(pkt.data):
            if pkt.cutlen:
                frame = frame[: max(0, len(frame) - pkt.cutlen)]
            try:
                self.sock.sendmsg([header, frame], cmsgs, 0, dst)
            except BlockingIOError:
                self.tx_dropped += 1
                continue
            except OSError:
                self.tx_errors += 1
                continue
            self.tx_packets += 1
            self.tx_bytes += len(frame)


class VxlanPort(TunnelPort):
    type = VportType.VXLAN

    def header(self, egress: EgressTunnel) -> bytes:
        t = egress.key
        vni = (t.tun_id & 0xFFFFFF) << 8
        if self._gbp and t.tun_flags & TUN_VXLAN_OPT and egress.opts:
            gbp = int.from_bytes(egress.opts[-4:], "big")
            # G bit, then the D and A bits and the 16-bit group policy ID.
            flags = VXLAN_FLAG_VNI | VXLAN_FLAG_GBP
            return struct.pack("!BBHI", flags, (gbp >> 16) & 0x48, gbp & 0xFFFF, vni)
        return _VXLAN.pack(VXLAN_FLAG_VNI, vni)

    def decap(self, payload: bytes) -> tuple[int, int, bytes, int] | None:
        if len(payload) < 8:
            return None
        flags, vni = _VXLAN.unpack_from(payload)
        if not flags & VXLAN_FLAG_VNI:
            return None
        if self._gbp and flags & VXLAN_FLAG_GBP:
            gbp = ((payload[1] & 0x48) << 16) | _BE16.unpack_from(payload, 2)[0]
            return vni >> 8, TUN_VXLAN_OPT, gbp.to_bytes(4, "big"), 8
        return vni >> 8, 0, b"", 8


class GenevePort(TunnelPort):
    type = VportType.GENEVE

    def header(self, egress: EgressTunnel) -> bytes:
        t = egress.key
        opts = egress.opts if t.tun_flags & TUN_GENEVE_OPT else b""
        bits = GENEVE_OAM if t.tun_flags & TUN_OAM else 0
        if _has_critical(opts):
            bits |= GENEVE_CRITICAL
        vni = (t.tun_id & 0xFFFFFF) << 8
        return _GENEVE.pack(len(opts) // 4, bits, ETH_P_TEB, vni) + opts

    def decap(self, payload: bytes) -> tuple[int, int, bytes, int] | None:
        if len(payload) < 8:
            return None
        ver_len, bits, proto, vni = _GENEVE.unpack_from(payload)
        if ver_len >> 6 or proto != ETH_P_TEB:
            return None
        hlen = 8 + (ver_len & 0x3F) * 4
        if len(payload) < hlen:
            return None
        opts = payload[8:hlen]
        flags = (TUN_GENEVE_OPT if opts else 0) | (TUN_OAM if bits & GENEVE_OAM else 0)
        return vni >> 8, flags, opts, hlen


def _has_critical(opts: bytes) -> bool:
    """Whether any Geneve option has its type's critical bit (0x80) set."""
    at = 0
    while at + 4 <= len(opts):
        if opts[at + 2] & 0x80:
            return True
        at += 4 + (opts[at + 3] & 0x1F) * 4
    return False


def open_port(
    owner: Owner, kind: VportType, name: str, port_no: int, dst_port: int | None, gbp: bool
) -> Port:
    """A new port of ``kind``; OSError with the errno the kernel would give."""
    if kind == VportType.NETDEV:
        return NetdevPort(owner, name, port_no)
    if kind == VportType.INTERNAL:
        return InternalPort(owner, name, port_no)
    if kind == VportType.VXLAN:
        return VxlanPort(owner, name, port_no, dst_port, gbp)
    if kind == VportType.GENEVE:
        return GenevePort(owner, name, port_no, dst_port)
    raise OSError(errno.EAFNOSUPPORT, f"vport type {int(kind)} is not supported")

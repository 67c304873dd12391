"""Tunnel ports: VXLAN and Geneve over a UDP socket.

Real encapsulation, both ways: what a tunnel port sends, a Linux vxlan
device or the kernel datapath's vxlan port receives, and the other way
round.  The outer addresses, TOS, TTL and UDP ports of what arrives become
the packet's tunnel key; what leaves is encapsulated as the packet's
set(tunnel(...)) says, GSO super-packets cut into segments and sent a
batch per system call with UDP GSO.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time

from odpctl.datapath import netdev
from odpctl.datapath.layout import (
    AF_INET,
    FIELD,
    OFFSET,
    TUN_GENEVE_OPT,
    TUN_KEY,
    TUN_OAM,
    TUN_VXLAN_OPT,
)
from odpctl.datapath.packet import (
    Packet,
    frames,
    offload_header,
    tcp_payload_len,
)
from odpctl.datapath.ports.base import (
    BATCH,
    MAX_FRAME,
    SO_RCVBUFFORCE,
    SO_SNDBUFFORCE,
    Owner,
    Port,
)
from odpctl.datapath.validate import EgressTunnel
from odpctl.odp.uapi import ETH_P_IP, ETH_P_IPV6, VportType
from odpctl.odp.vport import DEFAULT_DST_PORTS

IP_PKTINFO = 8
IP_RECVTOS = 13
IP_RECVTTL = 12
IP_TTL = 2
IP_TOS = 1
IP_MTU_DISCOVER = 10
IP_RECVFRAGSIZE = 25
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_DO = 2
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
# What one UDP GSO send may carry: 64 datagrams, and an IP packet's worth.
UDP_GSO_SEGMENTS = 64
UDP_GSO_BYTES = 65000

_PKTINFO = struct.Struct("=I4s4s")  # ifindex, spec_dst, addr
_RX_CMSG_SPACE = socket.CMSG_SPACE(_PKTINFO.size) + 4 * socket.CMSG_SPACE(4)
_OUTER_IPV4 = 28  # the IPv4 and UDP headers around a tunnel datagram
_INT = struct.Struct("=i")
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_VXLAN = struct.Struct("!BxxxI")  # flags, VNI << 8
_GENEVE = struct.Struct("!BBHI")  # ver/optlen, O/C bits, protocol, VNI << 8
VXLAN_FLAG_VNI = 0x08
VXLAN_FLAG_GBP = 0x80
GENEVE_OAM = 0x80
GENEVE_CRITICAL = 0x40
ETH_P_TEB = 0x6558
DEFAULT_TTL = 64
_MSS_TABLE = 4096


def _frame_l3(data: bytes, at: int) -> tuple[int, int]:
    """Offset and EtherType of the network header of the frame at ``data[at:]``."""
    off = at + 12
    (t,) = _BE16.unpack_from(data, off)
    while t in (0x8100, 0x88A8):
        off += 4
        (t,) = _BE16.unpack_from(data, off)
    return off + 2, t


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
            with contextlib.suppress(OSError):  # Linux 4.10+
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVFRAGSIZE, 1)
            # Tunnelled TSO super-frames arrive whole; with UDP_GRO the kernel
            # also says their segment size (and may coalesce datagrams).
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            for opt, size in ((SO_RCVBUFFORCE, 4 << 20), (SO_SNDBUFFORCE, 4 << 20)):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, size)
            sock.bind(("0.0.0.0", self._dst_port))  # noqa: S104 - the tunnel port: any underlay
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._df = False
        self._set_df(False)
        self._mss: dict[int, int] = {}
        self._underlay_mtus: dict[int, tuple[int, float]] = {}  # ifindex: MTU, read again after
        self._udp_gso = True

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
            local = tos = ttl = gso_size = ifindex = 0
            reassembled = False
            for level, kind, cdata in anc:
                if level == socket.IPPROTO_IP:
                    if kind == IP_PKTINFO and len(cdata) >= _PKTINFO.size:
                        ifindex, _spec_dst, local_ip = _PKTINFO.unpack_from(cdata)
                        local = int.from_bytes(local_ip, "big")
                    elif kind == IP_TOS and cdata:
                        tos = cdata[0]
                    elif kind == IP_TTL and len(cdata) >= 4:
                        ttl = _INT.unpack_from(cdata)[0]
                    elif kind == IP_RECVFRAGSIZE:
                        reassembled = True
                elif level == SOL_UDP and kind == UDP_GRO and len(cdata) >= 2:
                    gso_size = _INT.unpack_from(cdata.ljust(4, b"\0"))[0] & 0xFFFF
            remote = int.from_bytes(socket.inet_aton(addr[0]), "big")
            if gso_size and len(payload) > gso_size and not self._one_frame(payload):
                # Datagrams coalesced by GRO: each was gso_size bytes.
                for at in range(0, len(payload), gso_size):
                    self._decap_one(
                        payload[at : at + gso_size], remote, local, tos, ttl, addr[1], False
                    )
            else:
                # Bigger than the underlay carries, and not put together from
                # fragments: a TSO super-frame from a tunnel endpoint on this
                # machine, handed over whole.
                whole = not reassembled and not self._fits_underlay(ifindex, len(payload))
                self._decap_one(payload, remote, local, tos, ttl, addr[1], whole)

    def _fits_underlay(self, ifindex: int, size: int) -> bool:
        """Whether a datagram of ``size`` bytes fits the MTU of the device it came in on."""
        size += _OUTER_IPV4
        known = self._underlay_mtus.get(ifindex)
        if known is not None and (size <= known[0] or time.monotonic() < known[1]):
            return size <= known[0]
        # Not known yet, or a super-frame: the MTU may have grown since it
        # was read, but reading it costs two system calls, so once a second.
        try:
            mtu = netdev.mtu(socket.if_indextoname(ifindex))
        except OSError:
            return True  # gone already: take it as it looks
        self._underlay_mtus[ifindex] = (mtu, time.monotonic() + 1.0)
        return size <= mtu

    def _one_frame(self, payload: bytes) -> bool:
        """Whether ``payload`` is one tunnel header and one (super-)frame."""
        parsed = self.decap(payload)
        if parsed is None:
            return False
        hlen = parsed[3]
        try:
            l3, eth_type = _frame_l3(payload, hlen)
            if eth_type == ETH_P_IP:
                return l3 + int(_BE16.unpack_from(payload, l3 + 2)[0]) == len(payload)
            if eth_type == ETH_P_IPV6:
                return l3 + 40 + int(_BE16.unpack_from(payload, l3 + 4)[0]) == len(payload)
        except (IndexError, struct.error):
            return False
        return False

    def _decap_one(
        self,
        payload: bytes,
        remote: int,
        local: int,
        tos: int,
        ttl: int,
        sport: int,
        super_frame: bool,
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
        # A super-frame comes with no word of its segment size: learn what
        # each remote sends in frames the underlay carried as they are, to
        # cut its super-frames alike.
        if not super_frame:
            mss = tcp_payload_len(inner)
            if mss > self._mss.get(remote, 0):
                if len(self._mss) > _MSS_TABLE and remote not in self._mss:
                    self._mss.clear()
                self._mss[remote] = mss
        vnet = offload_header(inner, self._mss.get(remote, 0), super_frame)
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
        out = frames(pkt.data)
        if pkt.cutlen:
            out = [f[: max(0, len(f) - pkt.cutlen)] for f in out]
        if len(out) > 1 and self._udp_gso:
            self._send_segmented(header, out, cmsgs, dst)
            return
        for frame in out:
            self._send_one([header, frame], cmsgs, dst, 1, len(frame))

    def _send_one(
        self,
        buffers: list[bytes],
        cmsgs: list[tuple[int, int, bytes]],
        dst: tuple[str, int],
        count: int,
        size: int,
    ) -> bool:
        try:
            self.sock.sendmsg(buffers, cmsgs, 0, dst)
        except BlockingIOError:
            self.tx_dropped += count
            return True
        except OSError as e:
            if count > 1 and e.errno in (errno.EINVAL, errno.ENOPROTOOPT, errno.EIO):
                return False  # no UDP GSO here
            self.tx_errors += count
            return True
        self.tx_packets += count
        self.tx_bytes += size
        return True

    def _send_segmented(
        self,
        header: bytes,
        out: list[bytes],
        cmsgs: list[tuple[int, int, bytes]],
        dst: tuple[str, int],
    ) -> None:
        """The segments of a GSO packet in few system calls, with UDP GSO.

        Every datagram but the last of one call must have the same size, which
        segments of one TCP super-packet have.
        """
        at = 0
        while at < len(out):
            size = len(out[at])
            end = at + 1
            total = len(header) + size
            while (
                end < len(out)
                and end - at < UDP_GSO_SEGMENTS
                and total + len(header) + len(out[end]) <= UDP_GSO_BYTES
            ):
                total += len(header) + len(out[end])
                end += 1
                if len(out[end - 1]) != size:
                    break  # a shorter one ends the call
            group = out[at:end]
            if len(group) == 1:
                self._send_one([header, group[0]], cmsgs, dst, 1, size)
            else:
                buffers = [part for frame in group for part in (header, frame)]
                seg = [(SOL_UDP, UDP_SEGMENT, _U16.pack(len(header) + size))]
                if not self._send_one(
                    buffers, cmsgs + seg, dst, len(group), sum(len(f) for f in group)
                ):
                    self._udp_gso = False
                    for frame in group:
                        self._send_one([header, frame], cmsgs, dst, 1, len(frame))
            at = end


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

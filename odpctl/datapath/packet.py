"""A packet inside the userspace datapath, and its offload metadata.

Packets move between netdev and internal ports with a ``virtio_net_hdr`` in
front (PACKET_VNET_HDR on AF_PACKET sockets, IFF_VNET_HDR on TAP devices).
That header says whether the packet is a TSO/GSO "super-packet" to be cut
into MSS-sized segments and whether its layer-4 checksum is still to be
filled in.  Keeping it lets a 64 KiB TCP segment cross the datapath as one
read and one write instead of forty-five of each, which is most of the
userspace datapath's throughput; and it is needed for correctness too: a
veth peer hands over packets whose TCP checksum is only the pseudo-header
sum, and the next hop will finish it only if told so.

Where a packet leaves for a sink without offloads (a UDP tunnel, an upcall)
`finalize` does in software what the hardware would: cut GSO packets into
segments and complete checksums.
"""

from __future__ import annotations

import struct

from odpctl.datapath import csum
from odpctl.datapath.extract import extract
from odpctl.datapath.layout import FIELD, META_SIZE, OFFSET
from odpctl.odp.uapi import ETH_P_IP, ETH_P_IPV6

# struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET = struct.Struct("=BBHHHH")
VNET_LEN = VNET.size
ZERO_VNET = bytes(VNET_LEN)
F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80

_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_VLAN_TYPES = (0x8100, 0x88A8)
_TCP, _UDP = 6, 17
_TCP_FIN_PSH = 0x09
_ETH_MTU = 1500
_TCP_CWR = 0x80


class Packet:
    """One packet: ``data`` is the virtio_net_hdr followed by the Ethernet frame.

    ``meta`` is the metadata part of its flow key (port, tunnel, recirc_id,
    dp_hash, priority, mark); ``fields`` the packet part, extracted on
    demand and dropped whenever an action changes the bytes.  ``owned``
    says that ``data`` is a bytearray no other packet refers to, so that
    it may be changed in place.
    """

    __slots__ = ("cutlen", "data", "egress", "fields", "meta", "opts", "owned")

    def __init__(
        self, data: bytes | bytearray, meta: bytes, opts: bytes = b"", fields: bytes | None = None
    ) -> None:
        self.data = data
        self.meta = meta
        self.opts = opts
        self.fields = fields
        self.egress: object = None  # an EgressTunnel once set(tunnel(...)) ran
        self.cutlen = 0
        self.owned = False

    def key(self) -> bytes:
        """The flat flow key (metadata and packet parts)."""
        fields = self.fields
        if fields is None:
            fields = self.fields = extract(self.data, VNET_LEN)
        return self.meta + fields

    def copy(self) -> Packet:
        """A clone: shares the bytes until either side changes them."""
        other = Packet(self.data, self.meta, self.opts, self.fields)
        other.egress = self.egress
        other.cutlen = self.cutlen
        self.owned = False
        return other

    def writable(self) -> bytearray:
        """The bytes, made private to this packet, for in-place changes."""
        data = self.data
        if not self.owned or not isinstance(data, bytearray):
            data = self.data = bytearray(data)
            self.owned = True
        self.fields = None
        return data

    def set_meta(self, name: str, value: int) -> None:
        off = OFFSET[name]
        assert off < META_SIZE
        meta = bytearray(self.meta)
        FIELD[name].pack_into(meta, off, value)
        self.meta = bytes(meta)

    @property
    def frame_len(self) -> int:
        return len(self.data) - VNET_LEN


def frames(data: bytes | bytearray) -> list[bytes]:
    """The packet as plain Ethernet frames: GSO segmented, checksums complete."""
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = VNET.unpack_from(data)
    gso = gso_type & ~GSO_ECN
    if gso == GSO_NONE or not gso_size:
        if not flags & F_NEEDS_CSUM:
            return [bytes(data[VNET_LEN:])]
        frame = bytearray(data[VNET_LEN:])
        _complete(frame, csum_start, csum_offset)
        return [bytes(frame)]
    return _segment(memoryview(data)[VNET_LEN:], gso, gso_size)


def offload_header(frame: bytes, mss: int = 0, super_frame: bool = False) -> bytes:
    """The virtio_net_hdr for a frame that came without one (out of a UDP tunnel).

    Two things a UDP socket passes on silently must be written down here.
    A tunnel endpoint on the same machine (a Linux vxlan device over a veth)
    leaves inner TCP and UDP checksums partial: the field holds the
    pseudo-header sum, to be completed by hardware a UDP socket never
    reaches.  And it may hand over a whole TSO super-frame in one datagram
    (the caller says whether this is one: ``super_frame``), to be cut into
    segments whose size the socket does not say: ``mss``, what the sender
    was seen to use, else what a 1500-byte MTU allows.  Such a frame gets
    NEEDS_CSUM, and GSO when it is a super-frame, so that whoever takes it
    next finishes the job.

    The checksum test is safe as well as cheap: a complete checksum that
    happens to equal the pseudo-header sum comes out of completion unchanged.
    """
    try:
        l3, eth_type = _l3(frame)
        if eth_type == ETH_P_IP:
            ihl = (frame[l3] & 0x0F) * 4
            if _BE16.unpack_from(frame, l3 + 6)[0] & 0x3FFF:
                return ZERO_VNET  # a fragment: its checksum covers more than it
            proto = frame[l3 + 9]
            l4 = l3 + ihl
            length = _BE16.unpack_from(frame, l3 + 2)[0] - ihl
            addrs = frame[l3 + 12 : l3 + 20]
            gso_type = GSO_TCPV4
        elif eth_type == ETH_P_IPV6:
            proto = frame[l3 + 6]
            l4 = l3 + 40
            length = _BE16.unpack_from(frame, l3 + 4)[0]
            addrs = frame[l3 + 8 : l3 + 40]
            gso_type = GSO_TCPV6
        else:
            return ZERO_VNET
        if proto == _TCP:
            offset = 16
            hdr_len = l4 + (frame[l4 + 12] >> 4) * 4
        elif proto == _UDP:
            offset = 6
            hdr_len = l4 + 8
            gso_type = GSO_UDP_L4
        else:
            return ZERO_VNET
        if l4 + offset + 2 > len(frame) or length <= 0:
            return ZERO_VNET
        (field,) = _BE16.unpack_from(frame, l4 + offset)
        pseudo = (int.from_bytes(addrs, "big") + proto + length) % 0xFFFF
        if field != (pseudo or 0xFFFF) and field != pseudo:
            return ZERO_VNET
    except (IndexError, struct.error):
        return ZERO_VNET
    if super_frame:
        gso_size = mss or _ETH_MTU - (hdr_len - l3)
        if len(frame) - hdr_len > gso_size:
            return VNET.pack(F_NEEDS_CSUM, gso_type, hdr_len, gso_size, l4, offset)
    return VNET.pack(F_NEEDS_CSUM, GSO_NONE, 0, 0, l4, offset)


def fit_mtu(data: bytes | bytearray, mtu: int) -> bytes | bytearray | None:
    """``data`` made fit a device of ``mtu``: a too-big TCP frame becomes GSO.

    A TCP super-frame whose segment size had to be guessed (see
    `offload_header`) may come out bigger than the device takes; handed
    over as GSO with segments the device's size, it goes through, and so
    does a GSO frame whose segments were guessed too big.  None for what
    cannot be cut (the device would refuse it whole).
    """
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET.unpack_from(data)
    frame = memoryview(data)[VNET_LEN:]
    try:
        l3, eth_type = _l3(frame)
        if gso_type == GSO_NONE and len(frame) - l3 <= mtu:
            return data
        if eth_type == ETH_P_IP and frame[l3 + 9] == _TCP:
            l4 = l3 + (frame[l3] & 0x0F) * 4
            addrs = bytes(frame[l3 + 12 : l3 + 20])
            kind = GSO_TCPV4
        elif eth_type == ETH_P_IPV6 and frame[l3 + 6] == _TCP:
            l4 = l3 + 40
            addrs = bytes(frame[l3 + 8 : l3 + 40])
            kind = GSO_TCPV6
        else:
            return data if gso_type != GSO_NONE else None
        hdr_end = l4 + (frame[l4 + 12] >> 4) * 4
    except (IndexError, struct.error):
        return None
    segment = mtu - (hdr_end - l3)  # the TCP payload one segment may carry
    if segment <= 0:
        return data if gso_type != GSO_NONE else None
    if gso_type != GSO_NONE:
        if gso_type != kind or gso_size <= segment:
            return data
        out = bytearray(data)
        VNET.pack_into(out, 0, flags, gso_type, hdr_len, segment, csum_start, csum_offset)
        return out
    out = bytearray(data)
    if not flags & F_NEEDS_CSUM:
        # GSO wants the checksum partial: the pseudo-header sum in the field.
        length = len(frame) - l4
        pseudo = (int.from_bytes(addrs, "big") + _TCP + length) % 0xFFFF
        _BE16.pack_into(out, VNET_LEN + l4 + 16, pseudo)
    VNET.pack_into(out, 0, F_NEEDS_CSUM, kind, hdr_end, segment, l4, 16)
    return out


def tcp_payload_len(frame: bytes) -> int:
    """The TCP payload length of a plain IPv4/IPv6 TCP frame, or 0."""
    try:
        l3, eth_type = _l3(frame)
        if eth_type == ETH_P_IP and frame[l3 + 9] == _TCP:
            l4 = l3 + (frame[l3] & 0x0F) * 4
        elif eth_type == ETH_P_IPV6 and frame[l3 + 6] == _TCP:
            l4 = l3 + 40
        else:
            return 0
        return len(frame) - l4 - (frame[l4 + 12] >> 4) * 4
    except IndexError:
        return 0


def _complete(frame: bytearray, start: int, offset: int) -> None:
    """Fill in a partial checksum: the field holds the pseudo-header sum already."""
    if start + offset + 2 > len(frame):
        return
    value = csum.checksum(memoryview(frame)[start:])
    _BE16.pack_into(frame, start + offset, value or 0xFFFF)


def _l3(frame: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Offset and EtherType of the network header, past any VLAN tags."""
    off = 12
    (t,) = _BE16.unpack_from(frame, off)
    while t in _VLAN_TYPES and len(frame) >= off + 6:
        off += 4
        (t,) = _BE16.unpack_from(frame, off)
    return off + 2, t


def _fold_check(total: int) -> int:
    """The checksum field for a one's-complement sum held as a plain int."""
    folded = total % 0xFFFF
    if total and not folded:
        folded = 0xFFFF
    return ~folded & 0xFFFF or 0xFFFF


def _segment(frame: memoryview, gso: int, mss: int) -> list[bytes]:
    """Software GSO for TCP (v4/v6) and UDP_L4 super-packets.

    The headers are summed once with their varying fields zeroed; each
    segment then only adds its own lengths, IP ID, sequence number, flags
    and payload to that sum, one ``int.from_bytes`` of the payload apiece.
    """
    l3, eth_type = _l3(frame)
    v4 = eth_type == ETH_P_IP
    if v4:
        l4 = l3 + (frame[l3] & 0x0F) * 4
        proto = frame[l3 + 9]
        addrs = bytes(frame[l3 + 12 : l3 + 20])
    elif eth_type == ETH_P_IPV6:
        l4 = l3 + 40  # extension headers are not offloaded by Linux GSO for TCP/UDP
        proto = frame[l3 + 6]
        addrs = bytes(frame[l3 + 8 : l3 + 40])
    else:
        return [bytes(frame)]
    tcp = proto == _TCP
    if tcp and gso in (GSO_TCPV4, GSO_TCPV6):
        hdr_end = l4 + (frame[l4 + 12] >> 4) * 4
    elif proto == _UDP and gso == GSO_UDP_L4:
        hdr_end = l4 + 8
    else:
        return [bytes(frame)]  # UFO and the like: let the receiver cope
    tmpl = bytearray(frame[:hdr_end])
    ip_id = _BE16.unpack_from(tmpl, l3 + 4)[0] if v4 else 0
    if v4:
        tmpl[l3 + 2 : l3 + 6] = bytes(4)  # total length, ID
        tmpl[l3 + 10 : l3 + 12] = bytes(2)  # checksum
        ip_base = int.from_bytes(tmpl[l3:l4], "big")
    if tcp:
        (seq,) = _BE32.unpack_from(tmpl, l4 + 4)
        doff = tmpl[l4 + 12] << 8
        flags = tmpl[l4 + 13]
        tmpl[l4 + 4 : l4 + 8] = bytes(4)  # sequence number
        tmpl[l4 + 12 : l4 + 14] = bytes(2)  # data offset and flags
        check_at = l4 + 16
    else:
        seq = doff = flags = 0
        tmpl[l4 + 4 : l4 + 6] = bytes(2)  # UDP length
        check_at = l4 + 6
    tmpl[check_at : check_at + 2] = bytes(2)
    l4_base = int.from_bytes(tmpl[l4:hdr_end], "big") + int.from_bytes(addrs, "big") + proto
    l4_hdr = hdr_end - l4
    payload = frame[hdr_end:]
    total = len(payload)
    out: list[bytes] = []
    pack16, pack32 = _BE16.pack_into, _BE32.pack_into
    for i, start in enumerate(range(0, total, mss)):
        chunk = payload[start : start + mss]
        n = len(chunk)
        l4_len = l4_hdr + n
        hdr = bytearray(tmpl)
        if v4:
            tot = l4 - l3 + l4_len
            ident = (ip_id + i) & 0xFFFF
            pack16(hdr, l3 + 2, tot)
            pack16(hdr, l3 + 4, ident)
            pack16(hdr, l3 + 10, _fold_check(ip_base + tot + ident))
        else:
            pack16(hdr, l3 + 4, l4_len)
        value = int.from_bytes(chunk, "big") << (8 if n & 1 else 0)
        if tcp:
            seg_seq = (seq + start) & 0xFFFFFFFF
            seg_flags = flags
            if start + mss < total:
                seg_flags &= ~_TCP_FIN_PSH
            if i:
                seg_flags &= ~_TCP_CWR
            pack32(hdr, l4 + 4, seg_seq)
            pack16(hdr, l4 + 12, doff | seg_flags)
            varying = (seg_seq >> 16) + (seg_seq & 0xFFFF) + (doff | seg_flags)
        else:
            pack16(hdr, l4 + 4, l4_len)
            varying = l4_len
        pack16(hdr, check_at, _fold_check(l4_base + l4_len + varying + value))
        out.append(bytes(hdr) + chunk)
    return out

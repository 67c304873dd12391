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
_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
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


def offload_header(frame: bytes, gso_size: int = 0, mss: int = 0) -> bytes:
    """The virtio_net_hdr for a frame that came without one (out of a UDP tunnel).

    Two things a UDP socket passes on silently must be written down here.
    A tunnel endpoint on the same machine (a Linux vxlan device over a veth)
    leaves inner TCP and UDP checksums partial: the field holds the
    pseudo-header sum, to be completed by hardware a UDP socket never
    reaches.  And it may hand over a whole TSO super-frame in one datagram,
    to be cut into segments whose size the socket does not say: ``gso_size``
    when the caller knows it, else ``mss`` (what the sender was seen to
    use), else what a 1500-byte MTU allows.  Such a frame gets NEEDS_CSUM,
    and GSO when it is a super-frame, so that whoever takes it next
    finishes the job.

    The checksum test is safe as well as cheap: a complete checksum that
    happens to equal the pseudo-header sum comes out of completion unchanged.
    """
    try:
        l3, eth_type = _l3(frame)
        if eth_type == _ETH_P_IP:
            ihl = (frame[l3] & 0x0F) * 4
            if _BE16.unpack_from(frame, l3 + 6)[0] & 0x3FFF:
                return ZERO_VNET  # a fragment: its checksum covers more than it
            proto = frame[l3 + 9]
            l4 = l3 + ihl
            length = _BE16.unpack_from(frame, l3 + 2)[0] - ihl
            addrs = frame[l3 + 12 : l3 + 20]
            gso_type = GSO_TCPV4
        elif eth_type == _ETH_P_IPV6:
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
    payload = len(frame) - hdr_len
    if not gso_size and payload + hdr_len - l3 > _ETH_MTU:
        gso_size = mss or _ETH_MTU - (hdr_len - l3)
    if gso_size and payload > gso_size:
        return VNET.pack(F_NEEDS_CSUM, gso_type, hdr_len, gso_size, l4, offset)
    return VNET.pack(F_NEEDS_CSUM, GSO_NONE, 0, 0, l4, offset)


def tcp_payload_len(frame: bytes) -> int:
    """The TCP payload length of a plain IPv4/IPv6 TCP frame, or 0."""
    try:
        l3, eth_type = _l3(frame)
        if eth_type == _ETH_P_IP and frame[l3 + 9] == _TCP:
            l4 = l3 + (frame[l3] & 0x0F) * 4
        elif eth_type == _ETH_P_IPV6 and frame[l3 + 6] == _TCP:
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


def _segment(frame: memoryview, gso: int, mss: int) -> list[bytes]:
    """Software GSO for TCP (v4/v6) and UDP_L4 super-packets."""
    l3, eth_type = _l3(frame)
    if eth_type == _ETH_P_IP:
        l4 = l3 + (frame[l3] & 0x0F) * 4
        proto = frame[l3 + 9]
        src, dst = bytes(frame[l3 + 12 : l3 + 16]), bytes(frame[l3 + 16 : l3 + 20])
    elif eth_type == _ETH_P_IPV6:
        l4 = l3 + 40  # extension headers are not offloaded by Linux GSO for TCP/UDP
        proto = frame[l3 + 6]
        src, dst = bytes(frame[l3 + 8 : l3 + 24]), bytes(frame[l3 + 24 : l3 + 40])
    else:
        return [bytes(frame)]
    if proto == _TCP and gso in (GSO_TCPV4, GSO_TCPV6):
        hdr_end = l4 + (frame[l4 + 12] >> 4) * 4
    elif proto == _UDP and gso == GSO_UDP_L4:
        hdr_end = l4 + 8
    else:
        return [bytes(frame)]  # UFO and the like: let the receiver cope
    headers = bytes(frame[:hdr_end])
    payload = frame[hdr_end:]
    total = len(payload)
    out: list[bytes] = []
    (seq,) = _BE32.unpack_from(headers, l4 + 4) if proto == _TCP else (0,)
    ip_id = _BE16.unpack_from(headers, l3 + 4)[0] if eth_type == _ETH_P_IP else 0
    for i, start in enumerate(range(0, total, mss)):
        chunk = payload[start : start + mss]
        seg = bytearray(headers)
        seg += chunk
        last = start + mss >= total
        if eth_type == _ETH_P_IP:
            _BE16.pack_into(seg, l3 + 2, len(seg) - l3)
            _BE16.pack_into(seg, l3 + 4, (ip_id + i) & 0xFFFF)
            _BE16.pack_into(seg, l3 + 10, 0)
            _BE16.pack_into(seg, l3 + 10, csum.checksum(memoryview(seg)[l3:l4]))
        else:
            _BE16.pack_into(seg, l3 + 4, len(seg) - l3 - 40)
        l4_len = len(seg) - l4
        if proto == _TCP:
            _BE32.pack_into(seg, l4 + 4, (seq + start) & 0xFFFFFFFF)
            flags = seg[l4 + 13]
            if not last:
                flags &= ~_TCP_FIN_PSH
            if i:
                flags &= ~_TCP_CWR
            seg[l4 + 13] = flags
            check_at = l4 + 16
        else:
            _BE16.pack_into(seg, l4 + 4, l4_len)
            check_at = l4 + 6
        _BE16.pack_into(seg, check_at, 0)
        value = csum.checksum(memoryview(seg)[l4:], csum.pseudo(src, dst, proto, l4_len))
        _BE16.pack_into(seg, check_at, value or 0xFFFF)
        out.append(bytes(seg))
    return out

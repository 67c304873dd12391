"""Actions: a validated action list compiled into steps, and the steps.

`compile_actions` turns the typed actions of a flow (already checked by
`odpctl.datapath.validate`) into a tuple of small functions, once at
install time, so that executing a flow per packet is a loop of calls with
their arguments bound, not a walk through dataclasses.

A step takes the datapath, the packet and the recirculation depth, and
returns False to stop the list (drop, an expired TTL).  What a step needs
from the datapath (ports, upcalls, recirculation) it reaches through the
`Runtime` protocol, so that this module knows no ports or sockets.

Header rewrites keep checksums right incrementally, including for packets
whose layer-4 checksum is still partial (see `odpctl.datapath.packet`):
there the field holds the pseudo-header sum, which address changes must
update and port changes must not touch.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from odpctl.datapath import csum
from odpctl.datapath.packet import F_NEEDS_CSUM, VNET, VNET_LEN, Packet
from odpctl.datapath.validate import egress_tunnel
from odpctl.odp.actions import (
    Action,
    CheckPktLen,
    Clone,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Output,
    PopVlan,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    Userspace,
    encode_actions,
)
from odpctl.odp.keys import encode_key_attr
from odpctl.odp.uapi import (
    ETH_P_IP,
    ETH_P_IPV6,
    IPV6_EXT_HEADERS,
    NEXTHDR_AUTH,
    NEXTHDR_FRAGMENT,
    NEXTHDR_NONE,
    VLAN_CFI,
    HashAlg,
    KeyAttr,
)


class Runtime(Protocol):
    """What actions need from the datapath that runs them."""

    def output(self, pkt: Packet, port_no: int) -> None: ...

    def userspace(self, pkt: Packet, action: Userspace, actions_attr: bytes | None) -> None: ...

    def recirculate(self, pkt: Packet, depth: int) -> None: ...


Step = Callable[[Runtime, Packet, int], bool]
Program = tuple[Step, ...]

_BE16 = struct.Struct("!H")
_VLAN_TYPES = (0x8100, 0x88A8)
_TCP, _UDP, _ICMPV6 = 6, 17, 58
_MAX_U32 = 0xFFFFFFFF


def run(program: Program, rt: Runtime, pkt: Packet, depth: int) -> None:
    for step in program:
        if not step(rt, pkt, depth):
            return


def compile_actions(actions: Sequence[Action]) -> Program:
    """Steps for ``actions``; ``actions`` must have passed validation."""
    encoded: list[bytes] = []

    def actions_attr() -> bytes:
        # Only a userspace(..., actions) needs the list as bytes; do it once.
        if not encoded:
            encoded.append(encode_actions(actions))
        return encoded[0]

    return tuple(_compile_one(a, actions_attr) for a in actions)


def _compile_one(a: Action, actions_attr: Callable[[], bytes]) -> Step:
    if isinstance(a, Output):
        port = a.port

        def output(rt: Runtime, pkt: Packet, _depth: int) -> bool:
            rt.output(pkt, port)
            pkt.cutlen = 0
            return True

        return output
    if isinstance(a, Userspace):
        action = a

        def userspace(rt: Runtime, pkt: Packet, _depth: int) -> bool:
            rt.userspace(pkt, action, actions_attr() if action.actions else None)
            pkt.cutlen = 0
            return True

        return userspace
    if isinstance(a, Set):
        return _compile_set(a.kind, a.value, None)
    if isinstance(a, SetMasked):
        return _compile_set(a.kind, a.value, a.mask)
    if isinstance(a, PushVlan):
        return _push_vlan(a.tpid, a.tci & ~VLAN_CFI)
    if isinstance(a, PopVlan):
        return _pop_vlan
    if isinstance(a, Sample):
        return _sample(a.probability, compile_actions(a.actions))
    if isinstance(a, Clone):
        return _clone(compile_actions(a.actions))
    if isinstance(a, Recirc):
        return _recirc(a.id)
    if isinstance(a, Hash):
        return _hash(a.alg, a.basis)
    if isinstance(a, Trunc):
        return _trunc(a.max_len)
    if isinstance(a, CheckPktLen):
        return _check_pkt_len(a.size, compile_actions(a.gt), compile_actions(a.le))
    if isinstance(a, DecTtl):
        return _dec_ttl(compile_actions(a.actions))
    if isinstance(a, Drop):
        return _drop
    if isinstance(a, CtClear):
        return _nothing  # there is never conntrack state to clear
    raise TypeError(f"cannot compile {a!r}: validation should have refused it")


# --- control steps ---------------------------------------------------------------


def _drop(_rt: Runtime, _pkt: Packet, _depth: int) -> bool:
    return False


def _nothing(_rt: Runtime, _pkt: Packet, _depth: int) -> bool:
    return True


def _sample(probability: int, program: Program) -> Step:
    def sample(rt: Runtime, pkt: Packet, depth: int) -> bool:
        if probability == _MAX_U32 or (probability and random.getrandbits(32) < probability):
            run(program, rt, pkt.copy(), depth)
        return True

    return sample


def _clone(program: Program) -> Step:
    def clone(rt: Runtime, pkt: Packet, depth: int) -> bool:
        run(program, rt, pkt.copy(), depth)
        return True

    return clone


def _recirc(recirc_id: int) -> Step:
    def recirc(rt: Runtime, pkt: Packet, depth: int) -> bool:
        copy = pkt.copy()
        copy.set_meta("recirc_id", recirc_id)
        rt.recirculate(copy, depth)
        return True

    return recirc


def _hash(alg: int, basis: int) -> Step:
    symmetric = alg == HashAlg.SYM_L4

    def hash_(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
        pkt.set_meta("dp_hash", flow_hash(pkt, basis, symmetric) or 1)
        return True

    return hash_


def flow_hash(pkt: Packet, basis: int = 0, symmetric: bool = False) -> int:
    """A 32-bit hash of the packet's addresses, protocol and ports."""
    from odpctl.datapath.layout import OFFSET

    key = pkt.key()
    a = (
        key[OFFSET["ipv4_src"] : OFFSET["ipv4_src"] + 4]
        + key[OFFSET["ipv6_src"] : OFFSET["ipv6_src"] + 16]
    )
    b = (
        key[OFFSET["ipv4_dst"] : OFFSET["ipv4_dst"] + 4]
        + key[OFFSET["ipv6_dst"] : OFFSET["ipv6_dst"] + 16]
    )
    pa = key[OFFSET["tp_src"] : OFFSET["tp_src"] + 2]
    pb = key[OFFSET["tp_dst"] : OFFSET["tp_dst"] + 2]
    if symmetric and (b, pb) < (a, pa):
        a, b, pa, pb = b, a, pb, pa
    proto = key[OFFSET["ip_proto"] : OFFSET["ip_proto"] + 1]
    return zlib.crc32(a + b + pa + pb + proto, basis & _MAX_U32)


def _trunc(max_len: int) -> Step:
    def trunc(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
        pkt.cutlen = max(0, pkt.frame_len - max_len)
        return True

    return trunc


def _check_pkt_len(size: int, greater: Program, less_equal: Program) -> Step:
    def check_pkt_len(rt: Runtime, pkt: Packet, depth: int) -> bool:
        _flags, gso_type, hdr_len, gso_size, _cs, _co = VNET.unpack_from(pkt.data)
        # A GSO packet leaves as segments of hdr_len + gso_size bytes each.
        length = hdr_len + gso_size if gso_size and gso_type else pkt.frame_len
        run(greater if length > size else less_equal, rt, pkt.copy(), depth)
        return True

    return check_pkt_len


def _dec_ttl(expired: Program) -> Step:
    def dec_ttl(rt: Runtime, pkt: Packet, depth: int) -> bool:
        l3, eth_type = _l3(pkt.data)
        if eth_type == ETH_P_IP:
            ttl_at = l3 + 8
        elif eth_type == ETH_P_IPV6:
            ttl_at = l3 + 7
        else:
            return True
        if pkt.data[ttl_at] <= 1:
            run(expired, rt, pkt, depth)
            return False
        d = pkt.writable()
        if eth_type == ETH_P_IP:
            old = bytes(d[ttl_at : ttl_at + 2])
            d[ttl_at] -= 1
            _fix_ip_csum(d, l3, old, bytes(d[ttl_at : ttl_at + 2]))
        else:
            d[ttl_at] -= 1
        return True

    return dec_ttl


# --- VLAN -----------------------------------------------------------------------------


def _shift_offloads(d: bytearray, delta: int) -> None:
    """Keep the virtio_net_hdr's offsets pointing at the same headers."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET.unpack_from(d)
    if flags & F_NEEDS_CSUM or gso_type:
        VNET.pack_into(
            d,
            0,
            flags,
            gso_type,
            max(0, hdr_len + delta),
            gso_size,
            max(0, csum_start + delta),
            csum_offset,
        )


def _push_vlan(tpid: int, tci: int) -> Step:
    tag = struct.pack("!HH", tpid, tci)
    at = VNET_LEN + 12

    def push_vlan(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
        d = pkt.writable()
        d[at:at] = tag
        _shift_offloads(d, 4)
        return True

    return push_vlan


def _pop_vlan(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
    at = VNET_LEN + 12
    if len(pkt.data) < at + 6 or _BE16.unpack_from(pkt.data, at)[0] not in _VLAN_TYPES:
        return True
    d = pkt.writable()
    del d[at : at + 4]
    _shift_offloads(d, -4)
    return True


# --- set() and set_masked() ---------------------------------------------------------


def _masked_bytes(old: bytes | bytearray, value: bytes, mask: bytes) -> bytes:
    return bytes((o & ~m) | v for o, v, m in zip(old, value, mask, strict=True))


def _compile_set(kind: int, value: Any, mask: Any) -> Step:
    if kind == KeyAttr.TUNNEL:
        egress = egress_tunnel(value)

        def set_tunnel(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
            pkt.egress = egress
            return True

        return set_tunnel
    if kind in (KeyAttr.PRIORITY, KeyAttr.SKB_MARK):
        name = "priority" if kind == KeyAttr.PRIORITY else "skb_mark"
        full = _MAX_U32 if mask is None else mask

        def set_meta(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
            from odpctl.datapath.layout import FIELD, OFFSET

            old = FIELD[name].unpack_from(pkt.meta, OFFSET[name])[0]
            pkt.set_meta(name, (old & ~full) | (value & full))
            return True

        return set_meta
    raw_value = encode_key_attr(kind, value)[4:]
    if mask is None:
        raw_mask = b"\xff" * len(raw_value)
        if kind == KeyAttr.IPV6:
            # The flow label is 20 bits; the kernel masks the rest off.
            raw_mask = raw_mask[:32] + b"\x00\x0f\xff\xff" + raw_mask[36:]
    else:
        raw_mask = encode_key_attr(kind, mask)[4:]
    writer = _WRITERS[kind]

    def set_field(_rt: Runtime, pkt: Packet, _depth: int) -> bool:
        writer(pkt, raw_value, raw_mask)
        return True

    return set_field


def _l3(d: bytes | bytearray) -> tuple[int, int]:
    """Offset (in ``d``, past the virtio header) and EtherType of the network header."""
    off = VNET_LEN + 12
    (t,) = _BE16.unpack_from(d, off)
    while t in _VLAN_TYPES and len(d) >= off + 6:
        off += 4
        (t,) = _BE16.unpack_from(d, off)
    return off + 2, t


def _fix_ip_csum(d: bytearray, l3: int, old: bytes, new: bytes) -> None:
    check = _BE16.unpack_from(d, l3 + 10)[0]
    _BE16.pack_into(d, l3 + 10, csum.update(check, old, new))


def _l4_checksum_at(d: bytearray, proto: int, l4: int) -> int | None:
    """Where the layer-4 checksum is, if the header is there and has one in use."""
    if proto == _TCP and len(d) >= l4 + 20:
        return l4 + 16
    if proto == _UDP and len(d) >= l4 + 8:
        return l4 + 6
    if proto == _ICMPV6 and len(d) >= l4 + 4:
        return l4 + 2
    return None


def _update_l4(d: bytearray, proto: int, l4: int, old: bytes, new: bytes, pseudo: bool) -> None:
    at = _l4_checksum_at(d, proto, l4)
    if at is None:
        return
    partial = bool(d[0] & F_NEEDS_CSUM)
    if partial and not pseudo:
        return  # the NIC sums ports and payload later; the field holds only the pseudo-header
    check = _BE16.unpack_from(d, at)[0]
    if proto == _UDP and not check and not partial:
        return  # UDP over IPv4 without a checksum
    new_check = csum.update(check, old, new, partial=partial)
    if proto == _UDP and not new_check:
        new_check = 0xFFFF
    _BE16.pack_into(d, at, new_check)


def _write_eth(pkt: Packet, value: bytes, mask: bytes) -> None:
    d = pkt.writable()
    at = VNET_LEN
    # The key's order is source then destination; the frame's the reverse.
    src = _masked_bytes(d[at + 6 : at + 12], value[:6], mask[:6])
    dst = _masked_bytes(d[at : at + 6], value[6:], mask[6:])
    d[at : at + 12] = dst + src


def _write_ipv4(pkt: Packet, value: bytes, mask: bytes) -> None:
    l3, eth_type = _l3(pkt.data)
    if eth_type != ETH_P_IP or len(pkt.data) < l3 + 20:
        return
    d = pkt.writable()
    ihl = (d[l3] & 0x0F) * 4
    later_fragment = _BE16.unpack_from(d, l3 + 6)[0] & 0x1FFF
    proto = d[l3 + 9]
    l4 = l3 + ihl
    # key layout: src(4) dst(4) proto tos ttl frag
    for key_at, hdr_at in ((0, 12), (4, 16)):
        old = bytes(d[l3 + hdr_at : l3 + hdr_at + 4])
        new = _masked_bytes(old, value[key_at : key_at + 4], mask[key_at : key_at + 4])
        if new != old:
            if not later_fragment:
                _update_l4(d, proto, l4, old, new, pseudo=True)
            d[l3 + hdr_at : l3 + hdr_at + 4] = new
            _fix_ip_csum(d, l3, old, new)
    if mask[9]:  # tos
        old = bytes(d[l3 : l3 + 2])
        d[l3 + 1] = (d[l3 + 1] & ~mask[9]) | value[9]
        _fix_ip_csum(d, l3, old, bytes(d[l3 : l3 + 2]))
    if mask[10]:  # ttl
        old = bytes(d[l3 + 8 : l3 + 10])
        d[l3 + 8] = (d[l3 + 8] & ~mask[10]) | value[10]
        _fix_ip_csum(d, l3, old, bytes(d[l3 + 8 : l3 + 10]))


def _ipv6_l4(d: bytes | bytearray, l3: int) -> tuple[int, int]:
    """Protocol and offset of the transport header, past extension headers."""
    nexthdr = d[l3 + 6]
    at = l3 + 40
    while nexthdr in IPV6_EXT_HEADERS and nexthdr != NEXTHDR_NONE and len(d) >= at + 8:
        if nexthdr == NEXTHDR_FRAGMENT:
            if _BE16.unpack_from(d, at + 2)[0] & ~0x7:
                return -1, at  # a later fragment: no transport header
            size = 8
        elif nexthdr == NEXTHDR_AUTH:
            size = (d[at + 1] + 2) << 2
        else:
            size = (d[at + 1] + 1) << 3
        nexthdr = d[at]
        at += size
    return nexthdr, at


def _write_ipv6(pkt: Packet, value: bytes, mask: bytes) -> None:
    l3, eth_type = _l3(pkt.data)
    if eth_type != ETH_P_IPV6 or len(pkt.data) < l3 + 40:
        return
    d = pkt.writable()
    proto, l4 = _ipv6_l4(d, l3)
    # key layout: src(16) dst(16) label(4) proto tclass hlimit frag
    for key_at, hdr_at in ((0, 8), (16, 24)):
        old = bytes(d[l3 + hdr_at : l3 + hdr_at + 16])
        new = _masked_bytes(old, value[key_at : key_at + 16], mask[key_at : key_at + 16])
        if new != old:
            _update_l4(d, proto, l4, old, new, pseudo=True)
            d[l3 + hdr_at : l3 + hdr_at + 16] = new
    first = int.from_bytes(d[l3 : l3 + 4], "big")
    label_mask = int.from_bytes(mask[32:36], "big") & 0xFFFFF
    label = int.from_bytes(value[32:36], "big")
    tclass_mask, tclass = mask[37], value[37]
    first = (first & ~label_mask) | (label & label_mask)
    first = (first & ~(tclass_mask << 20)) | ((tclass & tclass_mask) << 20)
    d[l3 : l3 + 4] = first.to_bytes(4, "big")
    if mask[38]:
        d[l3 + 7] = (d[l3 + 7] & ~mask[38]) | value[38]


def _write_ports(proto: int) -> Callable[[Packet, bytes, bytes], None]:
    def write(pkt: Packet, value: bytes, mask: bytes) -> None:
        l3, eth_type = _l3(pkt.data)
        d = pkt.data
        if eth_type == ETH_P_IP and len(d) >= l3 + 20:
            if d[l3 + 9] != proto or _BE16.unpack_from(d, l3 + 6)[0] & 0x1FFF:
                return
            l4 = l3 + (d[l3] & 0x0F) * 4
        elif eth_type == ETH_P_IPV6 and len(d) >= l3 + 40:
            found, l4 = _ipv6_l4(d, l3)
            if found != proto:
                return
        else:
            return
        if len(d) < l4 + 4:
            return
        w = pkt.writable()
        old = bytes(w[l4 : l4 + 4])
        new = _masked_bytes(old, value, mask)
        if new != old:
            _update_l4(w, proto, l4, old, new, pseudo=False)
            w[l4 : l4 + 4] = new

    return write


_WRITERS: dict[int, Callable[[Packet, bytes, bytes], None]] = {
    KeyAttr.ETHERNET: _write_eth,
    KeyAttr.IPV4: _write_ipv4,
    KeyAttr.IPV6: _write_ipv6,
    KeyAttr.TCP: _write_ports(_TCP),
    KeyAttr.UDP: _write_ports(_UDP),
}

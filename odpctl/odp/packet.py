"""Packets: upcalls the datapath sends up, and packets userspace executes.

The ``ovs_packet`` family carries both directions: ``MISS`` and ``ACTION``
upcalls (a flow-table miss, or a ``userspace()`` action) arrive on the
netlink port the datapath was told to use; ``EXECUTE`` sends a packet back
down with the actions to apply to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u16, attr_u64, attrs_to_dict, get_u16, get_u32
from odpctl.odp.actions import Action, decode_actions, encode_actions
from odpctl.odp.keys import FlowKey, Tunnel, decode_key, decode_tunnel, encode_key
from odpctl.odp.uapi import PacketAttr, PacketCmd


@dataclass(slots=True)
class Upcall:
    """A packet the datapath handed to userspace."""

    cmd: PacketCmd
    dp_ifindex: int
    key: FlowKey
    packet: bytes
    userdata: bytes | None = None
    egress_tun_key: Tunnel | None = None
    actions: list[Action] | None = None
    mru: int | None = None
    length: int | None = None  # before truncation, when the datapath truncated
    hash: int | None = None

    @property
    def in_port(self) -> int | None:
        return self.key.in_port


@dataclass(slots=True)
class Execute:
    """A packet to run through ``actions`` as if it had arrived with ``key``."""

    packet: bytes
    key: FlowKey
    actions: list[Action] = field(default_factory=list)
    mru: int | None = None
    hash: int | None = None
    probe: bool = False


def encode_execute(request: Execute) -> bytes:
    parts = [
        attr(PacketAttr.PACKET, request.packet),
        attr(PacketAttr.KEY, encode_key(request.key)),
        attr(PacketAttr.ACTIONS, encode_actions(request.actions)),
    ]
    if request.mru is not None:
        parts.append(attr_u16(PacketAttr.MRU, request.mru))
    if request.hash is not None:
        parts.append(attr_u64(PacketAttr.HASH, request.hash))
    if request.probe:
        parts.append(attr(PacketAttr.PROBE, b""))
    return b"".join(parts)


def decode_upcall(cmd: int, dp_ifindex: int, data: bytes) -> Upcall:
    try:
        kind = PacketCmd(cmd)
    except ValueError:
        raise DecodeError(f"packet message with unknown command {cmd}") from None
    attrs = attrs_to_dict(data)
    packet = attrs.get(PacketAttr.PACKET)
    key = attrs.get(PacketAttr.KEY)
    if packet is None or key is None:
        raise DecodeError("upcall without a packet or a key")
    upcall = Upcall(kind, dp_ifindex, decode_key(key), bytes(packet))
    userdata = attrs.get(PacketAttr.USERDATA)
    if userdata is not None:
        upcall.userdata = bytes(userdata)
    tun = attrs.get(PacketAttr.EGRESS_TUN_KEY)
    if tun is not None:
        upcall.egress_tun_key = decode_tunnel(tun)
    actions = attrs.get(PacketAttr.ACTIONS)
    if actions is not None:
        upcall.actions = decode_actions(actions)
    mru = attrs.get(PacketAttr.MRU)
    if mru is not None:
        upcall.mru = get_u16(mru)
    length = attrs.get(PacketAttr.LEN)
    if length is not None:
        upcall.length = get_u32(length)
    hash_value = attrs.get(PacketAttr.HASH)
    if hash_value is not None:
        try:
            (upcall.hash,) = struct.unpack("=Q", hash_value)
        except struct.error:
            raise DecodeError(f"packet hash of {len(hash_value)} bytes") from None
    return upcall

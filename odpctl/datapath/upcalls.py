"""Upcalls: packets sent up to userspace, as the kernel's queue_userspace_packet.

A miss goes to one of the input port's upcall PIDs (picked by flow hash, so
that one connection always lands on the same handler) or, when the
datapath dispatches per CPU, to one of its per-CPU PIDs; a ``userspace()``
action names its own PID.  A GSO super-packet becomes one upcall per
segment, with checksums complete, as the kernel segments it too.

Delivery never blocks the datapath: a PID with no client, or a client
whose socket is full, loses the upcall, and the loss is counted in the
datapath's ``lost`` and the port's upcall failures, where `odpctl dp show`
and a router's status see it.  Upcalls are queued, not sent one by one: the
server sends all those of a round for one client in as few datagrams as
fit (a netlink datagram may carry many messages), one system call and one
wake-up of the reader for many misses.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from odpctl.netlink.attrs import attr, attr_u32, attr_u64
from odpctl.netlink.message import encode_message
from odpctl.odp.header import odp_payload
from odpctl.odp.uapi import PACKET_VERSION, PacketAttr, PacketCmd

# Told, once, whether an upcall's messages went out (True) or were lost.
Delivered = Callable[[bool], None]
# Queue an upcall's netlink messages (one per segment) for a port id.
Deliver = Callable[[int, list[bytes], Delivered], None]

_HASH_SW_BIT = 1 << 32
_U64 = struct.Struct("=Q")


def upcall_message(
    family_id: int,
    dp_ifindex: int,
    cmd: PacketCmd,
    key_attrs: bytes,
    frame: bytes,
    *,
    userdata: bytes | None = None,
    egress_tun_key: bytes | None = None,
    actions: bytes | None = None,
    length: int | None = None,
    flow_hash: int | None = None,
) -> bytes:
    """One upcall, attributes in the kernel's order; seq and pid are 0."""
    parts = [attr(PacketAttr.KEY, key_attrs)]
    if userdata is not None:
        parts.append(attr(PacketAttr.USERDATA, userdata))
    if egress_tun_key is not None:
        parts.append(attr(PacketAttr.EGRESS_TUN_KEY, egress_tun_key))
    if actions is not None:
        parts.append(attr(PacketAttr.ACTIONS, actions))
    if length is not None:
        parts.append(attr_u32(PacketAttr.LEN, length))
    hash_value = (flow_hash | _HASH_SW_BIT) if flow_hash else 0
    parts.append(attr_u64(PacketAttr.HASH, hash_value))
    parts.append(attr(PacketAttr.PACKET, frame))
    payload = odp_payload(cmd, PACKET_VERSION, dp_ifindex, b"".join(parts))
    return encode_message(family_id, 0, 0, 0, payload)


def pick_pid(pids: tuple[int, ...], flow_hash: int) -> int:
    """The PID among ``pids`` for a packet with ``flow_hash`` (0 means nobody)."""
    if not pids:
        return 0
    if len(pids) == 1:
        return pids[0]
    return pids[flow_hash % len(pids)]

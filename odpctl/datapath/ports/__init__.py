"""Vports: where packets enter and leave the userspace datapath.

``netdev``    an existing interface, through an AF_PACKET socket bound to it
              (promiscuous, outgoing packets ignored, virtio-net headers on),
              made ahead and closed behind by `PacketSockets`.
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

import errno

from odpctl.datapath.ports.base import Owner, Port, synthetic_ifindex
from odpctl.datapath.ports.devices import InternalPort, NetdevPort
from odpctl.datapath.ports.sockets import PacketSockets
from odpctl.datapath.ports.tunnels import GenevePort, TunnelPort, VxlanPort
from odpctl.odp.uapi import VportType

__all__ = [
    "GenevePort",
    "InternalPort",
    "NetdevPort",
    "Owner",
    "PacketSockets",
    "Port",
    "TunnelPort",
    "VxlanPort",
    "open_port",
    "synthetic_ifindex",
]


def open_port(
    owner: Owner,
    kind: VportType,
    name: str,
    port_no: int,
    dst_port: int | None,
    gbp: bool,
    sockets: PacketSockets,
) -> Port:
    """A new port of ``kind``; OSError with the errno the kernel would give.

    A netdev port takes its packet socket from ``sockets``, and gives it back
    there to be closed."""
    if kind == VportType.NETDEV:
        return NetdevPort(owner, name, port_no, sockets)
    if kind == VportType.INTERNAL:
        return InternalPort(owner, name, port_no)
    if kind == VportType.VXLAN:
        return VxlanPort(owner, name, port_no, dst_port, gbp)
    if kind == VportType.GENEVE:
        return GenevePort(owner, name, port_no, dst_port)
    raise OSError(errno.EAFNOSUPPORT, f"vport type {int(kind)} is not supported")

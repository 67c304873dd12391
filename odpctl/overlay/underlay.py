"""Whether an interface carries the underlay: the mesh's own traffic, never a container port.

Attached to the datapath as a container port, the interface that reaches the
peers (or holds the address the mesh listens on) would hand the router's
own TCP and VXLAN traffic to the datapath, and cut the host off its mesh.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from odpctl.errors import OdpError
from odpctl.mesh.discovery import parse_address
from odpctl.netlink.route import address_interfaces, route_interface

_ANY = {"", "0.0.0.0", "::"}  # noqa: S104 - listen addresses recognised, no bind


def underlay_use(iface: str, peers: Iterable[str], listen_host: str) -> str | None:
    """How ``iface`` carries the underlay, in a few words; None if it does not.

    ``peers`` are the peers' addresses, HOST[:PORT] (host names are
    skipped: resolving them is no business of an attach); ``listen_host``
    is the address the mesh listens on.
    """
    try:
        index = socket.if_nametoindex(iface)
    except OSError:
        return None  # no such interface: attaching it fails with its own error
    for address in dict.fromkeys(peers):
        try:
            peer = parse_address(address)[0]
            ipaddress.ip_address(peer)
        except (OdpError, ValueError):
            continue
        try:
            if route_interface(peer) == index:
                return f"{iface} carries the underlay: the route to peer {peer} leaves through it"
        except OdpError:
            continue
    if listen_host not in _ANY and index in address_interfaces(listen_host):
        return f"{iface} carries the underlay: it holds the mesh's listen address {listen_host}"
    return None

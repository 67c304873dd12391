"""Where the kernel routes an address, and which interfaces hold one (rtnetlink).

Asked of the kernel rather than worked out from the routing tables by hand:
``RTM_GETROUTE`` for an address gives the route a packet to it would take
(policy routing, metrics and all), and its output interface.  Nothing is
sent to the address.
"""

from __future__ import annotations

import ipaddress
import socket

from odpctl.errors import KernelRefusedError, NotFoundError
from odpctl.netlink.attrs import attr, get_u32, iter_attrs
from odpctl.netlink.links import (
    IFA_ADDRESS,
    IFA_LOCAL,
    IFADDRMSG,
    RTA_DST,
    RTA_OIF,
    RTM_GETADDR,
    RTM_GETROUTE,
    RTMSG,
    RTN_UNICAST,
    rtnl,
)


def _family(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def route_interface(address: str) -> int | None:
    """The ifindex of the interface a unicast route to ``address`` leaves by;
    None if there is no such route (unreachable, or a local address)."""
    ip = ipaddress.ip_address(address)
    payload = RTMSG.pack(_family(ip), ip.max_prefixlen, 0, 0, 0, 0, 0, 0, 0)
    payload += attr(RTA_DST, ip.packed)
    with rtnl() as conn:
        try:
            replies = conn.request(RTM_GETROUTE, 0, payload, f"route to {address}")
        except (KernelRefusedError, NotFoundError):
            return None
    for reply in replies:
        if len(reply.payload) < RTMSG.size or reply.payload[7] != RTN_UNICAST:
            continue
        for type_, value in iter_attrs(reply.payload, RTMSG.size):
            if type_ == RTA_OIF:
                return get_u32(value)
    return None


def address_interfaces(address: str) -> set[int]:
    """The ifindexes of the interfaces that hold ``address``."""
    ip = ipaddress.ip_address(address)
    payload = IFADDRMSG.pack(_family(ip), 0, 0, 0, 0)
    found = set()
    with rtnl() as conn:
        for msg in conn.dump(RTM_GETADDR, payload, "list addresses"):
            if len(msg.payload) < IFADDRMSG.size:
                continue
            index = IFADDRMSG.unpack_from(msg.payload)[4]
            for type_, value in iter_attrs(msg.payload, IFADDRMSG.size):
                if type_ in (IFA_ADDRESS, IFA_LOCAL) and value == ip.packed:
                    found.add(index)
    return found

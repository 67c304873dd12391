"""The container's side, read (and, for routes a delegated IPAM hands out, written)
inside its network namespace.

ADD's only question, whether the interface exists, is answered by an ioctl in
the namespace.  CHECK's fuller look, and a delegated IPAM's routes, go over an
rtnetlink socket opened inside the namespace (`odpctl.netlink.links`, loaded
only by them): no pyroute2, whose import alone took a quarter of a second, and
no child process forked into the namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os

from odpctl.errors import AlreadyExistsError, NotFoundError, OdpError
from odpctl.netlink.netns import has_interface as netns_has_interface

from .spec import CONTAINER_UNKNOWN, IO_FAILURE, CniError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    from odpctl.netlink.connection import NetlinkConnection

    Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
    Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
    Interface: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class Link:
    """What CHECK reads of the container's interface.

    A plain class: the first NamedTuple a process makes costs a millisecond
    and a half, and every ADD imports this module."""

    __slots__ = ("addresses", "mac", "routes")

    def __init__(
        self,
        mac: str,
        addresses: frozenset[Interface],
        routes: frozenset[tuple[Network, Address | None]],  # (destination, gateway)
    ) -> None:
        self.mac = mac
        self.addresses = addresses
        self.routes = routes


def has_interface(path: str, ifname: str) -> bool:
    """Whether ``ifname`` exists in the namespace at ``path``."""
    try:
        return netns_has_interface(path, ifname)
    except NotFoundError as exc:
        raise CniError(CONTAINER_UNKNOWN, f"no network namespace at {path}", exc.message) from None
    except OdpError as exc:
        raise CniError(IO_FAILURE, exc.message) from None


def read_link(path: str, ifname: str) -> Link | None:
    """The interface's MAC, addresses and routes (main table), or None if it is gone."""
    from odpctl.netlink import links

    try:
        with _rtnl(path) as conn:
            try:
                replies = conn.request(*links.get_link(ifname), f"look up {ifname}")
            except NotFoundError:
                return None
            if not replies:
                return None
            index, mac = links.link_of(replies[0].payload)
            addresses = set()
            for msg in conn.dump(links.RTM_GETADDR, links.ADDR_DUMP, "list addresses"):
                at, address = links.address_of(msg.payload)
                if at == index:
                    addresses.add(ipaddress.ip_interface(address))
            routes = set()
            for msg in conn.dump(links.RTM_GETROUTE, links.ROUTE_DUMP, "list routes"):
                table, oif, dst, gateway = links.route_of(msg.payload)
                if oif == index and table == links.RT_TABLE_MAIN:
                    routes.add((ipaddress.ip_network(dst, strict=False), _gateway(gateway)))
    except OdpError as exc:
        raise CniError(IO_FAILURE, f"cannot read {ifname} in {path}: {exc.message}") from None
    return Link(mac.lower(), frozenset(addresses), frozenset(routes))


def add_routes(path: str, ifname: str, routes: list[tuple[Network, Address | None]]) -> None:
    """Install routes through ``ifname`` in the namespace (those a delegated IPAM gave)."""
    from odpctl.netlink import links

    try:
        with _rtnl(path) as conn:
            index = links.link_index(conn, ifname)
            for dst, gateway in routes:
                with contextlib.suppress(AlreadyExistsError):  # there already: fine
                    conn.request(*links.add_route(index, dst, gateway), f"add route {dst}")
    except OdpError as exc:
        raise CniError(IO_FAILURE, f"cannot add routes in {path}: {exc.message}") from None


def _rtnl(path: str) -> NetlinkConnection:
    if not os.path.exists(path):
        raise CniError(CONTAINER_UNKNOWN, f"no network namespace at {path}")
    from odpctl.netlink.links import rtnl

    try:
        return rtnl(path)
    except NotFoundError as exc:  # not a network namespace
        raise CniError(CONTAINER_UNKNOWN, f"no network namespace at {path}", exc.message) from None


def _gateway(value: str | None) -> Address | None:
    return ipaddress.ip_address(value) if value else None

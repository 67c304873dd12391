"""The container's side, read (and, for routes a delegated IPAM hands out, written)
inside its network namespace.

ADD's only question, whether the interface exists, is answered by an ioctl in
the namespace; CHECK's fuller look loads pyroute2, which only it pays for.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any

from odpctl.errors import NotFoundError, OdpError
from odpctl.netlink.netns import has_interface as netns_has_interface

from .spec import CONTAINER_UNKNOWN, IO_FAILURE, CniError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


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
    with _ipr(path) as ipr:
        indexes = ipr.link_lookup(ifname=ifname)
        if not indexes:
            return None
        index = indexes[0]
        mac = str(ipr.get_links(index)[0].get("IFLA_ADDRESS") or "")
        addresses = frozenset(
            ipaddress.ip_interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=index)
        )
        routes = frozenset(
            (
                ipaddress.ip_network(f"{r.get('RTA_DST') or _any(r['family'])}/{r['dst_len']}"),
                _gateway(r.get("RTA_GATEWAY")),
            )
            for r in ipr.get_routes(oif=index, table=254)
        )
    return Link(mac.lower(), addresses, routes)


def add_routes(path: str, ifname: str, routes: list[tuple[Network, Address | None]]) -> None:
    """Install routes through ``ifname`` in the namespace (those a delegated IPAM gave)."""
    with _ipr(path) as ipr:
        (index,) = ipr.link_lookup(ifname=ifname)
        for dst, gateway in routes:
            spec: dict[str, Any] = {"dst": str(dst), "oif": index}
            if gateway is not None:
                spec["gateway"] = str(gateway)
            try:
                ipr.route("add", **spec)
            except Exception as exc:  # pyroute2's NetlinkError and kin
                if getattr(exc, "code", None) != errno.EEXIST:
                    raise CniError(IO_FAILURE, f"cannot add route {dst} in {path}: {exc}") from None


def _ipr(path: str) -> Any:
    if not os.path.exists(path):
        raise CniError(CONTAINER_UNKNOWN, f"no network namespace at {path}")
    # Imported here: only CHECK and a delegated IPAM's routes need it, and it
    # costs more start-up than the rest of the plugin.
    from odpctl.netlink.pyroute import NetNS

    # flags=0: never create the namespace when it has just gone away.
    return NetNS(path, flags=0)


def _any(family: int) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104 - a default route, no bind


def _gateway(value: str | None) -> Address | None:
    return ipaddress.ip_address(value) if value else None

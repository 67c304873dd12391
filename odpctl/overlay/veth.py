"""A container's link to the overlay: a veth pair, one end in its namespace.

`plug` makes the pair in one rtnetlink request (the host end here and up,
the container end born in the container's network namespace under its final
name, MAC and MTU), then gives the container's end its address, brings it up
and routes the overlay's range through it in one batch, over a socket opened
inside the namespace; on any failure the pair goes again, so nothing is left half
made.  `unplug` deletes the host end (the kernel takes the other with it).
Namespaces are named as `ip netns` names them, or by a path such as
``/proc/PID/ns/net``.

These block on the kernel (deleting a veth waits out an RCU grace period):
from the router's loop, call them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass

from odpctl.errors import NotFoundError, OdpError, error_from_errno
from odpctl.netlink import links
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.netns import netns_path


@dataclass(frozen=True, slots=True)
class Plugged:
    host_iface: str
    ifname: str
    mac: str


def host_iface_for(ident: str) -> str:
    """The host end's name for container ``ident``: stable, 14 characters."""
    return "vodp" + hashlib.blake2b(ident.encode(), digest_size=5).hexdigest()


def netns_inode(spec: str) -> int:
    """The inode of namespace ``spec``: the same whichever way it is named."""
    path = netns_path(spec)
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        raise NotFoundError(
            f"network namespace {spec!r} not found", errno=errno.ENOENT, hint="see `ip netns list`"
        ) from None
    except OSError as exc:
        raise error_from_errno(exc.errno or errno.EIO, f"network namespace {spec!r}") from None


def _apply(conn: NetlinkConnection, requests: list[links.Request], what: str) -> None:
    """Send ``requests`` in one datagram; raise the first refusal."""
    for result in conn.batch(requests, what):
        if isinstance(result, OdpError):
            raise result


def plug(
    spec: str, host_iface: str, ifname: str, mtu: int, address: str, routes: tuple[str, ...] = ()
) -> Plugged:
    """Make and set up the pair; ``address`` is ``A.B.C.D/LEN``; ``routes`` are CIDRs
    reached through it (beyond the address's own subnet)."""
    iface = ipaddress.IPv4Interface(address)
    path = netns_path(spec)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError(
            f"network namespace {spec!r} not found", errno=errno.ENOENT, hint="see `ip netns list`"
        ) from None
    except OSError as exc:
        raise error_from_errno(exc.errno or errno.EIO, f"open network namespace {spec!r}") from None
    # The MAC is ours to choose, so it needs no reading back.
    mac = links.random_mac()
    try:
        with links.rtnl() as conn:
            conn.request(
                *links.new_veth(host_iface, ifname, mtu=mtu, peer_netns_fd=fd, peer_mac=mac),
                f"create veth {host_iface} into {spec}",
            )
    finally:
        os.close(fd)
    try:
        with links.rtnl(spec) as cconn:
            index = links.link_index(cconn, ifname)
            requests = [links.add_address(index, iface), links.set_up(ifname)]
            requests += [
                links.add_route(index, net, replace=True)
                for net in map(ipaddress.IPv4Network, routes)
                if not net.subnet_of(iface.network)
            ]
            _apply(cconn, requests, f"set up {ifname} in {spec}")
    except BaseException:
        unplug(host_iface)
        raise
    return Plugged(host_iface, ifname, mac)


def unplug(host_iface: str) -> bool:
    """Delete the pair by its host end; False if it was gone already."""
    try:
        with links.rtnl() as conn:
            conn.request(*links.del_link(host_iface), f"delete {host_iface}")
    except NotFoundError:
        return False
    return True


def exists(ifname: str) -> bool:
    """Whether interface ``ifname`` is here."""
    try:
        socket.if_nametoindex(ifname)
    except OSError:  # its only failure: no such interface
        return False
    return True


def set_address(ifname: str, address: str, mtu: int) -> None:
    """Give interface ``ifname`` (here) ``address`` (``A.B.C.D/LEN``) and bring it up."""
    iface = ipaddress.IPv4Interface(address)
    with links.rtnl() as conn:
        conn.request(*links.set_up(ifname, mtu=mtu), f"set {ifname} up")
        index = links.link_index(conn, ifname)
        conn.request(*links.add_address(index, iface, replace=True), f"set {address} on {ifname}")

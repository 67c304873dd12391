"""A container's link to the overlay: a veth pair, one end in its namespace.

`plug` makes the pair (the host end here, the container end born in the
container's network namespace under its final name), sets the MTU, the
address, the route to the overlay's range and brings both ends up; on any
failure the pair goes again, so nothing is left half made.  `unplug` deletes
the host end (the kernel takes the other with it).  Namespaces are named as
`ip netns` names them, or by a path such as ``/proc/PID/ns/net``.

pyroute2's synchronous calls run an event loop of their own: from the
router's loop, call these in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from odpctl.errors import NotFoundError, error_from_errno
from odpctl.netlink.netns import netns, netns_path
from odpctl.netlink.pyroute import IPRoute, NetlinkError


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


@contextmanager
def _rtnl(what: str, spec: str | None = None) -> Iterator[IPRoute]:
    """An rtnetlink socket here (or in namespace ``spec``), errors as ours."""
    with netns(spec):
        ipr = IPRoute()
    try:
        yield ipr
    except NetlinkError as exc:
        raise error_from_errno(exc.code, what) from None
    finally:
        ipr.close()


def _index(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NotFoundError(f"no interface {ifname}")
    return int(found[0])


def plug(
    spec: str, host_iface: str, ifname: str, mtu: int, address: str, routes: tuple[str, ...] = ()
) -> Plugged:
    """Make and set up the pair; ``address`` is ``A.B.C.D/LEN``; ``routes`` are CIDRs
    reached through it (beyond the address's own subnet)."""
    path = netns_path(spec)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError(
            f"network namespace {spec!r} not found", errno=errno.ENOENT, hint="see `ip netns list`"
        ) from None
    except OSError as exc:
        raise error_from_errno(exc.errno or errno.EIO, f"open network namespace {spec!r}") from None
    # One rtnetlink session makes the host end and brings it up: a session is a
    # socket and an event loop in pyroute2, and an attach waits for each.
    with _rtnl(f"create veth {host_iface} into {spec}") as ipr:
        try:
            ipr.link(
                "add",
                ifname=host_iface,
                kind="veth",
                mtu=mtu,
                peer={"ifname": ifname, "net_ns_fd": fd, "mtu": mtu},
            )
        finally:
            os.close(fd)
        try:
            try:
                ipr.link("set", index=_index(ipr, host_iface), state="up")
            except NetlinkError as exc:
                raise error_from_errno(exc.code, f"bring {host_iface} up") from None
            with _rtnl(f"set up {ifname} in {spec}", spec) as cipr:
                mac = _set_up(cipr, ifname, address, routes)
        except BaseException:
            unplug(host_iface)
            raise
    return Plugged(host_iface, ifname, mac)


def _set_up(cipr: IPRoute, ifname: str, address: str, routes: tuple[str, ...]) -> str:
    """Address, bring up and route the container's end; its MAC."""
    index = _index(cipr, ifname)
    iface = ipaddress.IPv4Interface(address)
    cipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    cipr.link("set", index=index, state="up")
    for cidr in routes:
        net = ipaddress.IPv4Network(cidr)
        if not net.subnet_of(iface.network):
            cipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, oif=index)
    return str(cipr.get_links(index)[0].get("address"))


def unplug(host_iface: str) -> bool:
    """Delete the pair by its host end; False if it was gone already."""
    try:
        with _rtnl(f"delete {host_iface}") as ipr:
            found = ipr.link_lookup(ifname=host_iface)
            if not found:
                return False
            ipr.link("del", index=found[0])
    except NotFoundError:
        return False
    return True


def exists(ifname: str) -> bool:
    """Whether interface ``ifname`` is here."""
    with _rtnl(f"look up {ifname}") as ipr:
        return bool(ipr.link_lookup(ifname=ifname))


def set_address(ifname: str, address: str, mtu: int) -> None:
    """Give interface ``ifname`` (here) ``address`` (``A.B.C.D/LEN``) and bring it up."""
    iface = ipaddress.IPv4Interface(address)
    with _rtnl(f"set {address} on {ifname}") as ipr:
        index = _index(ipr, ifname)
        ipr.link("set", index=index, mtu=mtu, state="up")
        existing = {a.get("address") for a in ipr.get_addr(index=index, family=2)}
        if str(iface.ip) not in existing:
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)

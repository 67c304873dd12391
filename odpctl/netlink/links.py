"""Links, addresses and routes over rtnetlink: what a container's attach makes and
what CNI's CHECK reads back.

The request builders each return one request, ``(type, flags, payload)``, for
`NetlinkConnection.request` or, several at once, `NetlinkConnection.batch`:
the kernel handles a datagram of them in one go, so an attach costs a round
trip per namespace, not per setting.  A veth pair is made whole in one
request, its peer born in the container's namespace under its final name,
MTU and MAC, so nothing needs reading back or waiting for afterwards.  The
decoders read the kernel's replies (`DecodeError` on malformed ones).
`rtnl` opens the socket inside a namespace: it stays there for life, so the
namespace is entered once, by the calling thread, for a moment.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

from odpctl.errors import DecodeError, NotFoundError
from odpctl.netlink.attrs import attr, attr_str, attr_u32, get_u32, iter_attrs, nested
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE
from odpctl.netlink.netns import netns
from odpctl.netlink.transport import NETLINK_ROUTE, KernelTransport

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1

# struct ifinfomsg: family, pad, type, index, flags, change
_IFINFOMSG = struct.Struct("=BxHiII")
# struct ifaddrmsg: family, prefixlen, flags, scope; index
IFADDRMSG = struct.Struct("=BBBBI")
# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type; flags
RTMSG = struct.Struct("=BBBBBBBBI")

Request = tuple[int, int, bytes]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def rtnl(name: str | None = None) -> NetlinkConnection:
    """An rtnetlink socket in network namespace ``name`` (None: the caller's)."""
    with netns(name):
        return NetlinkConnection(KernelTransport(NETLINK_ROUTE))


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def random_mac() -> str:
    """A random unicast, locally administered MAC, as the kernel would pick one."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def new_veth(name: str, peer: str, *, mtu: int, peer_netns_fd: int, peer_mac: str) -> Request:
    """Make the pair ``name`` (here, up) and ``peer`` (in the namespace open at
    ``peer_netns_fd``), with ``mtu``; refused if either name is taken.  The peer
    stays down: the kernel opens it before the pair is joined, which fails."""
    peer_info = (
        _ifinfo()
        + attr_str(IFLA_IFNAME, peer)
        + attr_u32(IFLA_MTU, mtu)
        + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        + attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
    )
    payload = (
        _ifinfo(up=True)
        + attr_str(IFLA_IFNAME, name)
        + attr_u32(IFLA_MTU, mtu)
        + nested(
            IFLA_LINKINFO,
            attr_str(IFLA_INFO_KIND, "veth"),
            nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)),
        )
    )
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, payload


def set_up(name: str, *, mtu: int | None = None) -> Request:
    """Bring ``name`` up (and set its MTU)."""
    payload = _ifinfo(up=True) + attr_str(IFLA_IFNAME, name)
    if mtu is not None:
        payload += attr_u32(IFLA_MTU, mtu)
    return RTM_NEWLINK, 0, payload


def del_link(name: str) -> Request:
    """Delete ``name`` (a veth's peer goes with it); ENODEV if there is none."""
    return RTM_DELLINK, 0, _ifinfo() + attr_str(IFLA_IFNAME, name)


def add_address(
    index: int, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface, *, replace: bool = False
) -> Request:
    """Put ``address`` on interface ``index``; with ``replace``, no error if it is there."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    payload = IFADDRMSG.pack(family, address.network.prefixlen, 0, 0, index)
    payload += attr(IFA_LOCAL, address.ip.packed) + attr(IFA_ADDRESS, address.ip.packed)
    flags = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
    return RTM_NEWADDR, flags, payload


def add_route(
    index: int, dst: Network, gateway: Address | None = None, *, replace: bool = False
) -> Request:
    """Route ``dst`` out of interface ``index``, through ``gateway`` or straight
    (scope link, as `ip route` does); with ``replace``, over any route to ``dst``."""
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    scope = RT_SCOPE_UNIVERSE if gateway is not None else RT_SCOPE_LINK
    payload = RTMSG.pack(
        family, dst.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0
    )
    payload += attr(RTA_DST, dst.network_address.packed) + attr_u32(RTA_OIF, index)
    if gateway is not None:
        payload += attr(RTA_GATEWAY, gateway.packed)
    return RTM_NEWROUTE, NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL), payload


# --- reading back --------------------------------------------------------------------


def get_link(name: str) -> Request:
    """Ask for link ``name`` (one reply: see `link_of`); ENODEV if there is none."""
    return RTM_GETLINK, 0, _ifinfo() + attr_str(IFLA_IFNAME, name)


def link_index(conn: NetlinkConnection, name: str) -> int:
    """The index of link ``name`` in ``conn``'s namespace; `NotFoundError` if none."""
    replies = conn.request(*get_link(name), f"look up {name}")
    if not replies:
        raise NotFoundError(f"no interface {name}")
    return link_of(replies[0].payload)[0]


def link_of(payload: bytes) -> tuple[int, str]:
    """An RTM_NEWLINK's interface index and MAC (empty if it has none)."""
    _, _, index, _, _ = _unpack(_IFINFOMSG, payload, "link")
    mac = ""
    for type_, value in iter_attrs(payload, _IFINFOMSG.size):
        if type_ == IFLA_ADDRESS:
            mac = ":".join(f"{b:02x}" for b in value)
    return index, mac


ADDR_DUMP = IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
ROUTE_DUMP = RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)


def address_of(payload: bytes) -> tuple[int, str]:
    """An RTM_NEWADDR's interface index and address, ``ADDR/LEN``."""
    family, prefixlen, _, _, index = _unpack(IFADDRMSG, payload, "address")
    found: dict[int, bytes] = dict(iter_attrs(payload, IFADDRMSG.size))
    raw = found.get(IFA_ADDRESS) or found.get(IFA_LOCAL)
    if raw is None:
        raise DecodeError("address message without an address")
    return index, f"{_ip(family, raw, 'address')}/{prefixlen}"


def route_of(payload: bytes) -> tuple[int, int, str, str | None]:
    """An RTM_NEWROUTE's table, output interface (0: none), ``DST/LEN`` and gateway."""
    family, dst_len, _, _, table, _, _, _, _ = _unpack(RTMSG, payload, "route")
    oif, dst, gateway = 0, None, None
    for type_, value in iter_attrs(payload, RTMSG.size):
        if type_ == RTA_TABLE:
            table = get_u32(value)
        elif type_ == RTA_OIF:
            oif = get_u32(value)
        elif type_ == RTA_DST:
            dst = _ip(family, value, "route destination")
        elif type_ == RTA_GATEWAY:
            gateway = _ip(family, value, "gateway")
    if dst is None:
        dst = "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104 - a default route
    return table, oif, f"{dst}/{dst_len}", gateway


def _unpack(layout: struct.Struct, payload: bytes, what: str) -> tuple[int, ...]:
    if len(payload) < layout.size:
        raise DecodeError(f"{what} message of {len(payload)} bytes, shorter than its header")
    return layout.unpack_from(payload)


def _ip(family: int, raw: bytes, what: str) -> str:
    try:
        return socket.inet_ntop(family, raw)
    except (OSError, ValueError):
        raise DecodeError(f"{what}: {raw.hex()} is no address of family {family}") from None

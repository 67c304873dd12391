"""Links, addresses and routes over rtnetlink: the requests a container's attach makes.

Each function builds one request, ``(type, flags, payload)``, for
`NetlinkConnection.request` or, several at once, `NetlinkConnection.batch`:
the kernel handles a datagram of them in one go, so an attach costs a round
trip per namespace, not per setting.  A veth pair is made whole in one
request, its peer born in the container's namespace under its final name,
MTU and MAC, so nothing needs reading back or waiting for afterwards.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

from odpctl.netlink.attrs import attr, attr_str, attr_u32, nested
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

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
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_LINK = 253
RTN_UNICAST = 1

# struct ifinfomsg: family, pad, type, index, flags, change
_IFINFOMSG = struct.Struct("=BxHiII")
# struct ifaddrmsg: family, prefixlen, flags, scope; index
_IFADDRMSG = struct.Struct("=BBBBI")
# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type; flags
_RTMSG = struct.Struct("=BBBBBBBBI")

Request = tuple[int, int, bytes]


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


def add_address(index: int, address: ipaddress.IPv4Interface, *, replace: bool = False) -> Request:
    """Put ``address`` on interface ``index``; with ``replace``, no error if it is there."""
    payload = _IFADDRMSG.pack(socket.AF_INET, address.network.prefixlen, 0, 0, index)
    payload += attr(IFA_LOCAL, address.ip.packed) + attr(IFA_ADDRESS, address.ip.packed)
    flags = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
    return RTM_NEWADDR, flags, payload


def replace_route(index: int, dst: ipaddress.IPv4Network) -> Request:
    """Route ``dst`` straight out of interface ``index`` (scope link, as `ip route` does)."""
    payload = _RTMSG.pack(
        socket.AF_INET,
        dst.prefixlen,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_LINK,
        RTN_UNICAST,
        0,
    )
    payload += attr(RTA_DST, dst.network_address.packed) + attr_u32(RTA_OIF, index)
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, payload

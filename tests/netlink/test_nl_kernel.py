"""The netlink layer against the running kernel (generic netlink and rtnetlink).

The openvswitch family is absent on development machines, so these use the
"nlctrl" controller itself, and rtnetlink inside scratch namespaces for what
nlctrl cannot show (extended-ack text, multicast deliveries).
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest

from odpctl.errors import KernelRefusedError, NotFoundError, OdpError
from odpctl.netlink import attrs as A
from odpctl.netlink import genl as G
from odpctl.netlink.connection import NetlinkConnection, ReceiveOverrun
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_EXCL
from odpctl.netlink.netns import netns
from odpctl.netlink.transport import NETLINK_ROUTE, KernelTransport

from .nl_helpers import needs_genl, needs_root

pytestmark = [needs_genl, pytest.mark.timeout(30)]

# <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>
RTM_NEWLINK = 16
RTM_NEWADDR = 20
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_IFNAME = 3
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTNLGRP_IPV4_IFADDR = 5
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBI")


@pytest.fixture
def conn() -> Iterator[NetlinkConnection]:
    with NetlinkConnection(KernelTransport()) as c:
        yield c


def getfamily(name: str | None) -> tuple[int, int, bytes]:
    body = A.attr_str(G.CTRL_ATTR_FAMILY_NAME, name) if name else b""
    return G.GENL_ID_CTRL, 0, G.genl_payload(G.CTRL_CMD_GETFAMILY, 2, body)


def test_resolve_nlctrl(conn: NetlinkConnection) -> None:
    fam = G.resolve_family(conn, "nlctrl")
    assert fam.name == "nlctrl"
    assert fam.id == G.GENL_ID_CTRL
    assert fam.version >= 1
    assert "notify" in fam.groups and fam.group("notify") > 0


@pytest.mark.parametrize("name", ["odpctl_nofam", "odpctl_no_such_family_name"])
def test_unknown_family_is_not_found(conn: NetlinkConnection, name: str) -> None:
    # The second is longer than any family name can be (GENL_NAMSIZ); the
    # kernel calls that EINVAL, but for a caller it is just as absent.
    with pytest.raises(NotFoundError) as info:
        G.resolve_family(conn, name)
    assert str(info.value) == f"generic netlink family {name!r} not found"
    # The connection stays usable after the error.
    assert G.resolve_family(conn, "nlctrl").id == G.GENL_ID_CTRL


def test_dump_all_families(conn: NetlinkConnection) -> None:
    type_, _, payload = getfamily(None)
    names = [G._parse_family(m.payload).name for m in conn.dump(type_, payload, "list families")]
    assert "nlctrl" in names
    assert len(names) == len(set(names)) > 1
    # A dump abandoned half way leaves the socket ready for the next one.
    it = conn.dump(type_, payload, "list families")
    next(it)
    it.close()
    again = [G._parse_family(m.payload).name for m in conn.dump(type_, payload, "list families")]
    assert again == names
    assert conn.stale_replies == 0


def test_batch_against_the_kernel(conn: NetlinkConnection) -> None:
    # Each good request gets a reply and an ACK: 600 of them would overflow
    # the default receive buffer several times over if sent at once.
    names = [("nlctrl" if i % 4 else f"odpctl_n{i}") for i in range(600)]
    results = conn.batch([getfamily(n) for n in names], "resolve families")
    for name, result in zip(names, results, strict=True):
        if name == "nlctrl":
            assert isinstance(result, list) and len(result) == 1
            assert G._parse_family(result[0].payload).id == G.GENL_ID_CTRL
        else:
            assert isinstance(result, NotFoundError)
    assert conn.overruns == 0


def test_unwindowed_batch_overruns_a_small_buffer(conn: NetlinkConnection) -> None:
    conn.transport.set_rcvbuf(16 * 1024)
    with pytest.raises(ReceiveOverrun) as info:
        conn.batch([getfamily("nlctrl")] * 400, "resolve families", window=400)
    assert info.value.errno == errno.ENOBUFS
    assert conn.overruns == 1
    # Small windows fit the same buffer.
    ok = conn.batch([getfamily("nlctrl")] * 40, "resolve families", window=2)
    assert all(isinstance(r, list) for r in ok)


@needs_root
def test_extended_ack_text_from_the_kernel(scratch_netns: str) -> None:
    with netns(scratch_netns):
        conn = NetlinkConnection(KernelTransport(NETLINK_ROUTE))
    with conn:
        body = (
            IFINFOMSG.pack(0, 0, 0, 0, 0)
            + A.attr_str(IFLA_IFNAME, "odpt0")
            + A.nested(IFLA_LINKINFO, A.attr_str(IFLA_INFO_KIND, "odpt-no-such-kind"))
        )
        with pytest.raises(KernelRefusedError) as info:
            conn.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, "create link")
    assert info.value.errno == errno.EOPNOTSUPP
    assert str(info.value).startswith("create link: Operation not supported")
    assert str(info.value).endswith(": Unknown device type")


@needs_root
def test_multicast_copy_of_our_own_request_is_a_notification(scratch_netns: str) -> None:
    # rtnetlink stamps the address notification with the requester's seq and
    # port id, so only the delivery group tells it apart from a reply.
    with netns(scratch_netns):
        conn = NetlinkConnection(KernelTransport(NETLINK_ROUTE))
    with conn:
        conn.transport.add_membership(RTNLGRP_IPV4_IFADDR)
        addr = bytes([10, 99, 0, 1])
        body = IFADDRMSG.pack(2, 32, 0, 0, 1) + A.attr(IFA_LOCAL, addr) + A.attr(IFA_ADDRESS, addr)
        assert conn.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, "add address") == []
        note = conn.recv_notification(5)
        assert note is not None
        assert note.type == RTM_NEWADDR
        assert A.attrs_to_dict(note.payload, IFADDRMSG.size)[IFA_LOCAL] == addr
        with pytest.raises(OdpError) as info:  # the same address again
            conn.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, "add address")
        assert info.value.errno == errno.EEXIST

"""Entering named network namespaces, and sockets that stay there."""

from __future__ import annotations

import errno
import struct
import threading
from collections.abc import Callable

import pytest

from odpctl.errors import NotFoundError, UsageError
from odpctl.netlink import attrs as A
from odpctl.netlink import genl as G
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.netns import current_netns_id, netns
from odpctl.netlink.transport import NETLINK_ROUTE, KernelTransport

from .nl_helpers import needs_genl, needs_root

pytestmark = pytest.mark.timeout(30)

RTM_GETLINK = 18
IFLA_IFNAME = 3
IFINFOMSG = struct.Struct("=BxHiII")


def link_names(conn: NetlinkConnection) -> set[str]:
    msgs = conn.dump(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0), "list links")
    return {A.get_str(A.attrs_to_dict(m.payload, IFINFOMSG.size)[IFLA_IFNAME]) for m in msgs}


def test_current_netns_id_is_stable_and_well_formed() -> None:
    ident = current_netns_id()
    assert ident.startswith("net:[") and ident.endswith("]")
    assert int(ident[5:-1]) > 0
    assert current_netns_id() == ident


def test_none_means_stay_put() -> None:
    before = current_netns_id()
    with netns(None):
        assert current_netns_id() == before
    assert current_netns_id() == before


def test_unknown_namespace_is_not_found() -> None:
    with pytest.raises(NotFoundError) as info, netns("odpt-does-not-exist"):
        pytest.fail("entered a namespace that does not exist")
    assert info.value.errno == errno.ENOENT
    assert info.value.message == "network namespace 'odpt-does-not-exist' not found"
    assert info.value.hint == "see `ip netns list`"


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_bad_names_are_usage_errors(name: str) -> None:
    with pytest.raises(UsageError), netns(name):
        pytest.fail("entered a namespace with a bad name")


def test_a_file_that_is_no_namespace() -> None:
    with pytest.raises(NotFoundError, match="is not a network namespace"), netns("/etc/hostname"):
        pytest.fail("entered a regular file")


@needs_root
@needs_genl
def test_socket_made_inside_stays_inside(scratch_netns: str) -> None:
    home = current_netns_id()
    # A thread that exists before the switch stays where it is (one created
    # inside the block would inherit the namespace, as clone() copies it).
    look = threading.Event()
    other_thread: list[str] = []

    def watch() -> None:
        look.wait(10)
        other_thread.append(current_netns_id())

    watcher = threading.Thread(target=watch)
    watcher.start()
    with netns(scratch_netns):
        inside = current_netns_id()
        assert inside != home
        look.set()
        watcher.join(10)
        rtnl = NetlinkConnection(KernelTransport(NETLINK_ROUTE))
        genl = NetlinkConnection(KernelTransport())
    assert other_thread == [home]
    assert current_netns_id() == home
    with rtnl, genl:
        # A fresh namespace has nothing but its loopback device.
        assert link_names(rtnl) == {"lo"}
        assert G.resolve_family(genl, "nlctrl").id == G.GENL_ID_CTRL
    # By absolute path too.
    with netns(f"/run/netns/{scratch_netns}"):
        assert current_netns_id() == inside


@needs_root
def test_namespace_is_left_on_exceptions(scratch_netns: str) -> None:
    home = current_netns_id()
    inside: list[str] = []

    def fail() -> None:
        inside.append(current_netns_id())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), netns(scratch_netns):
        fail()
    assert inside and inside[0] != home
    assert current_netns_id() == home


@needs_root
def test_nested_namespaces_unwind_in_order(make_netns: Callable[[], str]) -> None:
    outer, inner = make_netns(), make_netns()
    home = current_netns_id()
    with netns(outer):
        first = current_netns_id()
        with netns(inner):
            assert current_netns_id() not in (home, first)
        assert current_netns_id() == first
    assert current_netns_id() == home

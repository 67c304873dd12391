"""rtnetlink links, addresses and routes (`odpctl.netlink.links`): requests the
kernel accepts and reads back as meant, and decoders that take any bytes."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odpctl.errors import AlreadyExistsError, DecodeError, NotFoundError
from odpctl.netlink import links
from odpctl.netlink.connection import NetlinkConnection

pytestmark = pytest.mark.timeout(30)

Run = Callable[..., str]


@pytest.mark.parametrize("decode", [links.link_of, links.address_of, links.route_of])
@given(data=st.binary(max_size=128))
def test_decoders_take_any_bytes(decode: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # the only error a decoder may raise
        decode(data)


def test_random_macs_are_unicast_and_local() -> None:
    for _ in range(64):
        first = links.mac_bytes(links.random_mac())[0]
        assert first & 0x01 == 0 and first & 0x02 == 0x02


def _routes(conn: NetlinkConnection) -> set[tuple[int, int, str, str | None]]:
    return {
        links.route_of(m.payload) for m in conn.dump(links.RTM_GETROUTE, links.ROUTE_DUMP, "routes")
    }


def test_addresses_and_routes_round_trip(netns: Callable[[], str], run: Run) -> None:
    ns = netns()
    run("ip", "link", "add", "a0", "type", "veth", "peer", "b0", netns=ns)
    with links.rtnl(ns) as conn:
        conn.request(*links.set_up("a0", mtu=1400), "up")
        index = links.link_index(conn, "a0")
        (reply,) = conn.request(*links.get_link("a0"), "get")
        assert links.link_of(reply.payload)[0] == index
        v4 = ipaddress.IPv4Interface("10.9.2.7/24")
        conn.request(*links.add_address(index, v4), "v4")
        with pytest.raises(AlreadyExistsError):
            conn.request(*links.add_address(index, v4), "v4 again")
        conn.request(*links.add_address(index, v4, replace=True), "v4 replaced")
        conn.request(*links.add_address(index, ipaddress.IPv6Interface("fd00:9::7/64")), "v6")
        wanted = [
            (ipaddress.ip_network("10.88.0.0/16"), None),
            (ipaddress.ip_network("10.77.0.0/16"), ipaddress.ip_address("10.9.2.1")),
            (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_address("10.9.2.1")),
            (ipaddress.ip_network("fd00:77::/48"), ipaddress.ip_address("fd00:9::1")),
        ]
        for dst, gateway in wanted:
            conn.request(*links.add_route(index, dst, gateway), f"route {dst}")
        with pytest.raises(AlreadyExistsError):
            conn.request(*links.add_route(index, *wanted[0]), "route again")
        conn.request(*links.add_route(index, wanted[0][0], replace=True), "route replaced")
        addresses = {
            links.address_of(m.payload)
            for m in conn.dump(links.RTM_GETADDR, links.ADDR_DUMP, "addresses")
        }
        routes = _routes(conn)
        with pytest.raises(NotFoundError):
            links.link_index(conn, "nosuch0")
    assert {(index, "10.9.2.7/24"), (index, "fd00:9::7/64")} <= addresses
    for dst, gateway in wanted:
        gw = str(gateway) if gateway else None
        assert (links.RT_TABLE_MAIN, index, str(dst), gw) in routes
    shown = run("ip", "route", "show", "10.88.0.0/16", netns=ns)
    assert "scope link" in shown


def test_a_veth_is_born_whole(netns: Callable[[], str], run: Run) -> None:
    here, there = netns(), netns()
    fd = os.open(f"/run/netns/{there}", os.O_RDONLY)
    try:
        with links.rtnl(here) as conn:
            conn.request(
                *links.new_veth(
                    "h0", "c0", mtu=1300, peer_netns_fd=fd, peer_mac="02:00:00:aa:bb:cc"
                ),
                "veth",
            )
            with pytest.raises(AlreadyExistsError):
                conn.request(
                    *links.new_veth(
                        "h0", "c1", mtu=1300, peer_netns_fd=fd, peer_mac=links.random_mac()
                    ),
                    "veth again",
                )
    finally:
        os.close(fd)
    with links.rtnl(there) as conn:
        (reply,) = conn.request(*links.get_link("c0"), "get")
    assert links.link_of(reply.payload)[1] == "02:00:00:aa:bb:cc"
    assert "mtu 1300" in run("ip", "link", "show", "c0", netns=there)
    assert "state UP" not in run("ip", "link", "show", "c0", netns=there)  # up is the caller's
    assert "mtu 1300" in run("ip", "link", "show", "h0", netns=here)
    with links.rtnl(here) as conn:
        conn.request(*links.del_link("h0"), "delete")
        with pytest.raises(NotFoundError):
            conn.request(*links.del_link("h0"), "delete again")
    assert "c0" not in run("ip", "-o", "link", netns=there)

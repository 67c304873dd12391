"""Each connection's protection, and the fallback's datagrams, without a network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odpctl.crypto.esp import UNAVAILABLE
from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.node import MeshConfig
from odpctl.mesh.overlay import OverlayConnectionParams
from odpctl.odp.keys import Tunnel
from odpctl.overlay.fallback import Refused, decode, encode
from odpctl.overlay.flows import vni
from odpctl.overlay.forwarder import tunnel_refusal
from odpctl.overlay.links import (
    ESP,
    NONE,
    SEALED,
    Links,
    Policy,
    parse_subnets,
    public_address,
)
from odpctl.overlay.view import MeshView
from odpctl.router import Router, RouterConfig

FRAME = bytes(range(60))


def _params(
    peer: int, ip: str, *, outbound: bool, conn_uid: int = 1, key: bytes | None = b"k" * 32
) -> OverlayConnectionParams:
    return OverlayConnectionParams(
        remote=PeerName(peer),
        remote_nickname="",
        remote_uid=PeerUID(1),
        remote_short_id=ShortID(1),
        local_address=("10.0.0.1", 6783),
        remote_address=(ip, 6783),
        outbound=outbound,
        conn_uid=conn_uid,
        session_key=key,
        remote_features={},
        send_control=lambda _tag, _payload: None,
        set_established=lambda _up: None,
        fail=lambda _reason: None,
    )


def _links(
    password: bool = True,
    trusted: str = "",
    esp: Callable[[PeerName], dict[str, int] | None] = lambda _peer: None,
) -> Links:
    return Links(Policy(password, parse_subnets(trusted)), lambda: UNAVAILABLE, esp)


def _pair() -> tuple[Links, Links]:
    """Two ends of one connection: 10.0.0.1 dialled 10.0.0.2."""
    a, b = _links(), _links()
    a.sync([_params(2, "10.0.0.2", outbound=True)])
    b.sync([_params(1, "10.0.0.1", outbound=False)])
    return a, b


def test_with_a_password_connections_are_sealed_and_say_why() -> None:
    a, _ = _pair()
    link = a.by_peer[PeerName(2)]
    assert (link.encryption, link.reason) == (SEALED, f"{UNAVAILABLE}: using sealed fallback")
    assert not a.vxlan_ok(PeerName(2)) and not a.vxlan_from("10.0.0.2")
    assert not a.vxlan_ok(PeerName(3))  # no connection, no plaintext either


def test_esp_trusted_and_no_password() -> None:
    esp = _links(esp=lambda _peer: {"in": 0x100, "out": 0x200})
    esp.sync([_params(2, "10.0.0.2", outbound=True)])
    assert esp.by_peer[PeerName(2)].encryption == ESP and esp.vxlan_from("10.0.0.2")
    assert esp.by_peer[PeerName(2)].status()["spis"] == {"in": 0x100, "out": 0x200}
    trusted = _links(trusted="10.0.0.0/24")
    trusted.sync([_params(2, "10.0.0.2", outbound=True), _params(3, "10.1.0.3", outbound=True)])
    assert trusted.by_peer[PeerName(2)].encryption == NONE
    assert trusted.by_peer[PeerName(3)].encryption == SEALED
    bare = _links(password=False)
    assert bare.vxlan_from("192.0.2.1") and bare.vxlan_ok(PeerName(9))


def test_a_datagram_opens_at_the_other_end_once() -> None:
    a, b = _pair()
    datagram = encode(a, "10.0.0.2", 5, 6, FRAME)
    assert FRAME not in datagram and datagram[:2] == b"OE"
    assert decode(b, "10.0.0.1", datagram) == (5, 6, FRAME)
    with pytest.raises(Refused, match="replay"):
        decode(b, "10.0.0.1", datagram)
    with pytest.raises(Refused, match="from no neighbour"):
        decode(b, "10.0.0.9", encode(a, "10.0.0.2", 5, 6, FRAME))
    assert b.by_peer[PeerName(1)].replays == 1


def test_plaintext_is_never_sent_nor_taken_with_a_password() -> None:
    a, b = _pair()
    with pytest.raises(Refused, match="no key"):
        encode(a, "10.0.0.7", 5, 6, FRAME)
    plain = encode(_links(password=False), "10.0.0.2", 5, 6, FRAME)
    assert plain[:2] == b"OS"
    with pytest.raises(Refused, match="plaintext fallback"):
        decode(b, "10.0.0.1", plain)
    assert decode(_links(password=False), "10.0.0.1", plain) == (5, 6, FRAME)


def test_a_new_connection_brings_new_keys_and_the_old_datagrams_fail() -> None:
    a, b = _pair()
    old = encode(a, "10.0.0.2", 5, 6, FRAME)
    keep = b.by_peer[PeerName(1)]
    b.sync([_params(1, "10.0.0.1", outbound=False)])
    assert b.by_peer[PeerName(1)] is keep  # same connection: same keys, counters go on
    b.sync([_params(1, "10.0.0.1", outbound=False, conn_uid=2, key=b"n" * 32)])
    with pytest.raises(Refused, match="authentication"):
        decode(b, "10.0.0.1", old)
    assert b.by_peer[PeerName(1)].auth_failures == 1


@given(st.binary(max_size=120), st.booleans())
def test_the_fallback_decoder_only_raises_its_own_error(data: bytes, password: bool) -> None:
    links = _pair()[1] if password else _links(password=False)
    try:
        _, _, frame = decode(links, "10.0.0.1", data)
    except Refused:
        return
    assert not password and len(frame) >= 14 and data[:2] == b"OS"


def test_public_addresses_are_told_from_loopback_private_and_test_networks() -> None:
    assert public_address("1.2.3.4") and public_address("2a00:1450::1")
    for host in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.77.1",
        "172.16.0.1",
        "192.0.2.7",
        "::1",
        "0.0.0.0",  # noqa: S104 - no bind: a host judged
        "fd00::1",
        "not-an-address",
    ):
        assert not public_address(host), host


def test_vxlan_is_taken_from_esp_and_trusted_peers_at_their_own_address_only() -> None:
    links = _links(trusted="10.0.0.0/24")
    links.sync(
        [
            _params(2, "10.0.0.2", outbound=True),
            _params(3, "10.0.0.3", outbound=True),
            _params(4, "10.9.0.4", outbound=True),
        ]
    )
    view = MeshView(
        ourself=PeerName(1), our_short_id=1, by_short_id={i: PeerName(i) for i in range(1, 6)}
    )

    def refusal(src_ip: str, src: int, dst: int = 1) -> str | None:
        tunnel = Tunnel(tun_id=vni(src, dst), ipv4_src=int(ipaddress.IPv4Address(src_ip)))
        return tunnel_refusal(links, view, tunnel)

    assert refusal("10.0.0.2", 2) is None
    assert refusal("10.0.0.3", 5) is None  # relayed by 3 (5 is no neighbour of ours)
    assert refusal("10.0.0.3", 2) == "source address"  # 2 is a neighbour, elsewhere
    assert refusal("10.9.0.4", 4) == "plaintext VXLAN"  # sealed: no VXLAN at all
    assert refusal("10.0.0.77", 2) == "plaintext VXLAN"  # no connection there
    assert refusal("10.0.0.2", 2, dst=9) == "unknown short ID"
    assert tunnel_refusal(_links(password=False), view, Tunnel(tun_id=vni(9, 9))) is None


def test_a_router_without_a_password_on_a_public_address_warns() -> None:
    def warnings(host: str, password: bytes | None) -> list[str]:
        mesh = MeshConfig(listen_host=host, short_id=5, password=password)
        return Router(RouterConfig(mesh=mesh)).warnings()

    (warning,) = warnings("1.2.3.4", None)
    assert "no password on 1.2.3.4" in warning and "--password-file" in warning
    assert warnings("1.2.3.4", b"secret") == []
    assert warnings("192.168.77.1", None) == warnings("0.0.0.0", None) == []  # noqa: S104 - no bind

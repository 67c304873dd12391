"""ESP's lifecycle where the kernel has no ESP (this host), and the fast path's gate.

The kernel side (associations installed, traffic encrypted, leftovers flushed)
runs in the guest: tests/kernel/test_router_esp.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from odpctl.crypto import esp
from odpctl.crypto.esp import UNAVAILABLE, Esp, decode_spi, encode_spi
from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.overlay import OverlayConnectionParams
from odpctl.netlink.netns import netns as inside
from odpctl.overlay.fastdp import FastDatapath, FastDPConnection


def _params(
    session_key: bytes | None, features: dict[str, str], sent: list[tuple[int, bytes]]
) -> OverlayConnectionParams:
    return OverlayConnectionParams(
        remote=PeerName(0x0A0B0C0D0E0F),
        remote_nickname="other",
        remote_uid=PeerUID(7),
        remote_short_id=ShortID(2),
        local_address=("192.168.77.1", 40000),
        remote_address=("192.168.77.2", 6783),
        outbound=True,
        conn_uid=1,
        session_key=session_key,
        remote_features=features,
        send_control=lambda tag, payload: sent.append((tag, payload)),
        set_established=lambda _: None,
        fail=lambda _: None,
    )


def _healthy(conn: FastDPConnection) -> FastDPConnection:
    conn.health.ok = True
    return conn


def test_without_kernel_esp_an_encrypted_connection_keeps_off_vxlan() -> None:
    unavailable = Esp(6784)
    unavailable.reason = UNAVAILABLE
    overlay = FastDatapath(lambda: None, esp=unavailable)
    features: dict[str, str] = {}
    overlay.add_features(features)
    assert esp.FEATURE not in features
    sent: list[tuple[int, bytes]] = []
    conn = _healthy(FastDPConnection(overlay, _params(b"k" * 32, {"fastdp": "vxlan:6784"}, sent)))
    conn.confirm()
    assert not conn.fastdp
    assert conn.reason == UNAVAILABLE
    assert conn.esp_state is not None and conn.esp_state.mode == "none"
    assert sent == []
    assert overlay.fallback_neighbours == {conn.params.remote: "192.168.77.2"}

    # Without a password, nothing changes: VXLAN as soon as heartbeats pass.
    plain = _healthy(FastDPConnection(overlay, _params(None, {"fastdp": "vxlan:6784"}, sent)))
    assert plain.fastdp and plain.reason is None and plain.esp_state is None


def test_a_peer_without_esp_is_not_sent_plaintext() -> None:
    able = Esp(6784)
    able.reason = None  # as after a successful start: the link is never asked for here
    overlay = FastDatapath(lambda: None, esp=able)
    features: dict[str, str] = {}
    overlay.add_features(features)
    assert features[esp.FEATURE] == "rfc4106(gcm(aes))"
    conn = _healthy(FastDPConnection(overlay, _params(b"k" * 32, {"fastdp": "vxlan:6784"}, [])))
    assert not conn.fastdp
    assert conn.reason == f"{UNAVAILABLE} at the other end too"


def test_spi_messages() -> None:
    assert decode_spi(encode_spi(0xC0DE1234)) == 0xC0DE1234
    assert decode_spi(b"\0\0\0\x05") is None  # reserved
    assert decode_spi(b"\1\2\3") is None


def test_this_hosts_kernel_says_why_there_is_no_esp(netns: Callable[[], str]) -> None:
    ns = netns()
    with inside(ns):
        reason = esp.esp_unavailable_reason()
        if reason is None:
            pytest.skip("this host's kernel has ESP: the guest's tests cover that case")
        router_esp = Esp(6784)
        router_esp.start()
    assert reason == UNAVAILABLE
    refusal = esp.esp_probe_refusal()
    assert refusal is not None and "modprobe" in refusal  # the kernel's answer, with a hint
    assert router_esp.diagnostics() == {
        "available": False,
        "reason": UNAVAILABLE,
        "detail": refusal,
        "firewall": None,
    }

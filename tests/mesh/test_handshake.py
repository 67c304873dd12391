"""The handshake and the sealed session: versions, passwords, refusals, tampering."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from odpctl.mesh.crypto import Opener, Sealer, password_key
from odpctl.mesh.errors import AuthenticationFailed, HandshakeRefused
from odpctl.mesh.handshake import HandshakeConfig, HandshakeResult, handshake
from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.wire import Heartbeat, Hello, decode_message, encode_frame, encode_message

A = Hello(PeerName(0xA), "a", PeerUID(1), ShortID(1), 111, 6783, 5000, {"overlay": "sleeve"})
B = Hello(PeerName(0xB), "b", PeerUID(2), ShortID(2), 222, 6783, 5000)

Outcome = HandshakeResult | BaseException


async def _pair(
    config_a: HandshakeConfig,
    config_b: HandshakeConfig,
    vet_a: Callable[[Hello], str | None] | None = None,
    vet_b: Callable[[Hello], str | None] | None = None,
) -> tuple[Outcome, Outcome, list[asyncio.StreamWriter]]:
    sa, sb = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=sa)
    rb, wb = await asyncio.open_connection(sock=sb)
    results = await asyncio.wait_for(
        asyncio.gather(
            handshake(ra, wa, A, config_a, outbound=True, vet=vet_a),
            handshake(rb, wb, B, config_b, outbound=False, vet=vet_b),
            return_exceptions=True,
        ),
        10,
    )
    return results[0], results[1], [wa, wb]


def run(
    config_a: HandshakeConfig,
    config_b: HandshakeConfig,
    **vets: Callable[[Hello], str | None],
) -> tuple[Outcome, Outcome]:
    async def go() -> tuple[Outcome, Outcome]:
        a, b, writers = await _pair(config_a, config_b, **vets)
        for w in writers:
            w.close()
        return a, b

    return asyncio.run(go())


def plain(lo: int = 1, hi: int = 1) -> HandshakeConfig:
    return HandshakeConfig(lo, hi, None)


def secret(password: bytes) -> HandshakeConfig:
    return HandshakeConfig(1, 1, password_key(password))


def test_plain_handshake() -> None:
    a, b = run(plain(), plain())
    assert isinstance(a, HandshakeResult) and isinstance(b, HandshakeResult)
    assert a.remote == B and b.remote == A
    assert a.version == b.version == 1
    assert a.sealer is None and a.overlay_key is None


def test_highest_common_version_wins() -> None:
    a, b = run(plain(1, 3), plain(2, 5))
    assert isinstance(a, HandshakeResult) and isinstance(b, HandshakeResult)
    assert a.version == b.version == 3


def test_incompatible_versions_refused_at_both_ends_with_the_reason() -> None:
    a, b = run(plain(1, 1), plain(2, 3))
    for end in (a, b):
        assert isinstance(end, HandshakeRefused), end
        assert "no common protocol version" in end.refusal
    assert "1..1" in str(a) and "2..3" in str(a)


def test_same_password_encrypts() -> None:
    a, b = run(secret(b"s3cret"), secret(b"s3cret"))
    assert isinstance(a, HandshakeResult) and isinstance(b, HandshakeResult)
    assert a.sealer is not None and b.opener is not None and a.opener is not None
    assert a.overlay_key == b.overlay_key is not None
    # What one end seals, the other opens, in order.
    for i in range(3):
        assert b.opener.open(a.sealer.seal(b"hello %d" % i)) == b"hello %d" % i


def test_wrong_password_refused_at_both_ends_with_the_reason() -> None:
    a, b = run(secret(b"one"), secret(b"two"))
    for end in (a, b):
        assert isinstance(end, HandshakeRefused), end
        assert end.refusal.startswith("password mismatch")
        assert "passwords differ" in end.refusal


@pytest.mark.parametrize("secure_end", ["a", "b"])
def test_password_on_one_end_only_refused_at_both(secure_end: str) -> None:
    config_a = secret(b"pw") if secure_end == "a" else plain()
    config_b = secret(b"pw") if secure_end == "b" else plain()
    a, b = run(config_a, config_b)
    for end in (a, b):
        assert isinstance(end, HandshakeRefused), end
        assert "password mismatch" in end.refusal
        assert "requires a password" in end.refusal


def test_vetting_refusal_reaches_the_other_end() -> None:
    a, b = run(plain(), plain(), vet_b=lambda _hello: "connection limit reached (3)")
    assert isinstance(b, HandshakeRefused) and not b.by_remote
    assert isinstance(a, HandshakeRefused) and a.by_remote
    assert a.refusal == "connection limit reached (3)"
    assert str(a) == "refused by peer: connection limit reached (3)"


def test_vetting_refusal_reaches_the_other_end_encrypted() -> None:
    _a, b = run(secret(b"pw"), secret(b"pw"), vet_a=lambda _hello: "connection to ourself")
    assert isinstance(b, HandshakeRefused) and b.by_remote and b.permanent
    assert b.refusal == "connection to ourself"


def test_not_a_mesh_peer() -> None:
    async def go() -> BaseException:
        sa, sb = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=sa)
        sb.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            await handshake(ra, wa, A, plain(), outbound=True)
        except HandshakeRefused as exc:
            return exc
        finally:
            wa.close()
            sb.close()
        raise AssertionError("no refusal")

    assert "not an odpctl mesh peer" in str(asyncio.run(go()))


def test_sealed_messages_tampered_replayed_or_reordered_fail() -> None:
    key = bytes(range(32))
    sealer, opener = Sealer(key), Opener(key)
    first, second = sealer.seal(b"one"), sealer.seal(b"two")
    with pytest.raises(AuthenticationFailed):
        Opener(key).open(second)  # reordered: nonce 0 expected
    tampered = bytearray(first)
    tampered[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        Opener(key).open(bytes(tampered))
    assert opener.open(first) == b"one"
    with pytest.raises(AuthenticationFailed):
        opener.open(first)  # replayed
    with pytest.raises(AuthenticationFailed):
        Opener(bytes(32)).open(first)  # another key
    with pytest.raises(AuthenticationFailed):
        opener.open(b"short")


def test_directions_use_different_keys() -> None:
    a, b = run(secret(b"pw"), secret(b"pw"))
    assert isinstance(a, HandshakeResult) and isinstance(b, HandshakeResult)
    assert a.sealer is not None and a.opener is not None
    # A message of a's, reflected back at a, does not open.
    with pytest.raises(AuthenticationFailed):
        a.opener.open(a.sealer.seal(b"echo"))


def test_frames_after_the_handshake_stay_in_the_decoder() -> None:
    async def go() -> list[object]:
        sa, sb = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=sa)
        rb, wb = await asyncio.open_connection(sock=sb)

        async def b_side() -> HandshakeResult:
            result = await handshake(rb, wb, B, plain(), outbound=False)
            wb.write(encode_frame(encode_message(Heartbeat())))
            return result

        a, _ = await asyncio.gather(handshake(ra, wa, A, plain(), outbound=True), b_side())
        while (frame := a.decoder.pop()) is None:
            a.decoder.append(await ra.read(100))
        wa.close()
        wb.close()
        return [decode_message(frame)]

    assert asyncio.run(go()) == [Heartbeat()]

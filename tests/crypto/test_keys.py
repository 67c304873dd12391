import pytest

from odpctl.crypto.keys import direction_keys

SESSION = bytes(range(32))


def test_the_two_ends_derive_the_same_keys_in_opposite_roles() -> None:
    dialler = direction_keys(SESSION, b"esp", outbound=True, length=36)
    listener = direction_keys(SESSION, b"esp", outbound=False, length=36)
    assert dialler.send == listener.receive
    assert dialler.receive == listener.send
    assert len(dialler.send) == 36


def test_directions_and_purposes_never_share_a_key() -> None:
    esp = direction_keys(SESSION, b"esp", outbound=True)
    seal = direction_keys(SESSION, b"seal", outbound=True)
    assert len({esp.send, esp.receive, seal.send, seal.receive}) == 4
    other = direction_keys(bytes(32), b"esp", outbound=True)
    assert other.send != esp.send


def test_an_empty_session_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        direction_keys(b"", b"esp", outbound=True)

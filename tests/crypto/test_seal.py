"""Sealed datagrams and the replay window: what opens, what does not, and why."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.crypto.errors import ReplayError, SealError
from odpctl.crypto.keys import direction_keys
from odpctl.crypto.replay import ReplayWindow
from odpctl.crypto.seal import OVERHEAD, Opener, Sealer

SESSION = bytes(range(32))
HEADER = b"OE\x00\x01\x00\x02"


def _pair() -> tuple[Sealer, Opener]:
    dialler = direction_keys(SESSION, b"seal", outbound=True)
    listener = direction_keys(SESSION, b"seal", outbound=False)
    return Sealer(dialler.send), Opener(listener.receive)


def test_a_sealed_datagram_opens_once_at_the_other_end() -> None:
    sealer, opener = _pair()
    datagram = sealer.seal(HEADER, b"odpctest payload")
    assert datagram.startswith(HEADER)
    assert b"odpctest" not in datagram
    assert len(datagram) == len(HEADER) + len(b"odpctest payload") + OVERHEAD
    assert opener.open(datagram, len(HEADER)) == b"odpctest payload"
    with pytest.raises(ReplayError):
        opener.open(datagram, len(HEADER))


def test_header_counter_and_body_are_all_authenticated() -> None:
    sealer, opener = _pair()
    datagram = sealer.seal(HEADER, b"frame" * 20)
    for i in range(len(datagram)):
        forged = bytearray(datagram)
        forged[i] ^= 0x01
        with pytest.raises(SealError):
            opener.open(bytes(forged), len(HEADER))
    # The forgeries used up no counter: the real datagram still opens.
    assert opener.open(datagram, len(HEADER)) == b"frame" * 20


def test_a_direction_key_never_opens_the_other_direction() -> None:
    dialler = direction_keys(SESSION, b"seal", outbound=True)
    reflected = Sealer(dialler.send).seal(HEADER, b"x")
    with pytest.raises(SealError):
        Opener(dialler.receive).open(reflected, len(HEADER))


def test_new_session_keys_refuse_old_datagrams() -> None:
    sealer, _ = _pair()
    old = sealer.seal(HEADER, b"captured")
    fresh = Opener(direction_keys(bytes(32), b"seal", outbound=False).receive)
    with pytest.raises(SealError) as info:
        fresh.open(old, len(HEADER))
    assert not isinstance(info.value, ReplayError)


def test_reordered_datagrams_within_the_window_open_and_old_ones_do_not() -> None:
    sealer, _ = _pair()
    opener = Opener(direction_keys(SESSION, b"seal", outbound=False).receive, window=64)
    datagrams = [sealer.seal(HEADER, bytes([i])) for i in range(200)]
    late = datagrams[:100]
    for d in datagrams[100:]:
        opener.open(d, len(HEADER))
    for d in late:
        with pytest.raises(ReplayError):  # more than 64 behind the newest
            opener.open(d, len(HEADER))
    recent = Opener(direction_keys(SESSION, b"seal", outbound=False).receive, window=64)
    shuffled = datagrams[:60]
    random.Random(7).shuffle(shuffled)
    assert sorted(recent.open(d, len(HEADER))[0] for d in shuffled) == list(range(60))


@given(st.lists(st.integers(0, 3000), max_size=300), st.integers(1, 200))
def test_the_window_accepts_each_counter_at_most_once(counters: list[int], size: int) -> None:
    window = ReplayWindow(size)
    accepted: list[int] = []
    for counter in counters:
        if window.fresh(counter):
            window.accept(counter)
            accepted.append(counter)
    assert len(accepted) == len(set(accepted))
    # Whatever is accepted is new and within the window of the newest seen before it.
    top = -1
    for counter in accepted:
        assert counter > top - size
        top = max(top, counter)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 16))
def test_the_decoder_of_hostile_bytes_only_raises_its_own_error(data: bytes, header: int) -> None:
    _, opener = _pair()
    with pytest.raises(SealError):
        opener.open(data, header)


@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_mutation_of_a_sealed_datagram_is_refused(payload: bytes, data: st.DataObject) -> None:
    sealer, opener = _pair()
    datagram = bytearray(sealer.seal(HEADER, payload))
    cut = data.draw(st.booleans())
    if cut:
        datagram = datagram[: data.draw(st.integers(0, len(datagram) - 1))]
    else:
        i = data.draw(st.integers(0, len(datagram) - 1))
        datagram[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        opener.open(bytes(datagram), len(HEADER))

"""encode_key's compiled encoders give exactly the generic encoder's bytes.

keys.py compiles an encoder for each sequence of attribute types it meets
(see "compiled encoders" there).  Whatever the values, ``encode_key`` must
return the bytes the generic attribute-by-attribute encoder returns, or raise
the ValueError it raises.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings

from odpctl.netlink.attrs import attr
from odpctl.odp import keys
from odpctl.odp.keys import Eth, FlowKey, Ipv4, Ports, Tunnel, Unknown, encode_key
from odpctl.odp.uapi import KeyAttr

from .strategies import flow_keys
from .test_key_shapes import random_key


@pytest.fixture(autouse=True)
def fresh_encoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no compiled encoder and leaves the module's cache alone."""
    monkeypatch.setattr(keys, "_KEY_ENCODERS", {})


def generic(key: dict[int, Any]) -> bytes | str:
    """The reference: the generic encoder's bytes, or its error."""
    try:
        return keys._encode_key_generic(key)
    except Exception as exc:  # whatever it raises, encode_key must raise too
        return repr(exc)


def encoded(key: dict[int, Any]) -> bytes | str:
    try:
        return encode_key(key)
    except Exception as exc:
        return repr(exc)


def compiled(key: dict[int, Any]) -> bool:
    return keys._KEY_ENCODERS.get(tuple(key)) is not None


def test_compiled_equals_generic_on_random_keys() -> None:
    rng = random.Random("encoders")
    hits = 0
    for _ in range(600):
        key = random_key(rng)
        for _ in range(2):  # the first call compiles, the second uses it
            assert encoded(key) == generic(key)
        hits += compiled(key)
    assert hits > 150  # keys with MPLS or CT_LABELS stay generic


@settings(max_examples=300)
@given(key=flow_keys(depth=2))
def test_any_key_agrees_with_generic(key: FlowKey) -> None:
    assert encoded(key) == generic(key)
    assert encoded(key) == generic(key)


WEAVE: dict[int, Any] = {
    KeyAttr.IN_PORT: 2,
    KeyAttr.ETHERNET: Eth(b"\1" * 6, b"\2" * 6),
    KeyAttr.ETHERTYPE: 0x0800,
    KeyAttr.IPV4: Ipv4(1, 2, 6, 0, 64, 0),
    KeyAttr.TCP: Ports(1, 2),
    KeyAttr.TUNNEL: Tunnel(tun_id=5, ipv4_dst=7, ttl=64, df=True),
}


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        (KeyAttr.IN_PORT, -1),  # out of range
        (KeyAttr.IN_PORT, 2**32),
        (KeyAttr.IN_PORT, "2"),
        (KeyAttr.IN_PORT, Unknown(b"\1\2\3\4")),  # kept raw, not refused
        (KeyAttr.ETHERNET, Eth(b"\1" * 5, b"\2" * 6)),  # struct would pad it
        (KeyAttr.ETHERNET, Eth(b"\1" * 6, b"\2" * 7)),  # struct would cut it
        (KeyAttr.ETHERNET, (b"\1" * 6, b"\2" * 6)),  # a plain tuple is fine
        (KeyAttr.ETHERNET, Unknown(b"\1" * 12)),
        (KeyAttr.IPV4, (1, 2, 6, 0, 64, 0, 9)),  # one field too many...
        (KeyAttr.TCP, (1,)),  # ...and one too few: must not add up
        (KeyAttr.ETHERTYPE, 0x10000),
        (KeyAttr.TUNNEL, Tunnel(tun_id=2**64)),
        (KeyAttr.TUNNEL, Tunnel(ipv6_src=b"\1" * 15)),
        (KeyAttr.TUNNEL, 5),
    ],
)
def test_odd_values_take_the_generic_path(kind: int, bad: Any) -> None:
    good = dict(WEAVE)
    assert encoded(good) == generic(good)
    assert compiled(good)
    key = dict(WEAVE)
    key[kind] = bad
    if kind == KeyAttr.IPV4:
        key[KeyAttr.TCP] = (1,)
    assert encoded(key) == generic(key)
    assert encoded(good) == generic(good)  # and the encoder still works


def test_uncompilable_shapes() -> None:
    shapes: list[dict[int, Any]] = [
        {KeyAttr.MPLS: (1,)},
        {KeyAttr.ENCAP: FlowKey({KeyAttr.IN_PORT: 1})},
        {KeyAttr.IN_PORT: 1, 200: Unknown(b"x")},
        {},
    ]
    for key in shapes:
        assert encoded(key) == generic(key)
        assert not compiled(key)


def test_encoder_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "_MAX_KEY_ENCODERS", 3)
    kinds: list[int] = [KeyAttr.IN_PORT, KeyAttr.PRIORITY, KeyAttr.SKB_MARK, KeyAttr.RECIRC_ID]
    for n in range(1, 5):
        key = {k: n for k in kinds[:n]}
        assert encoded(key) == generic(key)
    assert len(keys._KEY_ENCODERS) == 3


def masked_generic(kind: int, value: Any, mask: Any) -> bytes | str:
    """The reference for set_masked(): both halves encoded on their own."""
    try:
        v = keys.encode_key_attr(kind, value)
        m = keys.encode_key_attr(kind, mask)
    except Exception as exc:
        return repr(exc)
    (size,) = struct.unpack_from("=H", v)  # nla_len: the payload less its padding
    payload = v[4:size] + m[4:size]
    return attr(kind, payload)


def test_masked_fixed_attrs_agree_with_generic() -> None:
    rng = random.Random("masked")
    seen = 0
    for _ in range(300):
        value_key, mask_key = random_key(rng), random_key(rng)
        for kind, value in value_key.items():
            mask = mask_key.get(kind)
            if kind not in keys._FIXED or mask is None:
                continue
            seen += 1
            assert keys.encode_masked_key_attr(kind, value, mask) == masked_generic(
                kind, value, mask
            )
    assert seen > 100


@pytest.mark.parametrize(
    ("kind", "value", "mask"),
    [
        (KeyAttr.IN_PORT, -1, 0),
        (KeyAttr.IN_PORT, Unknown(b"1234"), 5),
        (KeyAttr.ETHERNET, Eth(b"\1" * 5, b"\2" * 6), Eth(b"\1" * 6, b"\2" * 6)),
        (KeyAttr.ETHERNET, Eth(b"\1" * 6, b"\2" * 6), (b"\1" * 6, b"\2" * 6)),
        (KeyAttr.TCP, Ports(1, 2), Ports(1, 2**16)),
        (KeyAttr.TUNNEL, Tunnel(tun_id=1), Tunnel(tun_id=1)),
        (KeyAttr.MPLS, (1,), (2,)),
    ],
)
def test_masked_odd_values_are_left_to_the_caller(kind: int, value: Any, mask: Any) -> None:
    assert keys.encode_masked_key_attr(kind, value, mask) is None

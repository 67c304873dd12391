"""decode_flow_attrs learns the layouts of the messages it decodes: a message
of a known layout must decode exactly as the walk over its attributes would,
and anything else must still be walked."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u8, attr_u64
from odpctl.odp import flow as flow_module
from odpctl.odp.actions import Output, encode_actions
from odpctl.odp.flow import decode_flow_attrs
from odpctl.odp.keys import Eth, FlowKey, encode_key
from odpctl.odp.uapi import FlowAttr, KeyAttr

from .strategies import flow_matches


@pytest.fixture(autouse=True)
def no_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_module, "_LAYOUTS", {})
    monkeypatch.setattr(flow_module, "_layout_count", 0)


def _parts(key: FlowKey, mask: FlowKey | None, n: int) -> list[bytes]:
    parts = [
        attr(FlowAttr.KEY, encode_key(key)),
        attr(FlowAttr.ACTIONS, encode_actions([Output(n & 0xFF)])),
        attr(FlowAttr.STATS, (n * 3).to_bytes(8, "little") + (n * 7).to_bytes(8, "little")),
        attr_u64(FlowAttr.USED, n * 11),
        attr_u8(FlowAttr.TCP_FLAGS, n & 0xFF),
        attr(FlowAttr.UFID, n.to_bytes(16, "big")),
    ]
    if mask is not None:
        parts.append(attr(FlowAttr.MASK, encode_key(mask)))
    return parts


def _eth_key(n: int) -> FlowKey:
    return FlowKey({KeyAttr.IN_PORT: n, KeyAttr.ETHERNET: Eth(bytes(6), n.to_bytes(6, "big"))})


@settings(max_examples=150, deadline=None)
@given(
    match=flow_matches(),
    order=st.randoms(use_true_random=False),
    numbers=st.lists(st.integers(0, 2**16), min_size=2, max_size=2),
)
def test_a_known_layout_decodes_as_the_walk_does(
    match: tuple[FlowKey, FlowKey | None], order: random.Random, numbers: list[int]
) -> None:
    key, mask = match
    parts = _parts(key, mask, numbers[0])
    order.shuffle(parts)
    first = b"".join(parts)
    # The same layout (sizes, order), other values.
    again = b"".join(_reordered(_parts(key, mask, numbers[1]), parts))
    assert decode_flow_attrs(first) == flow_module._walk_flow_attrs(first, 0)
    assert decode_flow_attrs(again) == flow_module._walk_flow_attrs(again, 0)
    assert decode_flow_attrs(first) == flow_module._walk_flow_attrs(first, 0)


def _reordered(parts: list[bytes], like: list[bytes]) -> list[bytes]:
    by_type = {p[2]: p for p in parts}
    return [by_type[p[2]] for p in like]


def test_the_same_size_in_another_order_is_walked() -> None:
    parts = _parts(_eth_key(5), None, 5)
    decode_flow_attrs(b"".join(parts))  # learnt
    swapped = b"".join(reversed(parts))
    assert len(swapped) == len(b"".join(parts))
    flow = decode_flow_attrs(swapped)
    assert (flow.packets, flow.bytes, flow.used, flow.tcp_flags) == (15, 35, 55, 5)
    assert flow.key == _eth_key(5) and flow.actions == [Output(5)]


def test_an_attribute_given_twice_keeps_the_last_and_teaches_no_layout() -> None:
    data = (
        attr_u64(FlowAttr.USED, 1)
        + attr(FlowAttr.KEY, encode_key(_eth_key(1)))
        + attr_u64(FlowAttr.USED, 2)
    )
    assert decode_flow_attrs(data).used == 2
    assert decode_flow_attrs(data).used == 2
    assert flow_module._LAYOUTS == {}


def test_bad_bytes_in_a_known_layout_still_raise_the_librarys_error() -> None:
    good = b"".join(_parts(_eth_key(1), None, 1))
    decode_flow_attrs(good)
    key_at = good.index(encode_key(_eth_key(1)))
    # IN_PORT's payload grows into ETHERNET's header: same outer headers, bad key.
    bad = bytearray(good)
    bad[key_at] = 12
    with pytest.raises(DecodeError):
        decode_flow_attrs(bytes(bad))

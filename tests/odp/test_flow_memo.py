"""decode_flow_attrs keeps the masks and action lists it has decoded, by their
bytes: what it hands out must be what decoding gives, and each flow's own."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odpctl.odp import flow as flow_module
from odpctl.odp.actions import Action, Output, Set, SetMasked, decode_actions, encode_actions
from odpctl.odp.flow import Flow, decode_flow_attrs, encode_flow_attrs
from odpctl.odp.keys import Eth, FlowKey, Ipv4, Tunnel, decode_key, encode_key
from odpctl.odp.uapi import KeyAttr

from .strategies import flow_matches
from .strategies_actions import binary_actions

ALL6 = b"\xff" * 6


@pytest.fixture(autouse=True)
def fresh_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with empty tables and leaves the module's alone."""
    for name in ("_MASKS", "_ACTION_LISTS"):
        old = getattr(flow_module, name)
        monkeypatch.setattr(flow_module, name, flow_module._Memo(old.decode, old.plan))


def weave_flow(i: int) -> Flow:
    key = FlowKey(
        {
            KeyAttr.TUNNEL: Tunnel(
                tun_id=0x300000 | i, ipv4_src=0xC0A80100 | i, ipv4_dst=0xC0A80001, ttl=64, df=True
            ),
            KeyAttr.IN_PORT: 2,
            KeyAttr.ETHERNET: Eth(bytes([2, 0, 0, 0, 0, i]), bytes([2, 0, 0, 0, 1, i])),
        }
    )
    mask = FlowKey(
        {
            KeyAttr.TUNNEL: Tunnel(
                tun_id=2**64 - 1, ipv4_src=2**32 - 1, ipv4_dst=2**32 - 1, ttl=0xFF, df=True
            ),
            KeyAttr.IN_PORT: 0xFFFFFFFF,
            KeyAttr.ETHERNET: Eth(ALL6, ALL6),
        }
    )
    actions: list[Action] = [
        Set(KeyAttr.TUNNEL, Tunnel(tun_id=0x200000, ipv4_dst=0xC0A80101, ttl=64, df=True)),
        SetMasked(KeyAttr.IPV4, Ipv4(1, 2, 0, 0, 0, 0), Ipv4(0xFFFFFFFF, 0, 0, 0, 0, 0)),
        Output(3),
    ]
    return Flow(key, mask, actions)


def same(got: Any, want: Any) -> bool:
    """Equal, with the same types all the way down."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return list(got) == list(want) and all(same(got[k], want[k]) for k in want)
    if isinstance(want, list | tuple):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def test_repeated_masks_and_actions_come_from_the_table_as_fresh_copies() -> None:
    wires = [encode_flow_attrs(weave_flow(i)) for i in range(4)]
    first = [decode_flow_attrs(w) for w in wires]
    again = [decode_flow_attrs(w) for w in wires]
    for i, (a, b) in enumerate(zip(first, again, strict=True)):
        assert same(a.key, weave_flow(i).key) and same(b.key, a.key)
        assert same(a.mask, weave_flow(i).mask) and same(b.mask, a.mask)
        assert same(a.actions, weave_flow(i).actions) and same(b.actions, a.actions)
    assert len(flow_module._MASKS.entries) == 1
    assert len(flow_module._ACTION_LISTS.entries) == 1
    assert flow_module._MASKS.hits == 7 and flow_module._ACTION_LISTS.hits == 7
    # Nothing mutable is shared between two flows, or with the table.
    a, b = again[0], again[1]
    assert a.mask is not b.mask and a.actions is not b.actions
    assert a.mask is not None and b.mask is not None
    assert a.mask[KeyAttr.TUNNEL] is not b.mask[KeyAttr.TUNNEL]
    assert a.actions[0].value is not b.actions[0].value  # type: ignore[union-attr]
    a.mask[KeyAttr.TUNNEL].ttl = 1
    a.mask[KeyAttr.IN_PORT] = 0
    a.actions[0].value.ttl = 1  # type: ignore[union-attr]
    a.actions.append(Output(9))
    fresh = decode_flow_attrs(wires[0])
    assert same(fresh.mask, weave_flow(0).mask)
    assert same(fresh.actions, weave_flow(0).actions)
    assert same(b.mask, weave_flow(1).mask) and same(b.actions, weave_flow(1).actions)


def test_what_cannot_be_copied_is_decoded_every_time() -> None:
    encap_mask = FlowKey(
        {KeyAttr.ETHERTYPE: 0xFFFF, KeyAttr.ENCAP: FlowKey({KeyAttr.ETHERTYPE: 0xFFFF})}
    )
    flow = Flow(
        FlowKey({KeyAttr.ETHERTYPE: 0x8100, KeyAttr.ENCAP: FlowKey({KeyAttr.ETHERTYPE: 0x800})}),
        encap_mask,
        [Output(1)],
    )
    wire = encode_flow_attrs(flow)
    one, two = decode_flow_attrs(wire), decode_flow_attrs(wire)
    assert one == two == flow
    assert one.mask is not None and two.mask is not None
    assert one.mask[KeyAttr.ENCAP] is not two.mask[KeyAttr.ENCAP]
    assert list(flow_module._MASKS.entries.values()) == [None]


def test_a_table_of_bytes_that_never_repeat_is_emptied_and_rests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_module, "_MEMO_SIZE", 8)
    monkeypatch.setattr(flow_module, "_MEMO_REST", 5)
    memo = flow_module._ACTION_LISTS
    for port in range(9):
        assert decode_flow_attrs(
            encode_flow_attrs(Flow(FlowKey(), None, [Output(port)]))
        ).actions == [Output(port)]
    assert memo.entries == {} and memo.resting == 5
    for port in range(5):
        decode_flow_attrs(encode_flow_attrs(Flow(FlowKey(), None, [Output(port)])))
    assert memo.resting == 0 and memo.entries == {}
    decode_flow_attrs(encode_flow_attrs(Flow(FlowKey(), None, [Output(1)])))
    assert len(memo.entries) == 1


def test_a_useful_table_is_kept_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_module, "_MEMO_SIZE", 4)
    memo = flow_module._ACTION_LISTS
    wires = [encode_flow_attrs(Flow(FlowKey(), None, [Output(p)])) for p in range(4)]
    for _ in range(5):
        for w in wires:
            decode_flow_attrs(w)
    decode_flow_attrs(encode_flow_attrs(Flow(FlowKey(), None, [Output(99)])))
    assert len(memo.entries) == 4 and memo.resting == 0


def test_bytearray_input() -> None:
    wire = bytearray(encode_flow_attrs(weave_flow(1)))
    for _ in range(2):
        assert decode_flow_attrs(wire) == weave_flow(1)  # type: ignore[arg-type]  # on purpose


def test_decode_at_an_offset() -> None:
    wire = encode_flow_attrs(weave_flow(2))
    assert decode_flow_attrs(b"\xee" * 8 + wire, 8) == weave_flow(2)


MEMO = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MEMO
@given(match=flow_matches(), actions=binary_actions(), repeat=st.integers(2, 3))
def test_table_agrees_with_decoding(
    match: tuple[FlowKey, FlowKey], actions: list[Any], repeat: int
) -> None:
    key, mask = match
    wire = encode_flow_attrs(Flow(key, mask, actions))
    want_mask = decode_key(encode_key(mask))
    want_actions = decode_actions(encode_actions(actions))
    got = [decode_flow_attrs(wire) for _ in range(repeat)]
    for flow in got:
        assert same(flow.mask, want_mask)
        assert same(flow.actions, want_actions)
    assert all(a.actions is not b.actions for a, b in itertools.pairwise(got))

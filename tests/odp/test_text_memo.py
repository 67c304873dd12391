"""The texts the formatters keep across a dump: never stale, never unbounded.

Keys, masks and actions are mutable (a FlowKey, a Tunnel), so a text kept
for one must not come back after it has changed: each case formats, changes
the value in place, and formats again.
"""

from __future__ import annotations

from odpctl.odp.actions import Action, Output, Set
from odpctl.odp.keys import Eth, FlowKey, Tunnel
from odpctl.odp.text.actions import format_actions
from odpctl.odp.text.keys import format_key, parse_key
from odpctl.odp.text.memo import TextMemo, tunnel_fields
from odpctl.odp.uapi import KeyAttr as K

FF6 = b"\xff" * 6


def weave_match() -> tuple[FlowKey, FlowKey]:
    return parse_key(
        "tunnel(tun_id=0x300001,src=192.168.1.1,dst=192.168.0.1,ttl=64,flags(+df+key)),"
        "in_port(2),eth(src=0a:58:00:00:00:01,dst=0a:59:00:00:00:01)"
    )


def test_changed_mask_is_not_planned_as_before() -> None:
    key, mask = weave_match()
    assert format_key(key, mask) == (
        "tunnel(tun_id=0x300001,src=192.168.1.1,dst=192.168.0.1,ttl=64,flags(+df+key)),"
        "in_port(2),eth(src=0a:58:00:00:00:01,dst=0a:59:00:00:00:01)"
    )
    mask[K.IN_PORT] = 0
    mask[K.ETHERNET] = Eth(FF6, b"\xff\xff\xff\x00\x00\x00")
    mask[K.ETHERTYPE] = 0xFFFF
    assert format_key(key, mask) == (
        "tunnel(tun_id=0x300001,src=192.168.1.1,dst=192.168.0.1,ttl=64,flags(+df+key)),"
        "eth(src=0a:58:00:00:00:01,dst=0a:59:00:00:00:01/ff:ff:ff:00:00:00),eth_type(0/0xffff)"
    )


def test_changed_tunnels_are_not_printed_as_before() -> None:
    key, mask = weave_match()
    before = format_key(key, mask)
    key[K.TUNNEL].ttl = 3
    mask[K.TUNNEL].ipv4_src = 0xFFFFFF00
    assert format_key(key, mask) == before.replace(
        "src=192.168.1.1,", "src=192.168.1.1/255.255.255.0,"
    ).replace("ttl=64", "ttl=3")


def test_a_mask_without_a_keys_attribute() -> None:
    key, mask = weave_match()
    del mask[K.IN_PORT]  # wildcarded: not printed, planned apart
    assert "in_port" not in format_key(key, mask)
    assert "in_port(2)" in format_key(*weave_match())


def test_changed_action_list_is_not_printed_as_before() -> None:
    tunnel = Tunnel(tun_id=0x200001, ipv4_dst=0xC0A80101, ttl=64, df=True)
    actions: list[Action] = [Set(K.TUNNEL, tunnel), Output(2)]
    text = "set(tunnel(tun_id=0x200001,dst=192.168.1.1,ttl=64,flags(df|key))),2"
    assert format_actions(actions) == text
    tunnel.ttl = 9
    assert format_actions(actions) == text.replace("ttl=64", "ttl=9")
    actions.append(Output(3))
    assert format_actions(actions) == text.replace("ttl=64", "ttl=9") + ",3"
    assert format_actions(iter(actions)) == format_actions(actions)  # not a list: not kept


def test_tunnel_fields_follow_the_class() -> None:
    t = Tunnel(tun_id=1, ttl=2, unknown=((30, b"x"),))
    assert tunnel_fields(t) == (
        1,
        None,
        None,
        None,
        None,
        None,
        2,
        False,
        False,
        None,
        None,
        False,
        None,
        None,
        None,
        None,
        False,
        ((30, b"x"),),
    )


def test_memo_is_bounded() -> None:
    memo = TextMemo(2)
    for i in range(5):
        assert memo.put(i, str(i)) == str(i)
        assert len(memo) <= 2
    assert memo.get(4) == "4"

"""Reading dumped flows lazily (odpctl/overlay/lazyflow.py): what it reads is what a
full decode gives, layouts seen before included, and hostile bytes raise DecodeError."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u64
from odpctl.odp.actions import decode_actions
from odpctl.odp.flow import Flow, decode_flow_attrs, encode_flow_attrs
from odpctl.odp.keys import Eth, Tunnel
from odpctl.odp.uapi import FlowAttr, KeyAttr
from odpctl.overlay.flows import local_flow, tunnel_flow, tunnel_to, vni
from odpctl.overlay.lazyflow import FlowReader


def _dumped(flow: Flow, used: int) -> bytes:
    stats = attr(FlowAttr.STATS, struct.pack("=QQ", 3, 300))
    extra = stats + (attr_u64(FlowAttr.USED, used) if used else b"")
    return b"\0" * 4 + encode_flow_attrs(flow) + extra  # behind a 4-byte header


def _flows(i: int) -> list[Flow]:
    eth = Eth(bytes([2, 0, 0, 0, 0, i]), bytes([2 | i & 1, 9, 9, 9, 9, i]))
    tunnel = Tunnel(tun_id=vni(2, 1), ipv4_src=0x0A000002, ipv4_dst=0x0A000001, ttl=64)
    return [
        local_flow(1, eth, 0x0800, tunnel_to(vni(1, 2), "10.0.0.2", 3)),
        tunnel_flow(3, tunnel, eth, 0x0806, []),
    ]


def test_what_it_reads_is_what_decoding_gives_again_and_again() -> None:
    reader = FlowReader()
    for i in range(6):  # the second and later flows of a layout take the learnt path
        for n, flow in enumerate(_flows(i)):
            data = _dumped(flow, used=1000 * i * n)
            k0, k1, a0, a1, used = reader.flow(data, 4)
            whole = decode_flow_attrs(data, 4)
            assert used == whole.used == 1000 * i * n
            assert decode_actions(data[a0:a1]) == whole.actions
            tunnel, multicast = reader.key_facts(data, k0, k1)
            eth = whole.key.eth
            assert eth is not None and multicast == bool(eth.dst[0] & 1)
            assert (tunnel is None) == (KeyAttr.TUNNEL not in whole.key)
            assert data[k0:k1] == encode_flow_attrs(Flow(whole.key), actions=False)[4:]


@given(st.binary(max_size=200), st.integers(0, 8))
def test_hostile_bytes_raise_decode_error_only(data: bytes, start: int) -> None:
    reader = FlowReader()
    for _ in range(2):  # walked, then (if it was fine) through its learnt layout
        try:
            k0, k1, _, _, _ = reader.flow(data, start)
            reader.key_facts(data, k0, k1)
        except DecodeError:
            pass

"""decode_key's compiled shapes decode exactly as the generic decoder does.

keys.py compiles a decoder for each attribute layout it has seen (see
"compiled shapes" there).  Whatever the bytes, ``decode_key`` must return what
the generic attribute-by-attribute walk returns (same values, same Python
types, same order) or raise DecodeError where it raises.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr
from odpctl.odp import keys
from odpctl.odp.keys import (
    Arp,
    CtTupleIpv4,
    CtTupleIpv6,
    Eth,
    FlowKey,
    Icmp,
    Ipv4,
    Ipv6,
    Nd,
    NdExtensions,
    Ports,
    Tunnel,
    decode_key,
    decode_key_at,
    encode_key,
)
from odpctl.odp.uapi import KeyAttr, TunnelKeyAttr

MAC = bytes.fromhex("0a580a200001")
V6 = bytes.fromhex("20010db8000000000000000000000001")


@pytest.fixture(autouse=True)
def fresh_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no compiled shape and leaves the module's cache alone."""
    monkeypatch.setattr(keys, "_SHAPES", {})
    monkeypatch.setattr(keys, "_shape_count", 0)
    monkeypatch.setattr(keys, "_NO_SHAPE", {})


def generic(data: bytes) -> FlowKey | type[DecodeError]:
    """The reference: the attribute-by-attribute decoder, errors as DecodeError."""
    try:
        return keys._decode_key(data, 0, len(data), 0)
    except (DecodeError, struct.error, ValueError):
        return DecodeError


def decoded(data: bytes) -> FlowKey | type[DecodeError]:
    try:
        return decode_key(data)
    except DecodeError:
        return DecodeError


def same(got: Any, want: Any) -> bool:
    """Equal, with the same types all the way down and the same key order."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return list(got) == list(want) and all(same(got[k], want[k]) for k in want)
    if isinstance(want, tuple):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def n_shapes() -> int:
    return sum(len(v) for v in keys._SHAPES.values())


def random_tunnel(rng: random.Random) -> Tunnel:
    t = Tunnel()
    for name, make in (
        ("tun_id", lambda: rng.randrange(2**64)),
        ("ipv4_src", lambda: rng.randrange(2**32)),
        ("ipv4_dst", lambda: rng.randrange(2**32)),
        ("ipv6_src", lambda: rng.randbytes(16)),
        ("ipv6_dst", lambda: rng.randbytes(16)),
        ("tos", lambda: rng.randrange(256)),
        ("ttl", lambda: rng.randrange(256)),
        ("df", lambda: True),
        ("csum", lambda: True),
        ("tp_src", lambda: rng.randrange(65536)),
        ("tp_dst", lambda: rng.randrange(65536)),
        ("oam", lambda: True),
        ("ipv4_info_bridge", lambda: True),
        # Not compilable: the key stays on the generic path.
        ("vxlan_gbp", lambda: rng.randrange(2**32)),
        ("geneve", lambda: rng.randbytes(8)),
    ):
        if rng.random() < (0.5 if name not in ("vxlan_gbp", "geneve") else 0.1):
            setattr(t, name, make())
    return t


def random_key(rng: random.Random) -> FlowKey:
    def u32() -> int:
        return rng.randrange(2**32)

    def u16() -> int:
        return rng.randrange(2**16)

    def u8() -> int:
        return rng.randrange(256)

    makers: dict[int, Any] = {
        KeyAttr.PRIORITY: u32,
        KeyAttr.IN_PORT: u32,
        KeyAttr.ETHERNET: lambda: Eth(rng.randbytes(6), rng.randbytes(6)),
        KeyAttr.VLAN: u16,
        KeyAttr.ETHERTYPE: u16,
        KeyAttr.IPV4: lambda: Ipv4(u32(), u32(), u8(), u8(), u8(), u8()),
        KeyAttr.IPV6: lambda: Ipv6(rng.randbytes(16), V6, u32() & 0xFFFFF, u8(), u8(), u8(), u8()),
        KeyAttr.TCP: lambda: Ports(u16(), u16()),
        KeyAttr.UDP: lambda: Ports(u16(), u16()),
        KeyAttr.ICMP: lambda: Icmp(u8(), u8()),
        KeyAttr.ICMPV6: lambda: Icmp(u8(), u8()),
        KeyAttr.ARP: lambda: Arp(u32(), u32(), u16(), rng.randbytes(6), MAC),
        KeyAttr.ND: lambda: Nd(V6, rng.randbytes(6), MAC),
        KeyAttr.SKB_MARK: u32,
        KeyAttr.TUNNEL: lambda: random_tunnel(rng),
        KeyAttr.SCTP: lambda: Ports(u16(), u16()),
        KeyAttr.TCP_FLAGS: u16,
        KeyAttr.DP_HASH: u32,
        KeyAttr.RECIRC_ID: u32,
        KeyAttr.CT_STATE: u32,
        KeyAttr.CT_ZONE: u16,
        KeyAttr.CT_MARK: u32,
        KeyAttr.CT_LABELS: lambda: rng.randbytes(16),
        KeyAttr.CT_ORIG_TUPLE_IPV4: lambda: CtTupleIpv4(u32(), u32(), u16(), u16(), u8()),
        KeyAttr.CT_ORIG_TUPLE_IPV6: lambda: CtTupleIpv6(V6, V6, u16(), u16(), u8()),
        KeyAttr.PACKET_TYPE: u32,
        KeyAttr.ND_EXTENSIONS: lambda: NdExtensions(u32(), u8()),
        KeyAttr.IPV6_EXTHDRS: u16,
        # Not compilable.
        KeyAttr.MPLS: lambda: (u32(),),
    }
    kinds = rng.sample(sorted(makers), rng.randrange(1, 12))
    return FlowKey({k: makers[k]() for k in kinds})


def test_compiled_equals_generic_on_random_keys() -> None:
    rng = random.Random("shapes")
    compiled_hits = 0
    for _ in range(400):
        key = random_key(rng)
        data = encode_key(key)
        want = generic(data)
        assert same(want, key)
        first = decode_key(data)  # generic, and learns the shape
        before = n_shapes()
        second = decode_key(data)  # compiled if the shape was learnt
        assert same(first, want) and same(second, want), key
        # The same layout with fresh values: the compiled decoder must read them.
        other = FlowKey({k: random_key_value(rng, k, v) for k, v in key.items()})
        other_data = encode_key(other)
        if len(other_data) == len(data):
            assert same(decode_key(other_data), generic(other_data))
            compiled_hits += n_shapes() == before
    assert n_shapes() > 20
    assert compiled_hits > 50


def random_key_value(rng: random.Random, _kind: int, value: Any) -> Any:
    """A value of the same shape as ``value`` (same tunnel fields, same sizes)."""
    if isinstance(value, Tunnel):
        t = Tunnel()
        for name in Tunnel.__dataclass_fields__:
            v = getattr(value, name)
            if isinstance(v, bool) or name == "unknown":
                setattr(t, name, v)
            elif isinstance(v, int):
                small = name in ("tos", "ttl")
                setattr(t, name, rng.randrange(256) if small else rng.randrange(2**16))
            elif isinstance(v, bytes):
                setattr(t, name, rng.randbytes(len(v)))
        return t
    if isinstance(value, tuple):
        fields: list[Any] = [
            rng.randbytes(len(v)) if isinstance(v, bytes) else rng.randrange(256) for v in value
        ]
        if type(value) is tuple:
            return tuple(fields)
        return type(value)(*fields)
    if isinstance(value, bytes):
        return rng.randbytes(len(value))
    return rng.randrange(256)


def test_same_size_different_layout() -> None:
    a = encode_key(FlowKey({KeyAttr.IN_PORT: 1, KeyAttr.SKB_MARK: 2}))
    b = encode_key(FlowKey({KeyAttr.SKB_MARK: 3, KeyAttr.IN_PORT: 4}))
    c = encode_key(FlowKey({KeyAttr.IN_PORT: 5, KeyAttr.RECIRC_ID: 6}))
    assert len(a) == len(b) == len(c) == 16
    for _ in range(2):
        assert list(decode_key(a).items()) == [(KeyAttr.IN_PORT, 1), (KeyAttr.SKB_MARK, 2)]
        assert list(decode_key(b).items()) == [(KeyAttr.SKB_MARK, 3), (KeyAttr.IN_PORT, 4)]
        assert list(decode_key(c).items()) == [(KeyAttr.IN_PORT, 5), (KeyAttr.RECIRC_ID, 6)]
    assert n_shapes() == 3


def test_flag_bits_are_part_of_the_shape() -> None:
    plain = encode_key(FlowKey({KeyAttr.TUNNEL: Tunnel(tun_id=1, df=True)}))
    nested = plain[:2] + bytes([plain[2], plain[3] | 0x80]) + plain[4:]  # NLA_F_NESTED
    for _ in range(2):
        assert (
            decode_key(plain)
            == decode_key(nested)
            == FlowKey({KeyAttr.TUNNEL: Tunnel(tun_id=1, df=True)})
        )
    assert n_shapes() == 2


def test_tunnel_pad_is_part_of_the_shape() -> None:
    # The kernel aligns tun_id with an empty OVS_TUNNEL_KEY_ATTR_PAD where the
    # message needs it: about half of a dump's tunnel keys and masks have one.
    tunnel = Tunnel(tun_id=0x300001, ipv4_src=0xC0A80101, ipv4_dst=0xC0A80001, ttl=64, df=True)
    pad = struct.pack("=HH", 4, TunnelKeyAttr.PAD)
    inner = pad + keys._encode_tunnel(tunnel)
    padded = attr(KeyAttr.IN_PORT, struct.pack("=I", 2)) + attr(KeyAttr.TUNNEL, inner)
    key = FlowKey({KeyAttr.IN_PORT: 2, KeyAttr.TUNNEL: tunnel})
    plain = encode_key(key)
    for _ in range(3):
        assert same(decoded(padded), key) and same(decoded(plain), key)
    assert same(generic(padded), key)
    assert n_shapes() == 2
    # Two PADs: a repeated type, left to the generic decoder.
    twice = attr(KeyAttr.TUNNEL, pad + pad + keys._encode_tunnel(tunnel))
    for _ in range(2):
        assert same(decoded(twice), FlowKey({KeyAttr.TUNNEL: tunnel}))
    assert n_shapes() == 2


def test_not_compiled() -> None:
    for key in (
        FlowKey({KeyAttr.ENCAP: FlowKey({KeyAttr.ETHERTYPE: 0x800})}),
        FlowKey({KeyAttr.MPLS: (1, 2)}),
        FlowKey({KeyAttr.TUNNEL: Tunnel(geneve=bytes(8))}),
        FlowKey({KeyAttr.TUNNEL: Tunnel(vxlan_gbp=1)}),
        FlowKey({0x50: keys.Unknown(b"abcd")}),
    ):
        data = encode_key(key)
        assert decode_key(data) == decode_key(data) == key
    # A repeated attribute type: the generic decoder keeps the last value.
    data = encode_key(FlowKey({KeyAttr.IN_PORT: 1})) * 2
    assert decode_key(data) == decode_key(data) == FlowKey({KeyAttr.IN_PORT: 1})
    # The last attribute without its padding.
    data = attr(KeyAttr.IN_PORT, struct.pack("=I", 1)) + struct.pack("=HH", 6, 6) + b"\x08\x00"
    assert (
        decode_key(data)
        == decode_key(data)
        == FlowKey({KeyAttr.IN_PORT: 1, KeyAttr.ETHERTYPE: 0x800})
    )
    assert n_shapes() == 0


def test_uncompilable_sizes_stop_being_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    compile_shape = keys._compile_shape

    def counting(data: bytes, off: int, end: int) -> Any:
        calls.append(end - off)
        return compile_shape(data, off, end)

    monkeypatch.setattr(keys, "_compile_shape", counting)
    key = FlowKey({KeyAttr.ETHERTYPE: 0x8100, KeyAttr.ENCAP: FlowKey({KeyAttr.ETHERTYPE: 0x800})})
    data = encode_key(key)
    for _ in range(20):
        assert decode_key(data) == key
    assert len(calls) == keys._MAX_NO_SHAPE_TRIES
    monkeypatch.setattr(keys, "_MAX_NO_SHAPE_SIZES", 1)
    other = encode_key(FlowKey({KeyAttr.MPLS: (1,)}))
    for _ in range(5):
        decode_key(other)
    assert len(calls) == keys._MAX_NO_SHAPE_TRIES  # table full: new sizes not tried


def test_shape_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "_MAX_SHAPES", 5)
    for port_size in range(1, 12):
        # Keys of different layouts: in_port plus `port_size` other attributes.
        kinds = [
            KeyAttr.PRIORITY,
            KeyAttr.SKB_MARK,
            KeyAttr.DP_HASH,
            KeyAttr.RECIRC_ID,
            KeyAttr.CT_STATE,
            KeyAttr.CT_MARK,
            KeyAttr.VLAN,
            KeyAttr.ETHERTYPE,
            KeyAttr.TCP_FLAGS,
            KeyAttr.CT_ZONE,
            KeyAttr.IPV6_EXTHDRS,
        ]
        key = FlowKey({KeyAttr.IN_PORT: 1, **{k: 2 for k in kinds[:port_size]}})
        data = encode_key(key)
        assert decode_key(data) == decode_key(data) == key
    assert n_shapes() == 5


def test_decode_key_at_uses_shapes() -> None:
    key = FlowKey({KeyAttr.IN_PORT: 7, KeyAttr.ETHERNET: Eth(MAC, MAC)})
    data = b"\xee" * 8 + encode_key(key) + b"\xee" * 8
    for _ in range(2):
        assert decode_key_at(data, 8, len(data) - 8) == key
    assert n_shapes() == 1
    with pytest.raises(DecodeError):
        decode_key_at(data, 8, len(data) + 1)


MUTATE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MUTATE
@given(rnd=st.randoms(use_true_random=False), flips=st.integers(1, 4))
def test_mutations_agree_with_generic(rnd: random.Random, flips: int) -> None:
    """Bytes near a learnt shape (flipped headers, values, lengths) decode as generic does."""
    key = random_key(rnd)
    data = encode_key(key)
    decode_key(data)  # learn the shape
    buf = bytearray(data)
    for _ in range(flips):
        buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
    mutated = bytes(buf)
    want = generic(mutated)
    got = decoded(mutated)
    assert got is want if want is DecodeError else same(got, want)
    # Again, now that the mutated layout may have been learnt too.
    got = decoded(mutated)
    assert got is want if want is DecodeError else same(got, want)

"""Every ODP decoder fed hostile bytes: only DecodeError may escape.

Bytes from the kernel, from a peer's unix socket or from a capture file are
input, not trusted data; a decoder that lets struct.error, IndexError,
KeyError, UnicodeError, RecursionError... escape kills whatever loop reads
them (an upcall handler, a dump).  Each decoder gets:

- random bytes;
- valid encodings cut short at every length;
- valid encodings with bytes flipped;
- valid encodings whose attribute lengths lie (0, 1..3, one short, one long,
  past the end, 0xffff), at the top level and inside nests;
- splices, duplicated and dropped spans.

Hypothesis explores; ``test_mutation_corpus`` replays a fixed, seeded corpus
of thousands of mutations so every CI run covers the same ground.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_str, attr_u8, attr_u16, attr_u32, attr_u64, nested
from odpctl.netlink.message import decode_messages, encode_message
from odpctl.odp.datapath import decode_datapath
from odpctl.odp.header import odp_payload, split_odp
from odpctl.odp.keys import (
    MAX_ENCAP_DEPTH,
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
    Nsh,
    NshBase,
    Ports,
    Tunnel,
    Unknown,
    decode_key,
    decode_tunnel,
    encode_key,
)
from odpctl.odp.uapi import (
    ActionAttr,
    CtAttr,
    DpAttr,
    FlowAttr,
    KeyAttr,
    NatAttr,
    PacketAttr,
    SampleAttr,
    TunnelKeyAttr,
    TunnelOptAttr,
    UserspaceAttr,
    VportAttr,
)
from odpctl.odp.vport import decode_vport

_actions_module: Any
try:
    _actions_module = importlib.import_module("odpctl.odp.actions")
except ModuleNotFoundError as exc:  # pragma: no cover - while actions.py is being written
    if exc.name != "odpctl.odp.actions":
        raise
    _actions_module = None

NO_ACTIONS = "odpctl/odp/actions.py does not exist yet (flow.py and packet.py import it)"
needs_actions = pytest.mark.skipif(_actions_module is None, reason=NO_ACTIONS)

# --- seeds: valid encodings, built with the encoders and attribute helpers ----

MAC_A = bytes.fromhex("001122334455")
MAC_B = bytes.fromhex("66778899aabb")
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("fe800000000000000000000000000002")

FULL_TUNNEL = Tunnel(
    tun_id=0xABC123,
    ipv4_src=0xC0000201,
    ipv4_dst=0xC6336402,
    tos=0x10,
    ttl=64,
    df=True,
    csum=True,
    tp_src=49152,
    tp_dst=4789,
    oam=True,
    geneve=bytes.fromhex("01028001 01020304"),
    vxlan_gbp=0x100,
    erspan=bytes.fromhex("01000000 00000007 00000000"),
    ipv4_info_bridge=True,
    unknown=((0x63, b"abc"),),
)
V6_TUNNEL = Tunnel(tun_id=1, ipv6_src=V6_A, ipv6_dst=V6_B, ttl=1)


def _key_seeds() -> list[bytes]:
    every = FlowKey(
        {
            KeyAttr.RECIRC_ID: 1,
            KeyAttr.DP_HASH: 2,
            KeyAttr.PRIORITY: 3,
            KeyAttr.IN_PORT: 4,
            KeyAttr.SKB_MARK: 5,
            KeyAttr.CT_STATE: 0x22,
            KeyAttr.CT_ZONE: 7,
            KeyAttr.CT_MARK: 8,
            KeyAttr.CT_LABELS: bytes(range(16)),
            KeyAttr.CT_ORIG_TUPLE_IPV4: CtTupleIpv4(1, 2, 3, 4, 6),
            KeyAttr.CT_ORIG_TUPLE_IPV6: CtTupleIpv6(V6_A, V6_B, 3, 4, 17),
            KeyAttr.TUNNEL: FULL_TUNNEL,
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
            KeyAttr.PACKET_TYPE: 0,
            KeyAttr.ETHERTYPE: 0x0800,
            KeyAttr.IPV4: Ipv4(1, 2, 6, 0, 64, 0),
            KeyAttr.TCP: Ports(1, 2),
            KeyAttr.TCP_FLAGS: 0x12,
            KeyAttr.IPV6_EXTHDRS: 1,
            0x50: Unknown(b"xyz"),
        }
    )
    v6 = FlowKey(
        {
            KeyAttr.IN_PORT: 1,
            KeyAttr.TUNNEL: V6_TUNNEL,
            KeyAttr.ETHERTYPE: 0x86DD,
            KeyAttr.IPV6: Ipv6(V6_A, V6_B, 0x12345, 58, 0, 255, 0),
            KeyAttr.ICMPV6: Icmp(135, 0),
            KeyAttr.ND: Nd(V6_A, MAC_A, MAC_B),
            KeyAttr.ND_EXTENSIONS: NdExtensions(0, 1),
        }
    )
    misc = FlowKey(
        {
            KeyAttr.ETHERTYPE: 0x88A8,
            KeyAttr.VLAN: 0x1001,
            KeyAttr.ENCAP: FlowKey(
                {
                    KeyAttr.ETHERTYPE: 0x8100,
                    KeyAttr.VLAN: 0x1002,
                    KeyAttr.ENCAP: FlowKey(
                        {
                            KeyAttr.ETHERTYPE: 0x0806,
                            KeyAttr.ARP: Arp(1, 2, 1, MAC_A, MAC_B),
                        }
                    ),
                }
            ),
            KeyAttr.MPLS: (0x64140, 0x65140),
            KeyAttr.ICMP: Icmp(8, 0),
            KeyAttr.UDP: Ports(53, 53),
            KeyAttr.SCTP: Ports(1, 1),
            KeyAttr.NSH: Nsh(
                base=NshBase(0, 63, 1, 3, 0x100FF),
                md1=(1, 2, 3, 4),
                md2=b"\x00\x01\x02\x04abcd",
                unknown=((9, b"z"),),
            ),
        }
    )
    return [encode_key(every), encode_key(v6), encode_key(misc)]


KEY_SEEDS = _key_seeds()
TUNNEL_SEEDS = [encode_key(FlowKey({KeyAttr.TUNNEL: t}))[4:] for t in (FULL_TUNNEL, V6_TUNNEL)]

DATAPATH_SEEDS = [
    b"".join(
        [
            attr_str(DpAttr.NAME, "ovs-system"),
            attr(DpAttr.STATS, struct.pack("=4Q", 1, 2, 3, 4)),
            attr(DpAttr.MEGAFLOW_STATS, struct.pack("=QI4xQ8x", 5, 6, 7)),
            attr_u32(DpAttr.USER_FEATURES, 0xB),
            attr_u32(DpAttr.MASKS_CACHE_SIZE, 256),
            attr_u32(DpAttr.UPCALL_PID, 99),
            attr(DpAttr.PER_CPU_PIDS, struct.pack("=3I", 1, 2, 3)),
            attr_u32(DpAttr.IFINDEX, 7),
        ]
    )
]

VPORT_SEEDS = [
    b"".join(
        [
            attr_u32(VportAttr.PORT_NO, 3),
            attr_u32(VportAttr.TYPE, 4),
            attr_str(VportAttr.NAME, "vxlan_sys_4789"),
            nested(
                VportAttr.OPTIONS,
                attr_u16(TunnelOptAttr.DST_PORT, 4789),
                nested(TunnelOptAttr.EXTENSION, attr(1, b"")),
            ),
            attr(VportAttr.UPCALL_PID, struct.pack("=2I", 10, 11)),
            attr(VportAttr.STATS, struct.pack("=8Q", *range(8))),
            attr_u32(VportAttr.IFINDEX, 12),
            attr(VportAttr.NETNSID, struct.pack("=i", -1)),
            nested(VportAttr.UPCALL_STATS, attr_u64(0, 100), attr_u64(1, 2)),
        ]
    ),
    # A name that is not UTF-8 and has no NUL.
    attr_u32(VportAttr.PORT_NO, 1)
    + attr_u32(VportAttr.TYPE, 1)
    + attr(VportAttr.NAME, b"\xff\xfe"),
]


def _action_seeds() -> list[bytes]:
    """Actions as raw attributes, so the seeds do not depend on the Action classes."""
    tunnel = encode_key(FlowKey({KeyAttr.TUNNEL: Tunnel(tun_id=5, ipv4_dst=1, ttl=64, df=True)}))
    eth_masked = encode_key(FlowKey({KeyAttr.ETHERNET: Eth(MAC_A, MAC_B)}))[4:]
    return [
        b"".join(
            [
                attr(ActionAttr.SET, tunnel),  # set(tunnel(...))
                attr_u32(ActionAttr.OUTPUT, 2),
            ]
        ),
        b"".join(
            [
                nested(
                    ActionAttr.CT,
                    attr(CtAttr.COMMIT, b""),
                    attr_u16(CtAttr.ZONE, 5),
                    attr(CtAttr.MARK, struct.pack("=II", 1, 0xFFFFFFFF)),
                    attr(CtAttr.LABELS, bytes(32)),
                    attr_str(CtAttr.HELPER, "ftp"),
                    nested(
                        CtAttr.NAT,
                        attr(NatAttr.SRC, b""),
                        attr(NatAttr.IP_MIN, bytes(4)),
                        attr_u16(NatAttr.PROTO_MIN, 1024),
                    ),
                ),
                attr(
                    ActionAttr.SET_MASKED,
                    attr(KeyAttr.ETHERNET, eth_masked + b"\xff" * 12),
                ),
                attr(ActionAttr.PUSH_VLAN, struct.pack("!HH", 0x8100, 0x100A)),
                attr(ActionAttr.POP_VLAN, b""),
                attr_u32(ActionAttr.RECIRC, 7),
                attr(ActionAttr.HASH, struct.pack("=II", 0, 0)),
                nested(
                    ActionAttr.USERSPACE,
                    attr_u32(UserspaceAttr.PID, 1234),
                    attr(UserspaceAttr.USERDATA, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
                    attr_u32(UserspaceAttr.EGRESS_TUN_PORT, 3),
                ),
                nested(
                    ActionAttr.SAMPLE,
                    attr_u32(SampleAttr.PROBABILITY, 0x7FFFFFFF),
                    nested(SampleAttr.ACTIONS, attr_u32(ActionAttr.OUTPUT, 1)),
                ),
                nested(ActionAttr.CLONE, attr_u32(ActionAttr.OUTPUT, 4)),
                attr(ActionAttr.PUSH_MPLS, struct.pack("!IH2x", 0x64140, 0x8847)),
                attr(ActionAttr.POP_MPLS, struct.pack("!H", 0x0800)),
                attr_u32(ActionAttr.TRUNC, 100),
                attr(ActionAttr.CT_CLEAR, b""),
                attr_u32(ActionAttr.METER, 1),
                attr(ActionAttr.DROP, struct.pack("=I", 0)),
                attr(0x70, b"?"),
            ]
        ),
    ]


ACTION_SEEDS = _action_seeds()


def _flow_seeds() -> list[bytes]:
    key, mask = KEY_SEEDS[0], KEY_SEEDS[1]
    return [
        b"".join(
            [
                attr(FlowAttr.UFID, bytes(range(16))),
                attr(FlowAttr.KEY, key),
                attr(FlowAttr.MASK, mask),
                attr(FlowAttr.STATS, struct.pack("=QQ", 10, 1000)),
                attr_u64(FlowAttr.USED, 123456),
                attr_u8(FlowAttr.TCP_FLAGS, 0x12),
                attr(FlowAttr.ACTIONS, ACTION_SEEDS[0]),
            ]
        ),
        attr(FlowAttr.KEY, KEY_SEEDS[2]) + attr(FlowAttr.ACTIONS, ACTION_SEEDS[1]),
    ]


FLOW_SEEDS = _flow_seeds()

UPCALL_SEEDS = [
    b"".join(
        [
            attr(PacketAttr.PACKET, MAC_A + MAC_B + b"\x08\x00" + bytes(46)),
            attr(PacketAttr.KEY, KEY_SEEDS[0]),
            attr(PacketAttr.USERDATA, b"\x01\x00\x00\x00\x02\x00\x00\x00"),
            attr(PacketAttr.EGRESS_TUN_KEY, TUNNEL_SEEDS[0]),
            attr(PacketAttr.ACTIONS, ACTION_SEEDS[0]),
            attr_u16(PacketAttr.MRU, 1500),
            attr_u32(PacketAttr.LEN, 9000),
            attr_u64(PacketAttr.HASH, 0xDEAD),
        ]
    ),
]

ODP_SEEDS = [odp_payload(1, 1, 7, FLOW_SEEDS[0]), odp_payload(3, 2, 0, DATAPATH_SEEDS[0])]
MESSAGE_SEEDS = [
    encode_message(0x1B, 2, 1, 0, ODP_SEEDS[0]) + encode_message(0x1C, 2, 1, 0, ODP_SEEDS[1])
]


# --- the decoders under test ---------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    decode: Callable[[bytes], Any]
    seeds: list[bytes]
    attrs_at: int = 0  # where the netlink attributes start in a seed
    needs_actions: bool = False


def _flow_decoder(data: bytes) -> Any:
    from odpctl.odp.flow import decode_flow_attrs

    return decode_flow_attrs(data)


def _upcall_decoder(data: bytes) -> Any:
    from odpctl.odp.packet import decode_upcall

    # The first byte picks the command, so MISS, ACTION and bogus ones all run.
    cmd = data[0] % 5 if data else 1
    return decode_upcall(cmd, 7, data[1:])


def _actions_decoder(data: bytes) -> Any:
    assert _actions_module is not None
    return _actions_module.decode_actions(data)


def _split_and_decode(data: bytes) -> Any:
    # What a dump loop does: split messages, split the ODP header, decode.
    out = []
    for m in decode_messages(data):
        cmd, ifindex, attrs = split_odp(m.payload)
        out.append((cmd, ifindex, attrs))
    return out


TARGETS = [
    Target("decode_key", decode_key, KEY_SEEDS),
    Target("decode_tunnel", decode_tunnel, TUNNEL_SEEDS),
    Target("decode_datapath", lambda b: decode_datapath(7, b), DATAPATH_SEEDS),
    Target("decode_vport", lambda b: decode_vport(7, b), VPORT_SEEDS),
    Target("split_odp", split_odp, ODP_SEEDS, attrs_at=8),
    Target("decode_messages", _split_and_decode, MESSAGE_SEEDS, attrs_at=24),
    Target("decode_flow_attrs", _flow_decoder, FLOW_SEEDS, needs_actions=True),
    Target(
        "decode_upcall",
        _upcall_decoder,
        [b"\x01" + s for s in UPCALL_SEEDS] + [b"\x02" + s for s in UPCALL_SEEDS],
        attrs_at=1,
        needs_actions=True,
    ),
    Target("decode_actions", _actions_decoder, ACTION_SEEDS, needs_actions=True),
]


def _params() -> list[Any]:
    return [
        pytest.param(t, id=t.name, marks=[needs_actions] if t.needs_actions else [])
        for t in TARGETS
    ]


def run(target: Target, data: bytes) -> None:
    """Decode ``data``; DecodeError is the only acceptable failure."""
    with contextlib.suppress(DecodeError):
        target.decode(data)


# --- mutations -------------------------------------------------------------------


def attr_offsets(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[int]:
    """Offsets of nlattr headers in ``data[start:end]``, descending into any
    payload that itself parses as a run of attributes."""
    end = len(data) if end is None else end
    out: list[int] = []
    off = start
    while off + 4 <= end:
        nla_len = data[off] | data[off + 1] << 8
        if nla_len < 4 or off + nla_len > end:
            break
        out.append(off)
        if depth < 8 and nla_len >= 8:
            inner = attr_offsets(data, off + 4, off + nla_len, depth + 1)
            # Keep the nest only if it parsed to its end (not a coincidence).
            if inner and _parses_fully(data, off + 4, off + nla_len):
                out.extend(inner)
        off += (nla_len + 3) & ~3
    return out


def _parses_fully(data: bytes, start: int, end: int) -> bool:
    off = start
    while off + 4 <= end:
        nla_len = data[off] | data[off + 1] << 8
        if nla_len < 4 or off + nla_len > end:
            return False
        off += (nla_len + 3) & ~3
    return off >= end


def lie(data: bytes, offset: int, new_len: int) -> bytes:
    buf = bytearray(data)
    buf[offset : offset + 2] = (new_len & 0xFFFF).to_bytes(2, "little")
    return bytes(buf)


def lies_for(data: bytes, offset: int) -> list[int]:
    """Lengths worth lying with for the attribute at ``offset``."""
    real = data[offset] | data[offset + 1] << 8
    room = len(data) - offset
    return sorted({0, 1, 2, 3, 4, 5, real - 1, real + 1, real + 4, room, room + 1, 0xFFFF} - {real})


def mutate(rng: random.Random, seed: bytes, attrs_at: int) -> bytes:
    data = seed
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.randrange(8)
        if not data:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(16)))
        if kind == 0:  # truncate
            data = data[: rng.randrange(len(data))]
        elif kind == 1:  # flip bits in a few bytes
            buf = bytearray(data)
            for _ in range(rng.randrange(1, 5)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            data = bytes(buf)
        elif kind == 2:  # overwrite a byte with a boundary value
            buf = bytearray(data)
            buf[rng.randrange(len(buf))] = rng.choice((0, 1, 3, 4, 0x7F, 0x80, 0xFF))
            data = bytes(buf)
        elif kind in (3, 4):  # an attribute length lies
            offsets = attr_offsets(data, attrs_at)
            if offsets:
                off = rng.choice(offsets)
                data = lie(data, off, rng.choice(lies_for(data, off)))
        elif kind == 5:  # an attribute type changes (maybe to a nested-flagged one)
            offsets = attr_offsets(data, attrs_at)
            if offsets:
                off = rng.choice(offsets)
                buf = bytearray(data)
                new_type = rng.choice((0, 1, rng.randrange(40), rng.randrange(0x10000)))
                buf[off + 2 : off + 4] = new_type.to_bytes(2, "little")
                data = bytes(buf)
        elif kind == 6:  # duplicate or drop a span
            a = rng.randrange(len(data))
            b = rng.randrange(a, len(data) + 1)
            data = data[:b] + data[a:b] + data[b:] if rng.random() < 0.5 else data[:a] + data[b:]
        else:  # splice in random bytes
            at = rng.randrange(len(data) + 1)
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
            data = data[:at] + junk + data[at:]
    return data


# --- hypothesis ------------------------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(target: Target, data: bytes) -> None:
    run(target, data)


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(data=st.data())
def test_random_attribute_runs(target: Target, data: st.DataObject) -> None:
    """Well-framed attributes of random types and payloads: gets past the framing."""
    attrs = data.draw(
        st.lists(
            st.tuples(
                st.one_of(st.integers(0, 40), st.integers(0, 0xFFFF)),
                st.one_of(
                    st.binary(max_size=48),
                    st.sampled_from(KEY_SEEDS + TUNNEL_SEEDS + ACTION_SEEDS),
                ),
            ),
            max_size=8,
        )
    )
    body = b"".join(attr(t & 0x3FFF | t & 0xC000, p) for t, p in attrs)
    run(target, bytes(target.seeds[0][: target.attrs_at]) + body)


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(data=st.data())
def test_truncated(target: Target, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(target.seeds))
    cut = data.draw(st.integers(0, len(seed)))
    run(target, seed[:cut])


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(data=st.data())
def test_flipped(target: Target, data: st.DataObject) -> None:
    seed = bytearray(data.draw(st.sampled_from(target.seeds)))
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(seed) - 1), st.integers(1, 255)), min_size=1, max_size=6
        )
    )
    for pos, x in flips:
        seed[pos] ^= x
    run(target, bytes(seed))


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(data=st.data())
def test_lying_lengths(target: Target, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(target.seeds))
    offsets = attr_offsets(seed, target.attrs_at)
    assert offsets, "seed has no attributes to lie about"
    off = data.draw(st.sampled_from(offsets))
    new_len = data.draw(st.one_of(st.sampled_from(lies_for(seed, off)), st.integers(0, 0xFFFF)))
    run(target, lie(seed, off, new_len))


@pytest.mark.parametrize("target", _params())
@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_mutated(target: Target, rnd: random.Random) -> None:
    seed = rnd.choice(target.seeds)
    run(target, mutate(rnd, seed, target.attrs_at))


# --- the deterministic corpus ---------------------------------------------------

CORPUS_SIZE = 3000


@pytest.mark.parametrize("target", _params())
def test_mutation_corpus(target: Target) -> None:
    """Thousands of seeded mutations per decoder: the same corpus on every run."""
    rng = random.Random(f"odpctl-fuzz-{target.name}")
    cases: list[bytes] = []
    for seed in target.seeds:
        cases.append(seed)
        # Every truncation, and every lie at every attribute header.
        cases.extend(seed[:cut] for cut in range(len(seed)))
        for off in attr_offsets(seed, target.attrs_at):
            cases.extend(lie(seed, off, n) for n in lies_for(seed, off))
    while len(cases) < CORPUS_SIZE + len(target.seeds):
        cases.append(mutate(rng, rng.choice(target.seeds), target.attrs_at))
    for _ in range(200):
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    decoded = 0
    for i, case in enumerate(cases):
        try:
            target.decode(case)
            decoded += 1
        except DecodeError:
            pass
        except Exception as exc:  # the point of the test
            pytest.fail(
                f"{target.name} leaked {type(exc).__name__}: {exc} on case {i}: {case.hex()}"
            )
    # The seeds themselves must decode: a corpus of all-errors proves nothing.
    for seed in target.seeds:
        target.decode(seed)
    assert decoded >= len(target.seeds)


# --- specific hostile inputs ------------------------------------------------------


def test_deep_encap_nesting_is_a_decode_error() -> None:
    # 64 KiB holds thousands of nested encap() headers: must not blow the stack.
    data = b""
    for _ in range(5000):
        data = struct.pack("=HH", len(data) + 4, KeyAttr.ENCAP) + data
        if len(data) > 0xFFF0:
            break
    with pytest.raises(DecodeError):
        decode_key(data)


def test_encap_nesting_limit() -> None:
    key: FlowKey = FlowKey({KeyAttr.ETHERTYPE: 0x0800})
    for _ in range(MAX_ENCAP_DEPTH):
        key = FlowKey({KeyAttr.ETHERTYPE: 0x8100, KeyAttr.ENCAP: key})
    assert decode_key(encode_key(key)) == key
    too_deep = FlowKey({KeyAttr.ENCAP: key})
    with pytest.raises(DecodeError):
        decode_key(encode_key(too_deep))


@pytest.mark.parametrize(
    "data",
    [
        attr(TunnelKeyAttr.VXLAN_OPTS, attr(1, b"\x01")),  # GBP of one byte
        attr(TunnelKeyAttr.VXLAN_OPTS, b"\x08\x00"),  # nest cut inside a header
        attr(TunnelKeyAttr.IPV6_SRC, bytes(15)),
        attr(TunnelKeyAttr.ID, bytes(4)),
        attr(TunnelKeyAttr.TTL, b""),
        attr(TunnelKeyAttr.TP_DST, bytes(4)),
    ],
)
def test_tunnel_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_tunnel(data)


@pytest.mark.parametrize(
    "attr_type",
    sorted(set(KeyAttr) - {KeyAttr.ENCAP, KeyAttr.TUNNEL, KeyAttr.NSH, KeyAttr.TUNNEL_INFO}),
)
@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 7, 9, 13, 17, 33, 39, 41, 64])
def test_every_fixed_attribute_rejects_wrong_sizes(attr_type: int, size: int) -> None:
    """A fixed-size attribute of any other size is a DecodeError, never a guess."""
    encoded = encode_key(FlowKey({attr_type: _sample(attr_type)}))
    right = int.from_bytes(encoded[:2], "little") - 4  # nla_len less the header
    ok = size > 0 and size % 4 == 0 if attr_type == KeyAttr.MPLS else size == right
    data = attr(attr_type, bytes(range(size)))
    if ok:
        decode_key(data)
    else:
        with pytest.raises(DecodeError):
            decode_key(data)


def _sample(attr_type: int) -> Any:
    samples: dict[int, Any] = {
        KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
        KeyAttr.IPV4: Ipv4(1, 2, 3, 4, 5, 0),
        KeyAttr.IPV6: Ipv6(V6_A, V6_B, 1, 2, 3, 4, 0),
        KeyAttr.TCP: Ports(1, 2),
        KeyAttr.UDP: Ports(1, 2),
        KeyAttr.SCTP: Ports(1, 2),
        KeyAttr.ICMP: Icmp(1, 2),
        KeyAttr.ICMPV6: Icmp(1, 2),
        KeyAttr.ARP: Arp(1, 2, 3, MAC_A, MAC_B),
        KeyAttr.ND: Nd(V6_A, MAC_A, MAC_B),
        KeyAttr.MPLS: (1,),
        KeyAttr.CT_LABELS: bytes(16),
        KeyAttr.CT_ORIG_TUPLE_IPV4: CtTupleIpv4(1, 2, 3, 4, 5),
        KeyAttr.CT_ORIG_TUPLE_IPV6: CtTupleIpv6(V6_A, V6_B, 3, 4, 5),
        KeyAttr.ND_EXTENSIONS: NdExtensions(1, 2),
    }
    return samples.get(attr_type, 1)


# --- decode(encode(decode(x))) == decode(x) for whatever decodes -----------------


@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_key_redecode_is_stable(rnd: random.Random) -> None:
    """Whatever decode_key accepts, encode_key writes back and decodes the same."""
    data = mutate(rnd, rnd.choice(KEY_SEEDS), 0)
    try:
        key = decode_key(data)
    except DecodeError:
        return
    assert decode_key(encode_key(key)) == key


@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_tunnel_redecode_is_stable(rnd: random.Random) -> None:
    data = mutate(rnd, rnd.choice(TUNNEL_SEEDS), 0)
    try:
        tunnel = decode_tunnel(data)
    except DecodeError:
        return
    again = encode_key(FlowKey({KeyAttr.TUNNEL: tunnel}))[4:]
    assert decode_tunnel(again) == tunnel

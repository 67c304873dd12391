"""The wire format: framing, messages, and decoders fed hostile bytes.

Only the mesh's own errors may leave a decoder: a peer that sends garbage
loses its connection, never the router its life.
"""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odpctl.mesh.errors import FrameTooLarge, MalformedMessage, MeshError
from odpctl.mesh.names import PeerName, PeerUID, ShortID
from odpctl.mesh.peer import Peer
from odpctl.mesh.topology import DELTA, DIGEST, REQUEST, UPDATE, Topology, decode_payload
from odpctl.mesh.wire import (
    GREETING,
    MAGIC,
    Broadcast,
    Bye,
    Confirm,
    FrameDecoder,
    Gossip,
    Heartbeat,
    Hello,
    Message,
    OverlayControl,
    Refuse,
    Unicast,
    decode_message,
    encode_frame,
    encode_greeting,
    encode_message,
    negotiate_version,
    parse_greeting,
)

MESSAGES: list[Message] = [
    Hello(
        PeerName(0x024A01020304),
        "host1",
        PeerUID(7),
        ShortID(4095),
        1 << 63,
        6783,
        5000,
        {"overlay": "fastdp,sleeve"},
        b"k" * 32,
    ),
    Hello(PeerName(1), "", PeerUID(1), ShortID(0), 0, 0),
    Refuse("password mismatch"),
    Confirm(),
    Heartbeat(),
    Bye("shutting down"),
    Gossip("topology", PeerName(5), b"\x00\x01"),
    Broadcast("router", PeerName(6), b""),
    Unicast("ipam", PeerName(7), PeerName(8), b"x" * 1000),
    OverlayControl(3, b"ping"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


def test_frames_split_anywhere() -> None:
    stream = b"".join(encode_frame(encode_message(m)) for m in MESSAGES)
    for step in (1, 2, 3, 7, 64, len(stream)):
        decoder = FrameDecoder()
        got = []
        for i in range(0, len(stream), step):
            got += [decode_message(f) for f in decoder.feed(stream[i : i + step])]
        assert got == MESSAGES
        assert decoder.buffered == 0


def test_oversized_frame_refused_before_its_bytes_arrive() -> None:
    decoder = FrameDecoder(max_size=1000)
    with pytest.raises(FrameTooLarge, match="exceeds the limit of 1000"):
        decoder.feed(b"\x7f\xff\xff\xff")  # 2 GiB announced, 4 bytes sent


def test_empty_frame_refused() -> None:
    with pytest.raises(MalformedMessage):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "obj",
    [
        [],
        [99],
        ["1"],
        [2],  # REFUSE without a reason
        [2, 5],
        [1, {"name": 1}],  # HELLO missing fields
        [1, {"name": 1 << 48, "nick": "", "uid": 1, "short_id": 0, "conn_id": 0, "port": 0}],
        [1, {"name": 1, "nick": "", "uid": 0, "short_id": 0, "conn_id": 0, "port": 0}],
        [1, {"name": 1, "nick": "", "uid": 1, "short_id": 4096, "conn_id": 0, "port": 0}],
        [
            1,
            {
                "name": 1,
                "nick": "",
                "uid": 1,
                "short_id": 0,
                "conn_id": 0,
                "port": 0,
                "pubkey": b"short",
            },
        ],
        [
            1,
            {
                "name": 1,
                "nick": "",
                "uid": 1,
                "short_id": 0,
                "conn_id": 0,
                "port": 0,
                "features": {"a": 1},
            },
        ],
        [1, {"name": True, "nick": "", "uid": 1, "short_id": 0, "conn_id": 0, "port": 0}],
        [6, "x" * 65, 1, b""],  # channel name too long
        [6, "c", 1, "not bytes"],
        [8, "c", 1, -1, b""],
        [9, 256, b""],
        {"a": 1},
        "text",
    ],
)
def test_invalid_messages(obj: object) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(msgpack.packb(obj))


def test_unpack_limits_and_junk() -> None:
    for junk in (b"\xc1", b"\x92\x01", b"\x91\x04\x00", b"\xdd\xff\xff\xff\xff", b"\xd4\x01\x02"):
        with pytest.raises(MalformedMessage):
            decode_message(junk)


def test_greeting_and_version_negotiation() -> None:
    assert parse_greeting(encode_greeting(1, 3)) == (1, 3)
    assert len(encode_greeting(1, 1)) == GREETING.size
    with pytest.raises(MalformedMessage, match="not an odpctl mesh peer"):
        parse_greeting(b"weave\x01\x02xyz")
    with pytest.raises(MalformedMessage):
        parse_greeting(MAGIC + bytes([3, 1]))
    assert negotiate_version((1, 2), (2, 5)) == 2
    assert negotiate_version((1, 3), (1, 2)) == 2
    assert negotiate_version((1, 1), (2, 3)) is None


# --- hostile bytes ------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(16, 4096))
def test_frame_decoder_hostile_bytes(chunks: list[bytes], limit: int) -> None:
    decoder = FrameDecoder(max_size=limit)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert 0 < len(frame) <= limit
                with contextlib.suppress(MalformedMessage):
                    decode_message(frame)
    except MeshError:
        pass


@FUZZ
@given(st.binary(max_size=512))
def test_message_decoder_hostile_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        decode_message(data)


@FUZZ
@given(st.binary(max_size=512))
def test_topology_decoder_hostile_bytes(data: bytes) -> None:
    _decode_and_apply(data)


# Well-formed msgpack with hostile structure: the checks, not the parser, must catch it.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=30,
)
tags = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, -1, 2**40])
kinds = st.sampled_from([UPDATE, DIGEST, REQUEST, DELTA, 7])


def _pack(obj: object) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (OverflowError, TypeError, ValueError):
        return b"\xc0"


@FUZZ
@given(tags, st.lists(values, max_size=5))
def test_message_decoder_hostile_structure(tag: int, fields: list[object]) -> None:
    try:
        msg = decode_message(_pack([tag, *fields]))
    except MalformedMessage:
        return
    assert decode_message(encode_message(msg)) == msg


@FUZZ
@given(kinds, st.lists(values, max_size=4), values)
def test_topology_decoder_hostile_structure(kind: int, entry: list[object], extra: object) -> None:
    payloads = [
        _pack([kind, [entry]]),
        _pack([kind, entry]),
        _pack([kind, *entry, extra]),
        _pack([UPDATE, [[1, "n", 1, 1, 5, entry]]]),
        _pack([DELTA, 1, 1, 1, 2, "n", 3, entry, [extra]]),
    ]
    for payload in payloads:
        _decode_and_apply(payload)


def _decode_and_apply(payload: bytes) -> None:
    """Decode a topology payload and apply it as a peer would; only MalformedMessage may escape."""
    topology = Topology(Peer(PeerName(12345), "me", PeerUID(1), 1, ShortID(1)))
    try:
        kind, content = decode_payload(payload)
        if kind == UPDATE:
            topology.apply_update(content)
        elif kind == DELTA:
            topology.apply_delta(content)
        elif kind == DIGEST:
            topology.compare_digest(content)
    except MalformedMessage:
        pass

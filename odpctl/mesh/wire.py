"""The mesh's wire format: a greeting, then length-prefixed msgpack frames.

A TCP connection starts with an 10-byte greeting from each side::

    b"ODPMESH\\0"  min_version:u8  max_version:u8

and continues with frames::

    length:u32 (big endian)  payload[length]

The payload is one message, a msgpack array ``[tag, field, ...]``; once a
connection is encrypted, the payload is that array sealed (crypto.py).  The
greeting, the frame header and the HELLO and REFUSE messages are the same in
every protocol version, so that two versions can always tell each other why
they don't get along; everything after the HELLOs may change with the
negotiated version.

Every length is bounded before anything is allocated, and decoding checks
each field's type and range: a peer that sends anything else gets a
`ProtocolViolation` (only mesh errors leave this module's decoders), and its
connection is dropped with that reason.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import msgpack

from .errors import FrameTooLarge, MalformedMessage
from .names import NAME_MAX, SHORT_ID_COUNT, UID_MAX, PeerName, PeerUID, ShortID

MAGIC = b"ODPMESH\0"
GREETING = struct.Struct("!8sBB")
HEADER = struct.Struct("!I")

# The protocol versions this code speaks.
PROTOCOL_MIN = 1
PROTOCOL_MAX = 1

# Bounds.  A handshake frame is small and comes from a stranger: keep it tight.
MAX_HANDSHAKE_FRAME = 16 * 1024
# After the handshake: big enough for the full topology of a few thousand
# peers (about 30 bytes per connection), small enough not to hurt if hostile.
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
MAX_CHANNEL_NAME = 64
MAX_NICKNAME = 255
MAX_REASON = 1024
MAX_FEATURES = 64
MAX_FEATURE_KEY = 64
MAX_FEATURE_VALUE = 1024

# Message tags.
HELLO = 1
REFUSE = 2
CONFIRM = 3
HEARTBEAT = 4
BYE = 5
GOSSIP = 6
BROADCAST = 7
UNICAST = 8
OVERLAY = 9


# --- greeting -----------------------------------------------------------------


def encode_greeting(min_version: int, max_version: int) -> bytes:
    return GREETING.pack(MAGIC, min_version, max_version)


def parse_greeting(data: bytes) -> tuple[int, int]:
    """(min, max) protocol version of a peer's greeting."""
    if len(data) != GREETING.size:
        raise MalformedMessage(f"short greeting ({len(data)} bytes of {GREETING.size})")
    magic, lo, hi = GREETING.unpack(data)
    if magic != MAGIC:
        raise MalformedMessage(f"not an odpctl mesh peer (greeting {data[:8]!r})")
    if lo > hi:
        raise MalformedMessage(f"invalid protocol version range {lo}..{hi}")
    return lo, hi


def negotiate_version(ours: tuple[int, int], theirs: tuple[int, int]) -> int | None:
    """The highest version both ends speak, or None if there is none."""
    lo = max(ours[0], theirs[0])
    hi = min(ours[1], theirs[1])
    return hi if lo <= hi else None


# --- frames -------------------------------------------------------------------


def encode_frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Cuts a byte stream into frame payloads; sans-IO, so that it can be fuzzed.

    ``max_size`` may change between calls (it grows after the handshake);
    a length prefix above it raises `FrameTooLarge` before any byte of the
    frame is buffered, and a zero length raises `MalformedMessage` (no
    message is empty).  After an error the decoder is unusable, as is the
    connection that fed it.
    """

    __slots__ = ("_buf", "_pos", "max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of the first unconsumed byte
        self.max_size = max_size

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def append(self, data: bytes) -> None:
        if self._pos:
            # Compact lazily: one memmove per read, not one per frame.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def pop(self) -> bytes | None:
        """The next complete frame's payload, or None until more data comes."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 4:
            return None
        (length,) = HEADER.unpack_from(buf, pos)
        if length > self.max_size:
            raise FrameTooLarge(f"frame of {length} bytes exceeds the limit of {self.max_size}")
        if length == 0:
            raise MalformedMessage("empty frame")
        if len(buf) - pos - 4 < length:
            return None
        self._pos = pos + 4 + length
        return bytes(buf[pos + 4 : self._pos])

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; the payloads of all the frames now complete."""
        self.append(data)
        frames = []
        while (frame := self.pop()) is not None:
            frames.append(frame)
        return frames


# --- msgpack with checks -----------------------------------------------------


def pack(obj: Any) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def unpack(data: bytes, what: str = "message") -> Any:
    """msgpack -> Python objects, any failure as `MalformedMessage`."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            # Nothing in a message may claim more elements than it has bytes:
            # bounds the work a hostile frame can ask for.
            max_array_len=len(data),
            max_map_len=len(data),
            max_str_len=len(data),
            max_bin_len=len(data),
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        # ValueError covers ExtraData, FormatError, StackError and bad UTF-8.
        raise MalformedMessage(f"undecodable {what}: {exc}") from None


def check_int(value: Any, what: str, lo: int = 0, hi: int = UID_MAX) -> int:
    # bool is an int to Python, never to us.
    if type(value) is not int or not lo <= value <= hi:
        raise MalformedMessage(f"invalid {what}: {value!r:.40}")
    return value


def check_str(value: Any, what: str, max_len: int) -> str:
    if type(value) is not str or len(value) > max_len:
        raise MalformedMessage(f"invalid {what}: {value!r:.40}")
    return value


def check_bytes(value: Any, what: str, max_len: int | None = None) -> bytes:
    if type(value) is not bytes or (max_len is not None and len(value) > max_len):
        raise MalformedMessage(f"invalid {what}: {value!r:.40}")
    return value


def check_bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise MalformedMessage(f"invalid {what}: {value!r:.40}")
    return value


def check_list(value: Any, what: str, max_len: int | None = None) -> list[Any]:
    if type(value) is not list or (max_len is not None and len(value) > max_len):
        raise MalformedMessage(f"invalid {what}: {value!r:.40}")
    return value


def check_name(value: Any, what: str = "peer name") -> PeerName:
    return PeerName(check_int(value, what, 0, NAME_MAX))


# --- messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Who a peer is, and what it speaks; the first frame each side sends."""

    name: PeerName
    nickname: str
    uid: PeerUID
    short_id: ShortID
    conn_id: int  # random per connection: the duplicate-connection tie-break
    listen_port: int  # where the peer accepts connections (0: it does not)
    # The sender's heartbeat interval: the receiver waits for 3 of them
    # before calling the connection dead (0: unknown, use our own).
    heartbeat_ms: int = 0
    features: dict[str, str] = field(default_factory=dict)
    public_key: bytes | None = None  # ephemeral X25519 key, if a password is set

    def fields(self) -> list[Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "nick": self.nickname,
            "uid": self.uid,
            "short_id": self.short_id,
            "conn_id": self.conn_id,
            "port": self.listen_port,
            "heartbeat": self.heartbeat_ms,
            "features": self.features,
        }
        if self.public_key is not None:
            body["pubkey"] = self.public_key
        # A map, not positions: HELLO never changes shape, but may grow keys.
        return [body]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Hello:
        _arity(fields, 1, "HELLO")
        body = fields[0]
        if type(body) is not dict:
            raise MalformedMessage("invalid HELLO: not a map")
        features = body.get("features", {})
        if type(features) is not dict or len(features) > MAX_FEATURES:
            raise MalformedMessage("invalid HELLO features")
        for key, value in features.items():
            check_str(key, "feature name", MAX_FEATURE_KEY)
            check_str(value, f"feature {key}", MAX_FEATURE_VALUE)
        pubkey = body.get("pubkey")
        return cls(
            name=check_name(body.get("name")),
            nickname=check_str(body.get("nick"), "nickname", MAX_NICKNAME),
            uid=PeerUID(check_int(body.get("uid"), "peer UID", 1, UID_MAX)),
            short_id=ShortID(check_int(body.get("short_id"), "short ID", 0, SHORT_ID_COUNT - 1)),
            conn_id=check_int(body.get("conn_id"), "connection ID"),
            listen_port=check_int(body.get("port"), "listen port", 0, 65535),
            heartbeat_ms=check_int(body.get("heartbeat", 0), "heartbeat", 0, 3_600_000),
            features=dict(features),
            public_key=None if pubkey is None else _public_key(pubkey),
        )


def _public_key(value: Any) -> bytes:
    key = check_bytes(value, "public key")
    if len(key) != 32:
        raise MalformedMessage(f"invalid public key: {len(key)} bytes")
    return key


@dataclass(frozen=True, slots=True)
class Refuse:
    """The handshake is over, and why (sent in clear: the other end may not share our key)."""

    reason: str

    def fields(self) -> list[Any]:
        return [self.reason[:MAX_REASON]]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Refuse:
        _arity(fields, 1, "REFUSE")
        return cls(check_str(fields[0], "reason", MAX_REASON))


@dataclass(frozen=True, slots=True)
class Confirm:
    """Key confirmation: sealed, it proves the sender derived the same keys."""

    def fields(self) -> list[Any]:
        return []

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Confirm:
        _arity(fields, 0, "CONFIRM")
        return cls()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    def fields(self) -> list[Any]:
        return []

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Heartbeat:
        _arity(fields, 0, "HEARTBEAT")
        return cls()


@dataclass(frozen=True, slots=True)
class Bye:
    """An established connection is being closed on purpose, and why."""

    reason: str

    def fields(self) -> list[Any]:
        return [self.reason[:MAX_REASON]]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Bye:
        _arity(fields, 1, "BYE")
        return cls(check_str(fields[0], "reason", MAX_REASON))


@dataclass(frozen=True, slots=True)
class Gossip:
    """Gossip for the neighbour that receives it; ``src`` is the sender."""

    channel: str
    src: PeerName
    payload: bytes

    def fields(self) -> list[Any]:
        return [self.channel, self.src, self.payload]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Gossip:
        _arity(fields, 3, "GOSSIP")
        return cls(_channel(fields[0]), check_name(fields[1]), check_bytes(fields[2], "payload"))


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Gossip for everyone, relayed along ``src``'s broadcast tree."""

    channel: str
    src: PeerName
    payload: bytes

    def fields(self) -> list[Any]:
        return [self.channel, self.src, self.payload]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Broadcast:
        _arity(fields, 3, "BROADCAST")
        return cls(_channel(fields[0]), check_name(fields[1]), check_bytes(fields[2], "payload"))


@dataclass(frozen=True, slots=True)
class Unicast:
    """Gossip from ``src`` for ``dst`` alone, relayed along unicast routes."""

    channel: str
    src: PeerName
    dst: PeerName
    payload: bytes

    def fields(self) -> list[Any]:
        return [self.channel, self.src, self.dst, self.payload]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Unicast:
        _arity(fields, 4, "UNICAST")
        return cls(
            _channel(fields[0]),
            check_name(fields[1]),
            check_name(fields[2]),
            check_bytes(fields[3], "payload"),
        )


@dataclass(frozen=True, slots=True)
class OverlayControl:
    """A message between the two ends' overlays (the router's business)."""

    tag: int
    payload: bytes

    def fields(self) -> list[Any]:
        return [self.tag, self.payload]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> OverlayControl:
        _arity(fields, 2, "OVERLAY")
        return cls(check_int(fields[0], "overlay tag", 0, 255), check_bytes(fields[1], "payload"))


Message: TypeAlias = (
    Hello | Refuse | Confirm | Heartbeat | Bye | Gossip | Broadcast | Unicast | OverlayControl
)

_TAGS: dict[type[Any], int] = {
    Hello: HELLO,
    Refuse: REFUSE,
    Confirm: CONFIRM,
    Heartbeat: HEARTBEAT,
    Bye: BYE,
    Gossip: GOSSIP,
    Broadcast: BROADCAST,
    Unicast: UNICAST,
    OverlayControl: OVERLAY,
}
_DECODERS: dict[int, Callable[[list[Any]], Message]] = {
    HELLO: Hello.from_fields,
    REFUSE: Refuse.from_fields,
    CONFIRM: Confirm.from_fields,
    HEARTBEAT: Heartbeat.from_fields,
    BYE: Bye.from_fields,
    GOSSIP: Gossip.from_fields,
    BROADCAST: Broadcast.from_fields,
    UNICAST: Unicast.from_fields,
    OVERLAY: OverlayControl.from_fields,
}


def _arity(fields: list[Any], n: int, what: str) -> None:
    # More fields than we know are fine: a later version may append some.
    if len(fields) < n:
        raise MalformedMessage(f"invalid {what}: {len(fields)} fields, expected {n}")


def _channel(value: Any) -> str:
    return check_str(value, "channel name", MAX_CHANNEL_NAME)


def encode_message(msg: Message) -> bytes:
    return pack([_TAGS[type(msg)], *msg.fields()])


def decode_message(data: bytes) -> Message:
    """A frame's (opened) payload -> a message; `MalformedMessage` if it is none."""
    obj = unpack(data)
    if type(obj) is not list or not obj:
        raise MalformedMessage("invalid message: not a non-empty array")
    tag = obj[0]
    decoder = _DECODERS.get(tag) if type(tag) is int else None
    if decoder is None:
        raise MalformedMessage(f"unknown message tag {tag!r:.20}")
    return decoder(obj[1:])

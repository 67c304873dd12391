"""The connection handshake: greeting, HELLOs, keys, confirmation.

Both ends run the same steps at once (neither waits for the other to speak
first, which saves round trips and rules out deadlocks):

1. greeting: magic and version range; the highest common version wins, or
   the connection is refused ("no common protocol version");
2. HELLO: name, nickname, UID, short ID, a random connection ID, the
   listening port, features, and with a password an ephemeral public key;
   a password on one end only is refused ("password mismatch");
3. vetting: the caller checks the remote peer (ourselves? a name collision?
   a duplicate? the connection limit?);
4. CONFIRM, sealed with the session keys when there is a password: an end
   that used another password cannot open it, so both ends refuse with the
   same reason ("password mismatch: the peers' passwords differ").

A refusal is sent as a clear-text REFUSE before closing, so that the other
end can log and show why, whatever its keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from .crypto import EphemeralKey, Opener, Sealer, session_keys
from .errors import AuthenticationFailed, ConnectionClosed, HandshakeRefused, MeshError
from .wire import (
    GREETING,
    MAX_HANDSHAKE_FRAME,
    Confirm,
    FrameDecoder,
    Hello,
    Message,
    Refuse,
    decode_message,
    encode_frame,
    encode_greeting,
    encode_message,
    negotiate_version,
    parse_greeting,
)

PASSWORD_MISMATCH = "password mismatch"  # noqa: S105 - a refusal reason, not a password

# Returns a reason to refuse the remote peer, or None to go on.
Vetter = Callable[[Hello], str | None]


@dataclass(frozen=True, slots=True)
class HandshakeConfig:
    min_version: int
    max_version: int
    password_key: bytes | None  # crypto.password_key(password), or None: no encryption


@dataclass(slots=True)
class HandshakeResult:
    version: int
    remote: Hello
    decoder: FrameDecoder  # holds whatever the peer sent after its CONFIRM
    sealer: Sealer | None
    opener: Opener | None
    overlay_key: bytes | None  # a per-connection key for the overlay, when encrypted
    bytes_sent: int
    bytes_received: int


async def handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    hello: Hello,
    config: HandshakeConfig,
    *,
    outbound: bool,
    vet: Vetter | None = None,
) -> HandshakeResult:
    """Run the handshake; raise `HandshakeRefused` (and log nothing: the caller does)."""
    stats = [0, 0]  # bytes sent, received

    def send(data: bytes) -> None:
        stats[0] += len(data)
        writer.write(data)

    async def refuse(reason: str, *, permanent: bool = False) -> HandshakeRefused:
        send(encode_frame(encode_message(Refuse(reason))))
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            # Best effort: the peer may be gone already.
            await asyncio.wait_for(writer.drain(), 1.0)
        return HandshakeRefused(reason, permanent=permanent)

    # 1. Greetings.
    ours = (config.min_version, config.max_version)
    our_greeting = encode_greeting(*ours)
    send(our_greeting)
    try:
        their_greeting = await reader.readexactly(GREETING.size)
    except asyncio.IncompleteReadError as exc:
        raise ConnectionClosed(
            "connection closed during the handshake"
            + (f" (after {len(exc.partial)} bytes)" if exc.partial else "")
        ) from None
    stats[1] += len(their_greeting)
    try:
        theirs = parse_greeting(their_greeting)
    except MeshError as exc:
        raise HandshakeRefused(exc.message) from None
    version = negotiate_version(ours, theirs)
    if version is None:
        raise await refuse(
            f"no common protocol version (this peer speaks {ours[0]}..{ours[1]}, "
            f"the other {theirs[0]}..{theirs[1]})"
        )

    # 2. HELLOs.
    key = EphemeralKey() if config.password_key is not None else None
    if key is not None:
        hello = replace(hello, public_key=key.public)
    our_hello = encode_message(hello)
    send(encode_frame(our_hello))
    decoder = FrameDecoder(MAX_HANDSHAKE_FRAME)
    their_hello = await _read_frame(reader, decoder, stats)
    remote = decode_message(their_hello)
    if isinstance(remote, Refuse):
        raise HandshakeRefused(remote.reason, by_remote=True)
    if not isinstance(remote, Hello):
        raise await refuse(f"protocol error: expected HELLO, got {type(remote).__name__.upper()}")
    if key is not None and remote.public_key is None:
        raise await refuse(
            f"{PASSWORD_MISMATCH}: this peer requires a password, the other has none"
        )
    if key is None and remote.public_key is not None:
        raise await refuse(
            f"{PASSWORD_MISMATCH}: the other peer requires a password, this one has none"
        )

    # 3. Vetting.
    if vet is not None and (reason := vet(remote)) is not None:
        raise await refuse(reason, permanent=_is_permanent(reason))

    # 4. Keys and confirmation.
    sealer = opener = None
    overlay_key = None
    if key is not None:
        assert config.password_key is not None and remote.public_key is not None
        # The transcript in one order at both ends: the initiator's part first.
        mine, theirs_ = (our_greeting + our_hello), (their_greeting + their_hello)
        transcript = mine + theirs_ if outbound else theirs_ + mine
        keys = session_keys(
            key, remote.public_key, config.password_key, transcript, initiator=outbound
        )
        sealer, opener = Sealer(keys.send), Opener(keys.receive)
        overlay_key = keys.overlay
    confirm = encode_message(Confirm())
    send(encode_frame(sealer.seal(confirm) if sealer else confirm))
    reply = await _read_frame(reader, decoder, stats)
    answer: Message
    if opener is not None:
        try:
            answer = decode_message(opener.open(reply))
        except AuthenticationFailed:
            # Not sealed with our key: a clear-text REFUSE, or another password.
            refusal = _clear_refusal(reply)
            if refusal is None:
                raise await refuse(f"{PASSWORD_MISMATCH}: the peers' passwords differ") from None
            answer = refusal
    else:
        answer = decode_message(reply)
    if isinstance(answer, Refuse):
        raise HandshakeRefused(
            answer.reason, by_remote=True, permanent=_is_permanent(answer.reason)
        )
    if not isinstance(answer, Confirm):
        raise await refuse(f"protocol error: expected CONFIRM, got {type(answer).__name__.upper()}")
    return HandshakeResult(
        version=version,
        remote=remote,
        decoder=decoder,
        sealer=sealer,
        opener=opener,
        overlay_key=overlay_key,
        bytes_sent=stats[0],
        bytes_received=stats[1],
    )


# Refusals that no retry cures; the wording is the contract between the two ends.
CONNECT_TO_SELF = "connection to ourself"
NAME_COLLISION = "peer name collision"


def _is_permanent(reason: str) -> bool:
    return reason.startswith((CONNECT_TO_SELF, NAME_COLLISION))


def _clear_refusal(payload: bytes) -> Refuse | None:
    try:
        msg = decode_message(payload)
    except MeshError:
        return None
    return msg if isinstance(msg, Refuse) else None


async def _read_frame(
    reader: asyncio.StreamReader, decoder: FrameDecoder, stats: list[int]
) -> bytes:
    while (frame := decoder.pop()) is None:
        data = await reader.read(4096)
        if not data:
            raise ConnectionClosed("connection closed during the handshake")
        stats[1] += len(data)
        decoder.append(data)
    return frame

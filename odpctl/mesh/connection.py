"""One TCP connection to a peer: handshake, sealed frames, heartbeats, gossip queues.

A `Connection` runs as one task that reads; writes are synchronous (into the
transport's buffer) except gossip, which waits in per-channel slots where
new data merges with data not yet sent, and goes out from a writer task as
fast as the peer reads.  Everything the peer sends is decoded by the mesh's
own codec; anything malformed, oversized or unauthenticated closes the
connection with the reason logged (the node carries on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .crypto import Opener, Sealer
from .errors import ConnectionClosed, HandshakeRefused, MeshError, ProtocolViolation
from .gossip import GossipData
from .handshake import HandshakeConfig, handshake
from .names import PeerName, format_peer_name
from .overlay import OverlayConnection
from .wire import (
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
    decode_message,
    encode_frame,
    encode_message,
)

log = logging.getLogger("odpctl.mesh")


class ConnState(StrEnum):
    CONNECTING = "connecting"  # TCP connect under way (targets only)
    HANDSHAKE = "handshake"
    CONNECTED = "connected"  # the mesh talks; the overlay's data path is not up (yet)
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    heartbeat_interval: float
    heartbeat_timeout: float
    handshake_timeout: float
    max_frame: int
    # A peer that stops reading while we keep writing is dropped past this.
    max_send_buffer: int = 64 * 1024 * 1024


class ConnectionOwner(Protocol):
    """The node, as a connection sees it."""

    @property
    def name(self) -> PeerName: ...

    def vet(self, conn: Connection, hello: Hello) -> str | None: ...

    def register(self, conn: Connection) -> None: ...

    def handle(self, conn: Connection, msg: Message) -> None: ...

    def closed(self, conn: Connection, reason: str, error: BaseException | None) -> None: ...


class _Pending:
    """Gossip of one channel waiting for a connection."""

    __slots__ = ("broadcasts", "gossip")

    def __init__(self) -> None:
        self.gossip: GossipData | None = None
        self.broadcasts: dict[PeerName, GossipData] = {}


class Connection:
    def __init__(
        self,
        owner: ConnectionOwner,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        address: str,
        hello: Hello,
        handshake_config: HandshakeConfig,
        config: ConnectionConfig,
    ) -> None:
        self.owner = owner
        self._reader = reader
        self._writer = writer
        self.outbound = outbound
        # Outbound: the address we dialled; inbound: the peer's socket address.
        self.address = address
        peername = writer.get_extra_info("peername")
        sockname = writer.get_extra_info("sockname")
        self.remote_socket: tuple[str, int] = (
            (str(peername[0]), int(peername[1])) if peername else ("", 0)
        )
        self.local_socket: tuple[str, int] = (
            (str(sockname[0]), int(sockname[1])) if sockname else ("", 0)
        )
        self.conn_id = hello.conn_id
        self._hello = hello
        self._handshake_config = handshake_config
        self.config = config
        self.state = ConnState.HANDSHAKE
        self.remote: Hello | None = None
        self.version: int | None = None
        self.encrypted = handshake_config.password_key is not None
        self.conn_uid = 0  # both ends' conn_id xor'ed: the same number at both ends
        self.overlay: OverlayConnection | None = None
        self.overlay_key: bytes | None = None
        self.registered = False
        self.created = time.monotonic()
        self.established_at: float | None = None
        self.last_received = self.created
        self.last_sent = self.created
        self.bytes_sent = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.close_reason: str | None = None
        self.heartbeat_timeout = config.heartbeat_timeout
        self._sealer: Sealer | None = None
        self._opener: Opener | None = None
        self._decoder: FrameDecoder | None = None
        self._pending: dict[str, _Pending] = {}
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._more = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._run_task: asyncio.Task[None] | None = None
        self.on_state_change: Callable[[Connection], None] | None = None

    # --- identity ------------------------------------------------------------

    @property
    def remote_name(self) -> PeerName | None:
        return self.remote.name if self.remote is not None else None

    @property
    def initiator(self) -> PeerName | None:
        """The peer that opened the TCP connection."""
        if self.remote is None:
            return None
        return self.owner.name if self.outbound else self.remote.name

    @property
    def remote_listen_address(self) -> str:
        """Where the remote peer accepts connections, as far as we know ("" if not)."""
        if self.outbound:
            return self.address
        if self.remote is None or not self.remote.listen_port:
            return ""
        return format_address(self.remote_socket[0], self.remote.listen_port)

    @property
    def alive(self) -> bool:
        """Whether the peer is heard from (its heartbeats, or anything, pass)."""
        return (
            self.state in (ConnState.CONNECTED, ConnState.ESTABLISHED)
            and time.monotonic() - self.last_received <= self.heartbeat_timeout
        )

    def describe(self) -> str:
        """``->[10.0.0.2:6783|02:..(host2)]`` for logs, as mesh writes it."""
        arrow = "->" if self.outbound else "<-"
        who = ""
        if self.remote is not None:
            nick = f"({self.remote.nickname})" if self.remote.nickname else ""
            who = f"|{format_peer_name(self.remote.name)}{nick}"
        return f"{arrow}[{self.address}{who}]"

    @staticmethod
    def new_conn_id() -> int:
        return secrets.randbits(64)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._run_task = asyncio.get_running_loop().create_task(self.run(), name=self.describe())
        return self._run_task

    async def run(self) -> None:
        error: BaseException | None = None
        reason = "closed"
        try:
            await self._handshake()
            self.owner.register(self)
            self.registered = True
            if self.close_reason is not None:
                # Closed while registering (a duplicate replaced us already).
                raise ConnectionClosed(self.close_reason)
            self._arm_heartbeat()
            self._writer_task = asyncio.get_running_loop().create_task(self._write_loop())
            self._more.set()  # whatever gossip was queued while registering
            await self._read_loop()
        except MeshError as exc:
            error, reason = exc, exc.message
        except TimeoutError as exc:
            error, reason = exc, f"handshake timed out after {self.config.handshake_timeout:g} s"
        except asyncio.IncompleteReadError as exc:
            error, reason = exc, "connection closed by peer"
        except (ConnectionError, OSError) as exc:
            error, reason = exc, f"connection error: {os_reason(exc)}"
        except asyncio.CancelledError:
            reason = self.close_reason or "cancelled"
            self._teardown(reason, None)
            raise
        except Exception as exc:  # a bug in a gossiper or overlay must not kill the node
            log.exception("%s: internal error", self.describe())
            error, reason = exc, f"internal error: {exc!r}"
        if self.close_reason is not None and not isinstance(error, HandshakeRefused):
            # We closed it on purpose: our reason, not the EOF that followed.
            reason = self.close_reason
        self._teardown(reason, error)

    async def _handshake(self) -> None:
        def vet(hello: Hello) -> str | None:
            self.remote = hello
            return self.owner.vet(self, hello)

        async with asyncio.timeout(self.config.handshake_timeout):
            result = await handshake(
                self._reader,
                self._writer,
                self._hello,
                self._handshake_config,
                outbound=self.outbound,
                vet=vet,
            )
        self.remote = result.remote
        self.version = result.version
        self._sealer, self._opener = result.sealer, result.opener
        self.overlay_key = result.overlay_key
        self._decoder = result.decoder
        self._decoder.max_size = self.config.max_frame
        self.bytes_sent += result.bytes_sent
        self.bytes_received += result.bytes_received
        self.conn_uid = self.conn_id ^ result.remote.conn_id
        # Wait for three of the peer's heartbeats, whatever our own interval.
        self.heartbeat_timeout = max(
            self.config.heartbeat_timeout, 3 * result.remote.heartbeat_ms / 1000
        )
        self.last_received = time.monotonic()
        self.state = ConnState.CONNECTED

    def set_established(self, established: bool) -> None:
        if self.state in (ConnState.CLOSED, ConnState.HANDSHAKE):
            return
        new = ConnState.ESTABLISHED if established else ConnState.CONNECTED
        if new != self.state:
            self.state = new
            if established and self.established_at is None:
                self.established_at = time.monotonic()
            if self.on_state_change is not None:
                self.on_state_change(self)

    def close(self, reason: str, *, notify: bool = True) -> None:
        """Close with ``reason`` (told to the peer in a goodbye if ``notify``)."""
        if self.close_reason is not None or self.state == ConnState.CLOSED:
            return
        self.close_reason = reason
        if notify and self.state in (ConnState.CONNECTED, ConnState.ESTABLISHED):
            with contextlib.suppress(MeshError, OSError, RuntimeError):
                self.send(Bye(reason))
        self.flush()
        self._writer.close()  # the read loop sees EOF and tears down

    def _teardown(self, reason: str, error: BaseException | None) -> None:
        if self.state == ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        if self.close_reason is None:
            self.close_reason = reason
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._writer_task is not None:
            self._writer_task.cancel()
        self._pending.clear()
        self._writer.close()
        self.owner.closed(self, self.close_reason, error)

    # --- reading -------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._decoder is not None
        decoder = self._decoder
        opener = self._opener
        reader = self._reader
        data = b""  # the handshake may have left whole frames in the decoder
        while True:
            decoder.append(data)
            while (frame := decoder.pop()) is not None:
                payload = opener.open(frame) if opener is not None else frame
                msg = decode_message(payload)
                self.messages_received += 1
                if isinstance(msg, Heartbeat):
                    continue
                if isinstance(msg, Bye | Refuse):
                    self.close_reason = self.close_reason or f"closed by peer: {msg.reason}"
                    raise ConnectionClosed(self.close_reason)
                if isinstance(msg, Hello | Confirm):
                    what = type(msg).__name__.upper()
                    raise ProtocolViolation(f"unexpected {what} after the handshake")
                self.owner.handle(self, msg)
                if self.state == ConnState.CLOSED or self.close_reason is not None:
                    return
            data = await reader.read(256 * 1024)
            if not data:
                raise ConnectionClosed("connection closed by peer")
            self.bytes_received += len(data)
            self.last_received = time.monotonic()

    # --- writing -------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Send one message (sealed now, so in order; written at the end of this tick)."""
        if self.state == ConnState.CLOSED:
            return
        payload = encode_message(msg)
        if self._sealer is not None:
            payload = self._sealer.seal(payload)
        frame = encode_frame(payload)
        self.bytes_sent += len(frame)
        self.messages_sent += 1
        self.last_sent = time.monotonic()
        # Messages sent in the same tick (relayed broadcasts, gossip, a
        # heartbeat) go out in one write: one system call, not one each.
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._writer.is_closing():
            self._out.clear()
            return
        self._writer.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
        self._out.clear()
        transport = self._writer.transport
        if transport.get_write_buffer_size() > self.config.max_send_buffer:
            self.close(
                f"peer does not read: {self.config.max_send_buffer} bytes waiting to be sent",
                notify=False,
            )

    def queue_gossip(self, channel: str, data: GossipData) -> None:
        pending = self._pending.get(channel)
        if pending is None:
            pending = self._pending[channel] = _Pending()
        pending.gossip = data if pending.gossip is None else pending.gossip.merge(data)
        self._more.set()

    def queue_broadcast(self, channel: str, src: PeerName, data: GossipData) -> None:
        pending = self._pending.get(channel)
        if pending is None:
            pending = self._pending[channel] = _Pending()
        queued = pending.broadcasts.get(src)
        pending.broadcasts[src] = data if queued is None else queued.merge(data)
        self._more.set()

    def send_control(self, tag: int, payload: bytes) -> None:
        self.send(OverlayControl(tag, payload))

    def _pick(self) -> list[Message] | None:
        """The next gossip to send, encoded now (so it carries the latest state)."""
        for channel, pending in self._pending.items():
            if pending.gossip is not None:  # usually more urgent than broadcasts
                data, pending.gossip = pending.gossip, None
                src = self.owner.name
                return [Gossip(channel, src, p) for p in data.encode()]
            if pending.broadcasts:
                src, data = next(iter(pending.broadcasts.items()))
                del pending.broadcasts[src]
                return [Broadcast(channel, src, p) for p in data.encode()]
        self._pending.clear()
        return None

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._more.wait()
                self._more.clear()
                while (msgs := self._pick()) is not None:
                    for msg in msgs:
                        self.send(msg)
                    if self.state == ConnState.CLOSED or self.close_reason is not None:
                        return
                    # Waiting here is what lets later data merge into what is queued.
                    self.flush()
                    await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {os_reason(exc)}", notify=False)
        except MeshError as exc:
            self.close(exc.message, notify=False)

    # --- heartbeats ----------------------------------------------------------

    def _arm_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.config.heartbeat_interval, self._beat)

    def _beat(self) -> None:
        if self.state == ConnState.CLOSED:
            return
        now = time.monotonic()
        silent = now - self.last_received
        if silent > self.heartbeat_timeout:
            self.close(f"no message for {silent:.1f} s: heartbeat timeout", notify=False)
            return
        if now - self.last_sent >= self.config.heartbeat_interval * 0.5:
            # Only when idle: any message proves we are alive.
            try:
                self.send(Heartbeat())
            except (MeshError, OSError, RuntimeError) as exc:
                self.close(f"heartbeat failed: {exc}", notify=False)
                return
        self._arm_heartbeat()


def os_reason(exc: OSError) -> str:
    """``connection refused``, not ``[Errno 111] Connect call failed ('10.0.0.2', 6783)``."""
    if exc.errno:
        return os.strerror(exc.errno)[:1].lower() + os.strerror(exc.errno)[1:]
    text = str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

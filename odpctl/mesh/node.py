"""A mesh node: the façade the router uses, and a runnable bare node for tests.

`MeshNode` owns one peer's view of the mesh on one asyncio event loop: the
listening socket, the connections, the topology and its gossip, the routes,
the gossip channels, the connection maker.  Everything runs on that loop,
so nothing needs a lock.  The router builds on it through a few methods:
`start`/`stop`, `connect`/`forget`, `gossip_channel`, `routes` (with
`routes.on_change`), `topology` (short IDs), the `Overlay` hook and the
status dictionaries its control socket serves.

``python -m odpctl.mesh.node`` runs a bare node (no overlay) with a control
socket, for the namespace tests, until `odpctl router start` replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from odpctl.errors import NotFoundError, UsageError

from .connection import Connection, ConnectionConfig, ConnState, format_address, os_reason
from .crypto import password_key
from .discovery import DEFAULT_PORT, ConnectionMaker, parse_address
from .errors import ConnectionClosed, HandshakeRefused, MeshError, ProtocolViolation
from .gossip import GossipChannel, Gossiper, SurrogateGossiper
from .handshake import CONNECT_TO_SELF, NAME_COLLISION, HandshakeConfig
from .names import (
    PeerName,
    ShortID,
    default_nickname,
    default_peer_name,
    format_peer_name,
    random_short_id,
    random_uid,
)
from .overlay import NullOverlay, Overlay, OverlayConnectionParams
from .pacing import LoopLag, TokenBucket
from .peer import ConnectionSummary, Peer
from .routes import Routes
from .status import connection_list, peer_list
from .topology import CHANNEL as TOPOLOGY_CHANNEL
from .topology import ApplyResult, Topology, TopologyGossiper
from .wire import (
    DEFAULT_MAX_FRAME,
    PROTOCOL_MAX,
    PROTOCOL_MIN,
    Broadcast,
    Gossip,
    Hello,
    Message,
    OverlayControl,
    Unicast,
)

log = logging.getLogger("odpctl.mesh")


@dataclass(frozen=True)
class MeshConfig:
    name: PeerName | None = None  # default: from the machine id and network namespace
    nickname: str | None = None  # default: the host name
    listen_host: str = "0.0.0.0"  # noqa: S104 - peers reach us on any address
    listen_port: int | None = DEFAULT_PORT  # 0: any free port; None: don't listen
    password: bytes | None = None
    peers: tuple[str, ...] = ()
    discovery: bool = True
    conn_limit: int = 128
    accept_rate: float = 20.0  # inbound connections per second, sustained ...
    accept_burst: int = 64  # ... and in a burst
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 15.0
    handshake_timeout: float = 10.0
    gossip_interval: float = 10.0
    # Topology changes within this delay are handled together (routes, GC) ...
    update_delay: float = 0.1
    # ... and our entry is broadcast at most this often.
    min_update_interval: float = 1.0
    # Unreachable peers are forgotten after this long (entries race each other).
    gc_delay: float = 1.0
    backoff_initial: float = 1.0
    backoff_max: float = 120.0
    min_version: int = PROTOCOL_MIN
    max_version: int = PROTOCOL_MAX
    max_frame: int = DEFAULT_MAX_FRAME
    short_id: int | None = None  # default: random (tests force collisions with it)


DUPLICATE = "duplicate connection"
NAME_TAKEN = "peer name in use"

# Event loop lag (seconds) above which no new connection attempts start.
MAX_LOOP_LAG = 0.5

# Periodic gossip while the topology changes: how often, to how many neighbours.
QUICK_GOSSIP_INTERVAL = 1.0
QUICK_GOSSIP_FANOUT = 2
QUICK_GOSSIP_SETTLE = 1.0  # ... once the topology has not changed for this long

_MAX_REFUSALS = 32


class MeshNode:
    def __init__(self, config: MeshConfig | None = None, *, overlay: Overlay | None = None) -> None:
        self.config = config = config or MeshConfig()
        self._name = config.name if config.name is not None else default_peer_name()
        self.nickname = config.nickname or default_nickname()
        self.uid = random_uid()
        short_id = ShortID(config.short_id) if config.short_id is not None else random_short_id()
        # Version 1: a neighbour's placeholder for us (made from our HELLO) has 0.
        self.topology = Topology(Peer(self._name, self.nickname, self.uid, 1, short_id, {}))
        self._routes = Routes(self.topology, self._name)
        self.overlay: Overlay = overlay or NullOverlay()
        self._conns: dict[PeerName, Connection] = {}
        self._handshaking: set[Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dials: set[asyncio.Task[Any]] = set()
        self._channels: dict[str, GossipChannel] = {}
        self._topology_gossiper = TopologyGossiper(self.topology, self._topology_applied)
        self._topology_channel = self.gossip_channel(TOPOLOGY_CHANNEL, self._topology_gossiper)
        self._topology_gossiper.channel = self._topology_channel
        self.topology.on_gc.append(lambda peer: self._topology_gossiper.forget(peer.name))
        self.maker = ConnectionMaker(
            self,
            discovery=config.discovery,
            initial_interval=config.backoff_initial,
            max_interval=config.backoff_max,
        )
        self._password_key: bytes | None = None
        self._server: asyncio.AbstractServer | None = None
        self.listen_port = 0
        self._accept_bucket = TokenBucket(config.accept_rate, config.accept_burst)
        self._refusals: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._settle_handle: asyncio.TimerHandle | None = None
        self._gossip_handle: asyncio.TimerHandle | None = None
        self._update_pending = False
        self._last_update = 0.0
        self._last_change = -1e9
        self._spread: set[PeerName] = set()  # names learnt from neighbours, to broadcast
        self._unreachable_since: dict[PeerName, float] = {}
        self._running = False
        self.started = time.monotonic()
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "bytes_sent",
                "bytes_received",
                "messages_sent",
                "messages_received",
                "accepted",
                "rate_limited",
                "refused",
                "protocol_errors",
            ),
            0,
        )
        self._conn_config = ConnectionConfig(
            heartbeat_interval=config.heartbeat_interval,
            heartbeat_timeout=config.heartbeat_timeout,
            handshake_timeout=config.handshake_timeout,
            max_frame=config.max_frame,
        )

    # --- identity -------------------------------------------------------------

    @property
    def name(self) -> PeerName:
        return self._name

    @property
    def routes(self) -> Routes:
        return self._routes

    @property
    def listen_address(self) -> str | None:
        if self._server is None:
            return None
        return format_address(self.config.listen_host, self.listen_port)

    @property
    def short_id(self) -> ShortID:
        assert self.topology.ourself.short_id is not None
        return self.topology.ourself.short_id

    def __str__(self) -> str:
        return f"{format_peer_name(self._name)}({self.nickname})"

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.config.password:
            # Argon2 takes a moment: not on the event loop.
            self._password_key = await loop.run_in_executor(
                None, password_key, self.config.password
            )
        if self.config.listen_port is not None:
            try:
                self._server = await asyncio.start_server(
                    self._accept,
                    self.config.listen_host,
                    self.config.listen_port,
                    reuse_address=True,
                    backlog=256,
                )
            except OSError as exc:
                where = format_address(self.config.listen_host, self.config.listen_port)
                raise MeshError(
                    f"cannot listen on {where}: {exc.strerror or exc}",
                    errno=exc.errno,
                    hint="is another router running? choose a port with --listen",
                ) from None
            self.listen_port = int(self._server.sockets[0].getsockname()[1])
        self._running = True
        log.info(
            "mesh peer %s, short ID %d, UID %d; listening on %s; encryption %s",
            self,
            self.short_id,
            self.uid,
            self.listen_address or "nowhere",
            "on" if self.config.password else "off",
        )
        if self.config.peers:
            self.maker.add_direct(self.config.peers)
        self._arm_gossip()

    async def stop(self, reason: str = "peer shutting down") -> None:
        if not self._running:
            return
        self._running = False
        self.maker.stop()
        for handle in (self._settle_handle, self._gossip_handle):
            if handle is not None:
                handle.cancel()
        if self._server is not None:
            self._server.close()
        for task in self._dials:
            task.cancel()
        for conn in [*self._conns.values(), *self._handshaking]:
            conn.close(reason)
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=2.0)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- requests -------------------------------------------------------------

    def connect(self, addresses: Iterable[str]) -> list[str]:
        """Connect to these addresses and keep reconnecting; their normal forms."""
        addresses = list(addresses)
        if not addresses:
            raise UsageError("no address to connect to")
        return self.maker.add_direct(addresses)

    def forget(self, addresses: Iterable[str]) -> list[str]:
        """Stop connecting to these addresses (existing connections stay up)."""
        addresses = list(addresses)
        forgotten = self.maker.forget(addresses)
        if not forgotten:
            raise NotFoundError(
                f"not a peer address we connect to: {', '.join(addresses)}",
                hint="see `odpctl peer list`",
            )
        return forgotten

    def gossip_channel(self, name: str, gossiper: Gossiper) -> GossipChannel:
        """Register a subsystem's channel (replacing a surrogate made for it meanwhile)."""
        channel = self._channels.get(name)
        if channel is not None and not isinstance(channel.gossiper, SurrogateGossiper):
            raise UsageError(f"gossip channel {name!r} is already registered")
        channel = GossipChannel(name, self, gossiper)
        self._channels[name] = channel
        return channel

    def connection_to(self, peer: PeerName) -> Connection | None:
        return self._conns.get(peer)

    def connections(self) -> list[Connection]:
        return list(self._conns.values())

    # --- for the connection maker ----------------------------------------------

    def connected_peers(self) -> dict[PeerName, str]:
        return {name: conn.remote_listen_address for name, conn in self._conns.items()}

    def can_dial(self) -> bool:
        return len(self._conns) + len(self._handshaking) < self.config.conn_limit

    def overloaded(self) -> bool:
        return self._loop_lag() > MAX_LOOP_LAG

    def _loop_lag(self) -> float:
        return LoopLag.of(asyncio.get_running_loop()).lag

    def dial(self, address: str) -> None:
        task = self._spawn(self._dial(address), f"dial {address}")
        self._dials.add(task)
        task.add_done_callback(self._dials.discard)

    async def _dial(self, address: str) -> None:
        host, port = parse_address(address)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.config.handshake_timeout
            )
        except (TimeoutError, OSError) as exc:
            reason = (
                f"connect timed out after {self.config.handshake_timeout:g} s"
                if isinstance(exc, asyncio.TimeoutError)
                else f"connect failed: {os_reason(exc)}"
            )
            log.debug("->[%s] %s", address, reason)
            self.maker.attempt_failed(address, reason)
            return
        if not self._running:
            writer.close()
            return
        self._start_connection(reader, writer, outbound=True, address=address)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = format_address(str(peer[0]), int(peer[1])) if peer else "?"
        if not self._running:
            writer.close()
            return
        if not self._accept_bucket.take():
            # A flood: not worth a handshake, nor a log line each.
            self.counters["rate_limited"] += 1
            writer.close()
            return
        if len(self._handshaking) >= self.config.conn_limit:
            self.counters["refused"] += 1
            self._record_refusal(address, None, "too many connections in handshake")
            writer.close()
            return
        self.counters["accepted"] += 1
        self._start_connection(reader, writer, outbound=False, address=address)

    def _start_connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        address: str,
    ) -> None:
        features: dict[str, str] = {}
        self.overlay.add_features(features)
        hello = Hello(
            name=self._name,
            nickname=self.nickname,
            uid=self.uid,
            short_id=self.short_id,
            conn_id=Connection.new_conn_id(),
            listen_port=self.listen_port,
            heartbeat_ms=int(self.config.heartbeat_interval * 1000),
            features=features,
        )
        conn = Connection(
            self,
            reader,
            writer,
            outbound=outbound,
            address=address,
            hello=hello,
            handshake_config=HandshakeConfig(
                self.config.min_version, self.config.max_version, self._password_key
            ),
            config=self._conn_config,
        )
        self._handshaking.add(conn)
        self._spawn(conn.run(), conn.describe())

    # --- ConnectionOwner ----------------------------------------------------------

    def vet(self, conn: Connection, hello: Hello) -> str | None:
        if hello.name == self._name:
            if hello.uid == self.uid:
                return CONNECT_TO_SELF
            return (
                f"{NAME_COLLISION}: {format_peer_name(hello.name)} is the name of two peers "
                f"({hello.nickname or '?'} and {self.nickname})"
            )
        existing = self._conns.get(hello.name)
        if existing is not None:
            if (squatter := self._squatter(existing, conn, hello.name)) is not None:
                return squatter
            new_initiator = self._name if conn.outbound else hello.name
            if self._keeps_existing(existing, new_initiator, conn.conn_id ^ hello.conn_id):
                return self._duplicate_reason(existing)
        elif len(self._conns) >= self.config.conn_limit:
            return f"connection limit reached ({self.config.conn_limit})"
        return None

    def _keeps_existing(self, existing: Connection, new_initiator: PeerName, new_uid: int) -> bool:
        """The duplicate-connection tie-break; both ends decide alike.

        Keep the connection opened by the peer with the lower name: both ends
        know both names, so they agree without a word, and a redundant
        attempt by the other peer never disturbs a working connection.  Two
        connections opened by the same peer (two addresses of one host):
        the lower connection UID wins, a number both ends share.
        """
        old_initiator = existing.initiator
        assert old_initiator is not None
        if old_initiator != new_initiator:
            return old_initiator < new_initiator
        return existing.conn_uid <= new_uid

    @staticmethod
    def _squatter(existing: Connection, conn: Connection, name: PeerName) -> str | None:
        """Why ``conn`` may not take the name of the neighbour on ``existing`` (None: it may).

        Without a password nothing proves a name, but a newcomer from another
        address must not displace a neighbour that is alive: its heartbeats
        pass.  A neighbour that restarted comes from its old address (and one
        that moved is let in once its old connection has timed out).
        """
        old_ip, new_ip = existing.remote_socket[0], conn.remote_socket[0]
        if old_ip == new_ip or not existing.alive:
            return None
        return (
            f"{NAME_TAKEN}: {format_peer_name(name)} is connected from {old_ip} and its "
            f"heartbeats pass; refused from {new_ip}"
        )

    def _duplicate_reason(self, kept: Connection) -> str:
        assert kept.initiator is not None
        return f"{DUPLICATE}: keeping the one opened by {format_peer_name(kept.initiator)}"

    def register(self, conn: Connection) -> None:
        hello = conn.remote
        assert hello is not None
        self._handshaking.discard(conn)
        if not self._running:
            raise ConnectionClosed("peer shutting down")
        existing = self._conns.get(hello.name)
        if existing is not None and (squatter := self._squatter(existing, conn, hello.name)):
            log.warning("%s: %s", conn.describe(), squatter)
            conn.close(squatter)
            raise ConnectionClosed(squatter)
        if existing is not None:
            assert conn.initiator is not None
            if self._keeps_existing(existing, conn.initiator, conn.conn_uid):
                reason = self._duplicate_reason(existing)
                conn.close(reason)
                raise ConnectionClosed(reason)
            existing.close(self._duplicate_reason(conn))
            self._remove(existing)
        elif len(self._conns) >= self.config.conn_limit:
            reason = f"connection limit reached ({self.config.conn_limit})"
            conn.close(reason)
            raise ConnectionClosed(reason)
        new_peer = self.routes.unicast_all(hello.name) is None  # reachable before?
        _, restarted = self.topology.add_neighbour(
            hello.name, hello.nickname, hello.uid, hello.short_id
        )
        params = OverlayConnectionParams(
            remote=hello.name,
            remote_nickname=hello.nickname,
            remote_uid=hello.uid,
            remote_short_id=hello.short_id,
            local_address=conn.local_socket,
            remote_address=conn.remote_socket,
            outbound=conn.outbound,
            conn_uid=conn.conn_uid,
            session_key=conn.overlay_key,
            remote_features=dict(hello.features),
            send_control=conn.send_control,
            set_established=conn.set_established,
            fail=lambda reason: conn.close(f"overlay: {reason}"),
        )
        conn.overlay = self.overlay.prepare_connection(params)
        self._conns[hello.name] = conn
        conn.on_state_change = self._state_changed
        self.topology.set_connection(hello.name, self._summary(conn))
        self.maker.connection_created(conn.address if conn.outbound else None, hello.name)
        # A new (or restarted) neighbour gets everything we know.  One that was
        # reachable already is in our part of the mesh: broadcasts keep us in
        # step, and periodic digests repair what they miss.  (A mesh forming
        # makes thousands of such connections at once: a digest exchange each
        # would cost more than the forming itself.)
        if new_peer or restarted:
            data = self._topology_gossiper.data(update=list(self.topology.peers), join=True)
            conn.queue_gossip(TOPOLOGY_CHANNEL, data)
        for name, channel in self._channels.items():
            if name != TOPOLOGY_CHANNEL and (state := channel.gossiper.gossip()) is not None:
                conn.queue_gossip(name, state)
        log.info(
            "%s: connection added%s (protocol %d, %s)",
            conn.describe(),
            " (restarted peer)" if restarted else " (new peer)" if new_peer else "",
            conn.version or 0,
            "encrypted" if conn.encrypted else "unencrypted",
        )
        self._changed(ourself=True)
        conn.overlay.confirm()

    def _summary(self, conn: Connection) -> ConnectionSummary:
        return ConnectionSummary(
            conn.remote_listen_address,
            conn.outbound,
            conn.state == ConnState.ESTABLISHED,
        )

    def _state_changed(self, conn: Connection) -> None:
        if conn.remote is None or self._conns.get(conn.remote.name) is not conn:
            return
        self.topology.set_connection(conn.remote.name, self._summary(conn))
        if conn.state == ConnState.ESTABLISHED:
            log.info("%s: connection fully established", conn.describe())
        self._changed(ourself=True)

    def handle(self, conn: Connection, msg: Message) -> None:
        if isinstance(msg, Gossip):
            if msg.src != conn.remote_name:
                raise ProtocolViolation("gossip claims to come from another peer")
            self._channel_for(msg.channel).deliver(msg)
        elif isinstance(msg, Broadcast):
            self._channel_for(msg.channel).deliver_broadcast(msg)
        elif isinstance(msg, Unicast):
            self._channel_for(msg.channel).deliver_unicast(msg)
        elif isinstance(msg, OverlayControl) and conn.overlay is not None:
            conn.overlay.control_message(msg.tag, msg.payload)

    def _channel_for(self, name: str) -> GossipChannel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = GossipChannel(name, self, SurrogateGossiper())
        return channel

    def closed(self, conn: Connection, reason: str, error: BaseException | None) -> None:
        self._handshaking.discard(conn)
        for key in ("bytes_sent", "bytes_received", "messages_sent", "messages_received"):
            self.counters[key] += getattr(conn, key)
        registered = conn.registered and self._remove(conn)
        permanent = isinstance(error, HandshakeRefused) and error.permanent
        if isinstance(error, ProtocolViolation):
            self.counters["protocol_errors"] += 1
        if registered:
            log.info("%s: connection deleted: %s", conn.describe(), reason)
        elif _refusal(error, reason).startswith(DUPLICATE) or not self._running:
            # The tie-break at work, or our own shutdown: nothing went wrong.
            log.debug("%s: %s", conn.describe(), reason)
        else:
            # Refusals (wrong password, version) are warnings at both ends: the
            # operator of either one must see why the peers don't connect.
            warn = isinstance(error, HandshakeRefused | ProtocolViolation)
            log.log(
                logging.WARNING if warn else logging.INFO,
                "%s: connection failed: %s",
                conn.describe(),
                reason,
            )
            if not conn.outbound:
                self.counters["refused"] += isinstance(error, HandshakeRefused)
                self._record_refusal(conn.address, conn.remote, reason)
        if conn.outbound:
            if conn.registered:
                lived = time.monotonic() - conn.created
                self.maker.connection_closed(conn.address, reason, lived=lived, permanent=permanent)
            else:
                self.maker.attempt_failed(
                    conn.address, reason, peer=conn.remote_name, permanent=permanent
                )
        else:
            self.maker.refresh()

    def _remove(self, conn: Connection) -> bool:
        """Take a registered connection out of the topology; False if it was not in."""
        name = conn.remote_name
        if name is None or self._conns.get(name) is not conn:
            return False
        del self._conns[name]
        self.topology.remove_connection(name)
        if conn.overlay is not None:
            conn.overlay.stop()
        self._changed(ourself=True)
        return True

    def _record_refusal(self, address: str, hello: Hello | None, reason: str) -> None:
        host = address.rsplit(":", 1)[0]
        self._refusals.pop(host, None)
        self._refusals[host] = {
            "address": address,
            "peer": hello.name if hello else None,
            "nickname": hello.nickname if hello else None,
            "reason": reason,
            "at": time.monotonic(),
        }
        while len(self._refusals) > _MAX_REFUSALS:
            self._refusals.popitem(last=False)

    # --- topology changes ---------------------------------------------------------

    def _topology_applied(self, result: ApplyResult, spread: bool) -> None:
        if spread and result.improved:
            self._spread |= result.improved
            self._changed(ourself=True)
        elif result.improved or result.ourself_changed:
            self._changed(ourself=result.ourself_changed)

    def _changed(self, *, ourself: bool = False) -> None:
        """The topology changed; settle (routes, GC, gossip) within ``update_delay``.

        A mesh that forms makes many changes at once: routes are recomputed
        and our entry gossiped once for all of them.
        """
        if ourself:
            self._update_pending = True
        if not self._recently_changed():
            # Quiet until now: gossip digests quickly again (see _arm_gossip).
            if self._gossip_handle is not None:
                self._gossip_handle.cancel()
            self._last_change = time.monotonic()
            if self._running:
                self._arm_gossip()
        self._last_change = time.monotonic()
        self._schedule_settle(self.config.update_delay)

    def _recently_changed(self) -> bool:
        return time.monotonic() - self._last_change < self.config.gossip_interval

    def _schedule_settle(self, delay: float) -> None:
        """Settle in ``delay`` seconds, or sooner if that is already planned."""
        if not self._running:
            return
        loop = asyncio.get_running_loop()
        handle = self._settle_handle
        if handle is not None:
            if handle.when() <= loop.time() + delay:
                return
            handle.cancel()
        self._settle_handle = loop.call_later(max(delay, 0.0), self._settle)

    def _settle(self) -> None:
        self._settle_handle = None
        self.routes.ensure()
        self._collect_garbage()
        self.routes.notify()
        self.maker.refresh()
        if self._update_pending:
            # Under load, broadcast less often: each broadcast then carries
            # more changes, and costs every peer the same to relay.
            interval = max(self.config.min_update_interval, 2 * self._loop_lag())
            wait = self._last_update + interval - time.monotonic()
            if wait > 0:
                # A mesh forming changes our entry many times a second: each
                # broadcast reaches every peer, so send the latest one, later.
                self._schedule_settle(wait)
                return
            self._update_pending = False
            self._last_update = time.monotonic()
            spread, self._spread = self._spread, set()
            own = self.topology.own_broadcast()
            if own is not None or spread:
                self._topology_channel.gossip_broadcast(
                    self._topology_gossiper.data(raw=[own] if own else [], update=spread)
                )

    def _collect_garbage(self) -> None:
        """Forget peers that have been unreachable for ``gc_delay``.

        Not at once: entries come in any order, and one may arrive a moment
        before the entry of the peer that connects it to us.
        """
        now = time.monotonic()
        reachable = self.routes.reachable_all()
        unreachable = {
            n for n in self.topology.peers if n not in reachable and n not in self._conns
        }
        for name in list(self._unreachable_since):
            if name not in unreachable:
                del self._unreachable_since[name]
        for name in unreachable:
            self._unreachable_since.setdefault(name, now)
        due = {
            n for n, since in self._unreachable_since.items() if now - since >= self.config.gc_delay
        }
        if due:
            removed = self.topology.garbage_collect(reachable | (unreachable - due), self._conns)
            for peer in removed:
                self._unreachable_since.pop(peer.name, None)
            if removed:
                log.info("forgot unreachable peers: %s", ", ".join(str(p) for p in removed))
                self.routes.ensure()
        if self._unreachable_since:
            wake = min(self._unreachable_since.values()) + self.config.gc_delay - now
            self._schedule_settle(max(wake, 0.01))

    def _arm_gossip(self) -> None:
        """Periodic gossip; quicker, to fewer neighbours, while the topology changes.

        Broadcasts miss peers while trees disagree (a mesh forming, a
        partition healing); the digests that follow repair that, and are
        cheap enough to send every second for a while.
        """
        interval = self.config.gossip_interval
        if self._recently_changed():
            interval = min(interval, QUICK_GOSSIP_INTERVAL)
        interval *= random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not a secret
        self._gossip_handle = asyncio.get_running_loop().call_later(interval, self._gossip_tick)

    def _gossip_tick(self) -> None:
        if not self._running:
            return
        quick = self._recently_changed()
        if quick and time.monotonic() - self._last_change < QUICK_GOSSIP_SETTLE:
            # Still changing: broadcasts and deltas are under way, and a digest
            # now would only ask for what is on its way.  Repair once it settles.
            self._arm_gossip()
            return
        for channel in list(self._channels.values()):
            data = channel.gossiper.gossip()
            if data is None:
                continue
            neighbours = self.routes.random_neighbours()
            for neighbour in neighbours[:QUICK_GOSSIP_FANOUT] if quick else neighbours:
                channel.send_down(neighbour, data)
        self._arm_gossip()

    # --- status -------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Counters including the live connections' bytes and messages."""
        totals = dict(self.counters)
        for conn in [*self._conns.values(), *self._handshaking]:
            for key in ("bytes_sent", "bytes_received", "messages_sent", "messages_received"):
                totals[key] += getattr(conn, key)
        return totals

    def status(self) -> dict[str, Any]:
        states = [c.state.value for c in self._conns.values()]
        ourself = self.topology.ourself
        return {
            "name": format_peer_name(self._name),
            "nickname": self.nickname,
            "uid": self.uid,
            "short_id": self.short_id,
            "version": ourself.version,
            "listen": self.listen_address,
            "encryption": self.config.password is not None,
            "protocol": {"min": self.config.min_version, "max": self.config.max_version},
            "discovery": self.config.discovery,
            "uptime": round(time.monotonic() - self.started, 1),
            "peers": len([p for p in self.topology.peers.values() if not p.placeholder]),
            "connections": {
                "established": states.count(ConnState.ESTABLISHED.value),
                "connected": states.count(ConnState.CONNECTED.value),
                "handshake": len(self._handshaking),
                "limit": self.config.conn_limit,
            },
            "targets": self.maker.direct_targets(),
            "routes": {
                format_peer_name(dst): format_peer_name(hop)
                for dst, hop in sorted(self.routes.unicast_table().items())
                if hop is not None
            },
            "stats": self.totals(),
            "overlay": self.overlay.diagnostics(),
        }

    def peers_status(self) -> dict[str, Any]:
        """What `odpctl peer list` shows: every peer, and our connections."""
        return {
            "self": format_peer_name(self._name),
            "peers": peer_list(self.topology, self.routes, self._name),
            "connections": connection_list(
                self._conns.values(),
                self._handshaking,
                self.maker.status(),
                self.topology,
                self._refusals.values(),
            ),
        }


def _refusal(error: BaseException | None, reason: str) -> str:
    """The refusal itself, whichever end made it."""
    return error.refusal if isinstance(error, HandshakeRefused) else reason

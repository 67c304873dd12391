"""Mesh nodes on loopback, in one event loop: forming, ties, refusals, gossip, overlays."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from odpctl.mesh.connection import ConnState
from odpctl.mesh.errors import NoRouteError
from odpctl.mesh.handshake import HandshakeConfig, handshake
from odpctl.mesh.names import PeerName, PeerUID, ShortID, name_from_bytes
from odpctl.mesh.node import MeshConfig, MeshNode
from odpctl.mesh.overlay import OverlayConnectionParams, OverlayStatus
from odpctl.mesh.wire import Hello, encode_frame, pack

FAST = dict(
    listen_host="127.0.0.1",
    listen_port=0,
    heartbeat_interval=0.3,
    heartbeat_timeout=1.0,
    gossip_interval=1.0,
    update_delay=0.02,
    min_update_interval=0.05,
    gc_delay=0.2,
    backoff_initial=0.1,
    backoff_max=0.5,
)


def config(nick: str, **kw: Any) -> MeshConfig:
    return MeshConfig(**{"name": name_from_bytes(nick.encode()), "nickname": nick, **FAST, **kw})


@asynccontextmanager
async def nodes(*configs: MeshConfig) -> AsyncIterator[list[MeshNode]]:
    started = []
    try:
        for c in configs:
            node = MeshNode(c)
            await node.start()
            started.append(node)
        yield started
    finally:
        for node in started:
            await node.stop()


def addr(node: MeshNode) -> str:
    return f"127.0.0.1:{node.listen_port}"


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


def established(node: MeshNode) -> set[PeerName]:
    return {
        c.remote_name
        for c in node.connections()
        if c.state == ConnState.ESTABLISHED and c.remote_name is not None
    }


def converged(group: list[MeshNode]) -> bool:
    def view(n: MeshNode) -> set[tuple[int, int, int]]:
        return {(p.name, p.uid, p.version) for p in n.topology.peers.values() if not p.placeholder}

    truth = {(n.name, n.uid, n.topology.ourself.version) for n in group}
    return all(view(n) == truth for n in group)


def arun(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


def test_three_routers_form_a_full_mesh_and_agree() -> None:
    async def go() -> None:
        async with nodes(config("a"), config("b"), config("c")) as (a, b, c):
            b.connect([addr(a)])
            c.connect([addr(b)])
            await until(lambda: all(len(established(n)) == 2 for n in (a, b, c)), what="mesh")
            await until(lambda: converged([a, b, c]), what="topology")
            for n in (a, b, c):
                assert len(n.connections()) == 2  # no duplicates left over
                for other in (a, b, c):
                    assert n.routes.unicast(other.name) == (None if n is other else other.name)
            # Discovery found a-c: its address came from b's entry.
            assert c.name in established(a)

    arun(go)


def test_simultaneous_connections_keep_the_one_the_lower_name_opened() -> None:
    async def go() -> None:
        for round_ in range(4):
            nick_a, nick_b = f"x{round_}", f"y{round_}"
            async with nodes(config(nick_a, discovery=False), config(nick_b, discovery=False)) as (
                a,
                b,
            ):
                a.connect([addr(b)])
                b.connect([addr(a)])
                await until(lambda: established(a) == {b.name} and established(b) == {a.name})
                await asyncio.sleep(0.3)  # let any loser go
                (ca,), (cb,) = a.connections(), b.connections()
                lower = min(a.name, b.name)
                assert ca.initiator == cb.initiator == lower
                assert ca.conn_uid == cb.conn_uid
                # Both direct targets count as connected: nobody keeps retrying.
                for n in (a, b):
                    assert [t["state"] for t in n.maker.status()] == ["connected"]

    arun(go)


def test_a_peer_that_leaves_is_forgotten_and_routes_change() -> None:
    async def go() -> None:
        async with nodes(config("a"), config("b"), config("c", discovery=False)) as (a, b, c):
            b.connect([addr(a)])
            c.connect([addr(b)])
            await until(lambda: converged([a, b, c]) and len(established(b)) == 2)
            changes = []
            a.routes.on_change(lambda: changes.append(a.routes.generation))
            await c.stop()
            await until(lambda: c.name not in a.topology.peers, what="a forgets c")
            await until(lambda: c.name not in b.topology.peers, what="b forgets c")
            assert changes
            assert a.routes.unicast(c.name) is None

    arun(go)


def test_wrong_password_refused_and_shown_at_both_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="odpctl.mesh")

    async def go() -> None:
        async with nodes(config("a", password=b"one"), config("b", password=b"two")) as (a, b):
            b.connect([addr(a)])
            await until(lambda: any(c["reason"] for c in a.peers_status()["connections"]))
            await until(lambda: any(c["reason"] for c in b.peers_status()["connections"]))
            (at_a,) = a.peers_status()["connections"]
            at_b = next(c for c in b.peers_status()["connections"] if c["direction"] == "outbound")
            assert at_a["state"] == "refused" and at_a["direction"] == "inbound"
            assert at_b["state"] in ("failed", "waiting", "connecting")
            assert "passwords differ" in at_a["reason"]
            assert "passwords differ" in at_b["reason"]
            assert not a.connections() and not b.connections()

    arun(go)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("password mismatch" in w for w in warnings) >= 2  # one at each end


def test_encrypted_mesh_works() -> None:
    async def go() -> None:
        async with nodes(config("a", password=b"pw"), config("b", password=b"pw")) as (a, b):
            b.connect([addr(a)])
            await until(lambda: established(a) == {b.name})
            (conn,) = a.connections()
            assert conn.encrypted and conn.overlay_key is not None
            await until(lambda: converged([a, b]))

    arun(go)


def test_connection_to_ourself_is_not_retried() -> None:
    async def go() -> None:
        async with nodes(config("a")) as (a,):
            a.connect([addr(a)])
            await until(lambda: a.maker.status()[0]["state"] == "stopped")
            assert a.maker.status()[0]["last_error"] == "connection to ourself"

    arun(go)


def test_name_collision_refused() -> None:
    async def go() -> None:
        same = name_from_bytes(b"twin")
        async with nodes(config("a", name=same), config("b", name=same)) as (a, b):
            b.connect([addr(a)])
            await until(lambda: b.maker.status()[0]["state"] == "stopped")
            assert "peer name collision" in b.maker.status()[0]["last_error"]

    arun(go)


def test_connection_limit() -> None:
    async def go() -> None:
        async with nodes(config("a", conn_limit=1), config("b"), config("c")) as (a, b, c):
            b.connect([addr(a)])
            await until(lambda: established(a) == {b.name})
            c.connect([addr(a)])
            await until(
                lambda: (c.maker.status()[0]["last_error"] or "").endswith(
                    "connection limit reached (1)"
                )
            )
            assert established(a) == {b.name}

    arun(go)


def test_accept_rate_limit_and_garbage_do_not_hurt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="odpctl.mesh")

    async def go() -> None:
        async with nodes(config("a", accept_rate=0.01, accept_burst=3), config("b")) as (a, b):
            socks = []
            for _ in range(6):
                s = socket.create_connection(("127.0.0.1", a.listen_port))
                s.sendall(b"\x00" * 64)  # not a greeting
                socks.append(s)
            await until(lambda: a.counters["rate_limited"] >= 3, what="rate limit")
            await until(lambda: not a._handshaking, what="garbage dropped")
            for s in socks:
                s.close()
            assert a.counters["accepted"] == 3
            refusals = [c for c in a.peers_status()["connections"] if c["state"] == "refused"]
            assert refusals and "not an odpctl mesh peer" in refusals[0]["reason"]
            # The router goes on.
            a._accept_bucket.rate = 1000.0
            b.connect([addr(a)])
            await until(lambda: established(a) == {b.name})

    arun(go)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x7f\xff\xff\xff", "exceeds the limit"),
        (encode_frame(b"\xc1"), "undecodable"),
        (encode_frame(pack([6, "topology", 1, b"\x93\x00"])), "gossip claims to come from"),
        (encode_frame(pack([42])), "unknown message tag"),
        (encode_frame(pack([1, {}])), "invalid"),
    ],
)
def test_a_peer_sending_garbage_is_dropped_with_the_reason(
    frame: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="odpctl.mesh")

    async def go() -> None:
        async with nodes(config("a", discovery=False), config("b", discovery=False)) as (a, b):
            b.connect([addr(a)])
            await until(lambda: established(a) == {b.name})
            # A hostile peer: a proper handshake, then the frame.
            reader, writer = await asyncio.open_connection("127.0.0.1", a.listen_port)
            hello = Hello(name_from_bytes(b"evil"), "evil", PeerUID(5), ShortID(5), 9, 0)
            await handshake(reader, writer, hello, HandshakeConfig(1, 1, None), outbound=True)
            writer.write(frame)
            await asyncio.wait_for(reader.read(), 3)  # to the end: a hung up
            writer.close()
            assert a.counters["protocol_errors"] == 1
            assert established(a) == {b.name}  # the others stay
            assert hello.name not in {c.remote_name for c in a.connections()}

    arun(go)
    dropped = [r.getMessage() for r in caplog.records if "evil" in r.getMessage()]
    assert any(reason in m for m in dropped), dropped


class Recorder:
    """A test subsystem: records what it hears; its state is a set of strings."""

    def __init__(self) -> None:
        self.state: set[str] = set()
        self.unicasts: list[tuple[PeerName, bytes]] = []
        self.broadcasts: list[tuple[PeerName, bytes]] = []

    def on_gossip_unicast(self, src: PeerName, msg: bytes) -> None:
        self.unicasts.append((src, msg))

    def on_gossip_broadcast(self, src: PeerName, update: bytes) -> Any:
        self.broadcasts.append((src, update))
        return Items({update.decode()})

    def gossip(self) -> Any:
        return Items(self.state) if self.state else None

    def on_gossip(self, _src: PeerName, msg: bytes) -> Any:
        new = set(msg.decode().split(",")) - self.state
        self.state |= new
        return Items(new) if new else None


class Items:
    def __init__(self, items: set[str]) -> None:
        self.items = set(items)

    def encode(self) -> list[bytes]:
        return [",".join(sorted(self.items)).encode()]

    def merge(self, other: Any) -> Any:
        return Items(self.items | other.items)


def test_gossip_channels_unicast_broadcast_and_gossip() -> None:
    async def go() -> None:
        configs = [config(f"g{i}", discovery=False) for i in range(4)]
        async with nodes(*configs) as group:
            for prev, node in itertools.pairwise(group):
                node.connect([addr(prev)])  # a line: g0 - g1 - g2 - g3
            recorders = [Recorder() for _ in group]
            channels = [n.gossip_channel("test", r) for n, r in zip(group, recorders, strict=True)]
            await until(lambda: converged(group), what="line")
            first, last = group[0], group[-1]
            channels[0].gossip_unicast(last.name, b"hello end")
            await until(lambda: recorders[-1].unicasts == [(first.name, b"hello end")])
            assert not any(r.unicasts for r in recorders[:-1])  # relayed, not delivered
            channels[1].gossip_broadcast(Items({"news"}))
            await until(lambda: all(r.broadcasts for i, r in enumerate(recorders) if i != 1))
            await asyncio.sleep(0.2)
            assert [len(r.broadcasts) for r in recorders] == [1, 0, 1, 1]  # once each
            recorders[3].state = {"x", "y"}
            channels[3].gossip_neighbour_subset(Items({"x", "y"}))
            await until(lambda: all(r.state >= {"x", "y"} for r in recorders), what="gossip")
            with pytest.raises(NoRouteError):
                channels[0].gossip_unicast(name_from_bytes(b"nobody"), b"?")

    arun(go)


def test_short_id_collisions_are_resolved_through_gossip() -> None:
    async def go() -> None:
        configs = [config(f"s{i}", short_id=100) for i in range(3)]
        async with nodes(*configs) as group:
            group[1].connect([addr(group[0])])
            group[2].connect([addr(group[1])])
            await until(lambda: len({n.short_id for n in group}) == 3, what="distinct IDs")
            await until(lambda: converged(group))
            lowest = min(group, key=lambda n: n.name)
            assert lowest.short_id == 100
            for n in group:
                for other in group:
                    assert n.topology.by_short_id(other.short_id).name == other.name  # type: ignore[union-attr]

    arun(go)


def test_a_restarted_peer_takes_over_its_old_entry() -> None:
    async def go() -> None:
        # a keeps b's old entry (no GC yet) when b comes back.
        async with nodes(config("a", gc_delay=30), config("b")) as (a, b):
            b.connect([addr(a)])
            await until(lambda: converged([a, b]))
            old_uid, old_version = b.uid, b.topology.ourself.version
            await b.stop()
            await until(lambda: not a.connections())
            assert a.topology.peers[b.name].uid == old_uid
            async with nodes(config("b")) as (b2,):
                b2.connect([addr(a)])
                await until(lambda: converged([a, b2]), what="restart")
                assert b2.uid != old_uid
                assert a.topology.peers[b2.name].uid == b2.uid
                # Its entry outranks the old one's (by version, or by UID at
                # the same version), wherever the old one still lingers.
                assert b2.topology.ourself.rank() > (old_version, old_uid)

    arun(go)


class SlowOverlay:
    """An overlay whose data path comes up when the test says so."""

    def __init__(self) -> None:
        self.conns: list[OverlayConn] = []

    def add_features(self, features: dict[str, str]) -> None:
        features["overlay"] = "test"

    def prepare_connection(self, params: OverlayConnectionParams) -> OverlayConn:
        conn = OverlayConn(params)
        self.conns.append(conn)
        return conn

    def diagnostics(self) -> dict[str, Any]:
        return {"connections": len(self.conns)}


class OverlayConn:
    def __init__(self, params: OverlayConnectionParams) -> None:
        self.params = params
        self.healthy = False
        self.messages: list[tuple[int, bytes]] = []

    def confirm(self) -> None:
        self.params.send_control(7, b"hi")

    def control_message(self, tag: int, payload: bytes) -> None:
        self.messages.append((tag, payload))

    def status(self) -> OverlayStatus:
        if self.healthy:
            return OverlayStatus("test")
        return OverlayStatus("test", healthy=False, reason="no heartbeat from the other end yet")

    def stop(self) -> None:
        pass


def test_overlay_hook_decides_when_a_connection_is_established() -> None:
    async def go() -> None:
        oa, ob = SlowOverlay(), SlowOverlay()
        a, b = MeshNode(config("a"), overlay=oa), MeshNode(config("b"), overlay=ob)
        await a.start()
        await b.start()
        try:
            b.connect([addr(a)])
            await until(lambda: bool(oa.conns and ob.conns and oa.conns[0].messages))
            assert oa.conns[0].messages == [(7, b"hi")]
            assert oa.conns[0].params.remote_features == {"overlay": "test"}
            assert oa.conns[0].params.conn_uid == ob.conns[0].params.conn_uid
            (status,) = a.peers_status()["connections"]
            assert status["state"] == "connected" and status["overlay"] == "test"
            assert status["reason"] == "no heartbeat from the other end yet"
            assert a.routes.unicast(b.name) is None and a.routes.unicast_all(b.name) == b.name
            for o in (oa, ob):
                o.conns[0].healthy = True
                o.conns[0].params.set_established(True)
            await until(lambda: a.routes.unicast(b.name) == b.name, what="data route")
            (status,) = a.peers_status()["connections"]
            assert status["state"] == "established" and status["reason"] is None
            oa.conns[0].params.fail("vxlan port unreachable")
            await until(lambda: not a.connections())
            await until(
                lambda: any(
                    "overlay: vxlan port unreachable" in (c["reason"] or "")
                    for c in b.peers_status()["connections"]
                )
            )
        finally:
            await a.stop()
            await b.stop()

    arun(go)


def test_heartbeats_detect_a_silent_peer() -> None:
    async def go() -> None:
        async with nodes(config("a", discovery=False), config("b", discovery=False)) as (a, b):
            b.connect([addr(a)])
            await until(lambda: established(a) == {b.name})
            (conn,) = b.connections()
            # b falls silent (a host gone, its cable cut): no heartbeats, no gossip.
            conn.send = lambda msg: None  # type: ignore[method-assign]  # noqa: ARG005
            await until(lambda: not established(a), timeout=4, what="heartbeat timeout")
            assert a.routes.unicast(b.name) is None

    arun(go)

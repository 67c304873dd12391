"""The router's upcall mirror: a subscription over a real unix socket.

The router side is served the way a control server would hand a streaming
command its connection: read the request line, give it to
`UpcallMirror.serve`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.control.mirror import SUBSCRIBE, UpcallMirror, parse_event
from odpctl.control.protocol import ControlError, RouterUnavailableError
from odpctl.errors import NotFoundError, OdpError
from odpctl.odp.keys import encode_key
from odpctl.odp.packet import Upcall
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import PacketCmd
from odpctl.watch.subscription import MirrorSubscription

KEY = parse_key(
    "in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
    "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=1,tos=0,ttl=64,frag=no),"
    "icmp(type=8,code=0)"
)[0]


def resolve(name: str) -> int:
    if name != "dp0":
        raise NotFoundError(f"no datapath {name}")
    return 7


class FakeRouter:
    """A control socket that serves only the mirror (and refuses the rest)."""

    def __init__(self, path: Path, queue: int = 4096) -> None:
        self.path = path
        self.mirror = UpcallMirror(resolve, queue=queue)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.clients: set[asyncio.Task[None]] = set()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_unix_server(self._client, str(self.path))
        )
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self.clients.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        try:
            if request["cmd"] != SUBSCRIBE:
                raise NotFoundError(f"unknown command {request['cmd']!r}")
            await self.mirror.serve(request, reader, writer)
        except OdpError as exc:  # as the control server replies to a refused request
            writer.write(
                json.dumps(
                    {"ok": False, "error": {"message": exc.message, "exit_code": exc.exit_code}}
                ).encode()
                + b"\n"
            )
            await writer.drain()

    def start(self) -> FakeRouter:
        self.thread.start()
        self.ready.wait(5)
        return self

    def stop(self) -> None:
        """As a router stops: no new clients, and the connected ones closed."""
        if not self.thread.is_alive():
            return

        async def close() -> None:
            assert self.server is not None
            self.server.close()
            for task in list(self.clients):
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[FakeRouter]:
    r = FakeRouter(tmp_path / "router.sock").start()
    yield r
    r.stop()


def wait_subscribed(mirror: UpcallMirror) -> None:
    deadline = time.monotonic() + 5
    while not mirror.watched:
        assert time.monotonic() < deadline, "the subscription never registered"
        time.sleep(0.01)


def test_upcalls_reach_the_subscriber(router: FakeRouter) -> None:
    sub = MirrorSubscription(router.path, "dp0", snaplen=16)
    try:
        assert sub.info == {"datapath": "dp0", "dp_ifindex": 7, "queue": 4096}
        wait_subscribed(router.mirror)
        packet = bytes(range(98))
        router.mirror.publish(7, PacketCmd.MISS, encode_key(KEY), packet, handled="flow")
        router.mirror.publish(8, PacketCmd.MISS, encode_key(KEY), packet)  # another datapath
        router.mirror.publish_upcall(
            Upcall(PacketCmd.ACTION, 7, KEY, packet, userdata=b"\xab"), handled="drop"
        )
        got = sub.receive(timeout=5)
        assert got is not None and got.handled == "flow"
        assert got.upcall.cmd is PacketCmd.MISS and got.upcall.key == KEY
        assert got.upcall.packet == packet[:16] and got.upcall.length == 98
        assert abs(got.time - time.time()) < 5
        got = sub.receive(timeout=5)
        assert got is not None and got.upcall.cmd is PacketCmd.ACTION
        assert got.upcall.userdata == b"\xab" and got.handled == "drop"
        assert sub.receive(timeout=0.2) is None and not sub.ended
    finally:
        sub.close()
    deadline = time.monotonic() + 5
    while router.mirror.watched:  # the router notices the client left
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_slow_subscriber_costs_the_router_nothing_but_counts_drops(tmp_path: Path) -> None:
    r = FakeRouter(tmp_path / "r.sock", queue=3).start()
    try:
        sub = MirrorSubscription(r.path, None)
        wait_subscribed(r.mirror)

        # Published from here in a burst: the router's loop cannot drain in between.
        def burst() -> None:
            for _ in range(10):
                r.mirror.publish(7, PacketCmd.MISS, encode_key(KEY), b"x")

        r.loop.call_soon_threadsafe(burst)
        received = 0
        while sub.receive(timeout=0.5) is not None:
            received += 1
        assert received == 3 and sub.dropped == 7
        sub.close()
    finally:
        r.stop()


def test_nobody_there(tmp_path: Path) -> None:
    with pytest.raises(RouterUnavailableError):
        MirrorSubscription(tmp_path / "none.sock", "dp0")


def test_the_router_refuses(router: FakeRouter) -> None:
    with pytest.raises(ControlError, match="no datapath dp9"):
        MirrorSubscription(router.path, "dp9")


def test_the_router_stops(router: FakeRouter) -> None:
    sub = MirrorSubscription(router.path, "dp0")
    wait_subscribed(router.mirror)
    router.stop()
    deadline = time.monotonic() + 5
    while not sub.ended:
        assert sub.receive(timeout=0.2) is None
        assert time.monotonic() < deadline
    sub.close()


def test_events_that_do_not_parse() -> None:
    assert parse_event({"event": "dropped", "count": 4}) == 4
    with pytest.raises(Exception, match="unknown upcall mirror event"):
        parse_event({"event": "nope"})
    with pytest.raises(Exception, match="malformed"):
        parse_event({"event": "upcall", "key": "zz"})


def test_drops_counted_from_many_threads_all_reach_the_subscriber(tmp_path: Path) -> None:
    # Every upcall is dropped (a queue of nothing); handler threads count them
    # while the loop reports and resets the count, switching as often as it can.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    r = FakeRouter(tmp_path / "r.sock", queue=0).start()
    sub = MirrorSubscription(r.path, "dp0")
    threads, each = 4, 5000
    try:
        wait_subscribed(r.mirror)
        key = encode_key(KEY)

        def handler() -> None:
            for _ in range(each):
                r.mirror.publish(7, PacketCmd.MISS, key, b"x")

        workers = [threading.Thread(target=handler) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        deadline = time.monotonic() + 10
        while sub.dropped < threads * each and time.monotonic() < deadline:
            assert sub.receive(timeout=0.2) is None
        assert sub.dropped == threads * each
    finally:
        sys.setswitchinterval(interval)
        sub.close()
        r.stop()


@pytest.mark.parametrize("snaplen", ["abc", -1, 0, 65536, True, 1.5])
def test_a_bad_snaplen_is_refused_with_a_reason(router: FakeRouter, snaplen: object) -> None:
    with pytest.raises(ControlError, match="snaplen must be a number of bytes from 1 to 65535"):
        MirrorSubscription(router.path, "dp0", snaplen=snaplen)  # type: ignore[arg-type]
    assert not router.mirror.watched

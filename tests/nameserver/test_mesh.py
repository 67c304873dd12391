"""DNS records over real mesh nodes on loopback (one event loop): spreading, removal,
peers gone and back, refused clocks, and a server that keeps answering through
malformed gossip."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from odpctl.dns.server import Listen
from odpctl.dns.service import DnsConfig, DnsService
from odpctl.errors import NotFoundError, UsageError
from odpctl.mesh.gossip import RawGossipData
from odpctl.mesh.names import name_from_bytes
from odpctl.mesh.node import MeshConfig, MeshNode

FAST: dict[str, Any] = dict(
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
WEB = "web1.odpctl.local."


class Peer:
    def __init__(self, nick: str, state: Path, *, listen: bool = False) -> None:
        self.node = MeshNode(MeshConfig(name=name_from_bytes(nick.encode()), nickname=nick, **FAST))
        self.dns = DnsService(
            self.node,
            DnsConfig(
                state=state / f"{nick}.json", listen=Listen("127.0.0.1", 0) if listen else None
            ),
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.node.listen_port}"

    def addresses(self, hostname: str = WEB) -> tuple[str, ...]:
        return self.dns.records.addresses(hostname)


@asynccontextmanager
async def peers(tmp: Path, *nicks: str, listen: str = "") -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    try:
        for nick in nicks:
            peer = Peer(nick, tmp, listen=nick == listen)
            await peer.node.start()
            await peer.dns.start()
            made.append(peer)
        for peer in made[1:]:
            peer.node.connect([made[0].address])
        yield made
    finally:
        for peer in made:
            await peer.dns.stop()
            await peer.node.stop()


async def until(cond: Any, what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def arun(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def request(peer: Peer, cmd: str, **args: Any) -> Any:
    return peer.dns.handlers()[cmd](args)


def test_names_spread_and_removals_follow(tmp_path: Path) -> None:
    async def go() -> None:
        async with peers(tmp_path, "a", "b", "c") as (a, b, c):
            request(a, "dns_add", name="web1", address="10.32.0.1")
            request(c, "dns_add", name="web1", address="10.32.0.3")
            await until(lambda: all(len(p.addresses()) == 2 for p in (a, b, c)), "spread")
            looked = request(b, "dns_lookup", name="web1")
            assert looked["addresses"] == ["10.32.0.1", "10.32.0.3"]
            request(a, "dns_remove", name="web1")
            await until(lambda: all(p.addresses() == ("10.32.0.3",) for p in (a, b, c)), "removal")
            listed = request(b, "dns_list")["records"]
            assert [(r["address"], r["tombstone"] is not None) for r in listed] == [
                ("10.32.0.1", True),
                ("10.32.0.3", False),
            ]

    arun(go())


def test_a_peer_gone_takes_its_names_and_brings_them_back(tmp_path: Path) -> None:
    async def go() -> None:
        async with peers(tmp_path, "a", "b") as (a, b):
            request(b, "dns_add", name="web1", address="10.32.0.2")
            await until(lambda: a.addresses() == ("10.32.0.2",), "spread")
            await b.dns.stop()
            await b.node.stop()
            await until(lambda: a.addresses() == (), "a drops b's names")
            # b again, from its state file.
            again = Peer("b", tmp_path)
            await again.node.start()
            try:
                assert again.addresses() == ("10.32.0.2",)
                again.node.connect([a.address])
                await until(lambda: a.addresses() == ("10.32.0.2",), "b's names back")
            finally:
                await again.node.stop()

    arun(go())


def test_gossip_from_a_far_off_clock_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        async with peers(tmp_path, "a", "b") as (a, b):
            b.dns.records.clock = lambda: time.time() + 3600
            request(b, "dns_add", name="web1", address="10.32.0.2")
            await until(lambda: a.dns.gossiper.refused_skew > 0, "refusal")
            assert a.addresses() == ()
            assert "ahead of ours" in (a.dns.gossiper.last_refusal or "")

    with caplog.at_level(logging.WARNING, logger="odpctl.dns"):
        arun(go())
    assert any("refused: its clock is 3600 s ahead" in r.getMessage() for r in caplog.records)


def test_the_server_answers_through_malformed_gossip(tmp_path: Path) -> None:
    async def go() -> None:
        async with peers(tmp_path, "a", "b", listen="a") as (a, b):
            request(b, "dns_add", name="web1", address="10.32.0.2")
            await until(lambda: a.addresses() == ("10.32.0.2",), "spread")
            assert a.dns.server is not None
            port = a.dns.server.port
            query = dns.message.make_query(WEB, "A")
            for _ in range(20):
                b.dns.channel.gossip_broadcast(RawGossipData([b"\x92\xcb garbage"]))
            await until(lambda: a.dns.gossiper.malformed >= 20, "garbage arrives")
            answer = await asyncio.to_thread(
                dns.query.udp, query, "127.0.0.1", port=port, timeout=3
            )
            assert answer.rcode() == dns.rcode.NOERROR
            assert [rd.to_text() for rd in answer.answer[0]] == ["10.32.0.2"]
            # The mesh connection survived, and later news still arrives.
            request(b, "dns_add", name="web1", address="10.32.0.9")
            await until(lambda: len(a.addresses()) == 2, "news after garbage")
            assert a.dns.status()["gossip"]["malformed"] >= 20

    arun(go())


def test_names_outside_the_domain_are_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with peers(tmp_path, "a") as (a,):
            for name in ("api.example.com", "odpctl.local."):
                with pytest.raises(UsageError, match="not a name in the domain"):
                    request(a, "dns_add", name=name, address="10.32.0.1")
            with pytest.raises(UsageError, match="invalid IPv4"):
                request(a, "dns_add", name="web1", address="10.32.0.300")
            with pytest.raises(NotFoundError):
                request(a, "dns_remove", name="web1")
            added = request(a, "dns_add", name="Web1.ODPCTL.local", address="10.32.0.1")
            assert added["hostname"] == WEB and added["local"] is True
            assert a.dns.records.generation > 0

    arun(go())

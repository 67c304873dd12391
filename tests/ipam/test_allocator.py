"""IPAM peers over a real mesh on loopback: bootstrap, allocation, space, claims, removal."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from odpctl.errors import NotFoundError, UsageError
from odpctl.ipam.addr import Cidr, format_ip, parse_ip
from odpctl.ipam.allocator import READY
from odpctl.ipam.errors import AddressInUse, NotReady, Refused

from .cluster import (
    RANGE,
    Peer,
    asyncio_test,
    config,
    peer_name,
    rings_agree,
    start_cluster,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


async def stop_all(peers: list[Peer]) -> None:
    for peer in peers:
        await peer.stop()


@asyncio_test
async def test_three_peers_agree_and_allocate_without_duplicates() -> None:
    peers = await start_cluster(3)
    try:
        await wait_for(lambda: rings_agree(peers))
        status = peers[0].ipam.status()
        assert status["state"] == READY
        assert sum(p["owned"] for p in status["peers"]) == RANGE.size
        assert len(status["peers"]) == 3 and all(p["reachable"] for p in status["peers"])
        got = await asyncio.gather(*(peers[i % 3].ipam.allocate(f"c{i}") for i in range(30)))
        assert len(set(got)) == 30
        lo, hi = RANGE.usable()
        assert all(lo <= a < hi for a in got)
        # Idempotent per container ID.
        assert await peers[0].ipam.allocate("c0") == got[0]
    finally:
        await stop_all(peers)


@asyncio_test
async def test_awaiting_consensus_says_how_many_peers_were_heard() -> None:
    peers = await start_cluster(2, init="consensus=4")  # a quorum is 3
    try:
        await wait_for(lambda: peers[0].ipam.paxos is not None and peers[0].ipam.paxos.heard() == 2)
        assert peers[0].ipam.state() == (
            "awaiting consensus",
            "awaiting consensus (2 of 4 peers heard)",
        )
        with pytest.raises(NotReady, match=r"awaiting consensus \(2 of 4 peers heard\)"):
            await peers[1].ipam.allocate("x")
        late = Peer(2, config(4, init="consensus=4"), None)
        await late.start(peers)
        peers.append(late)
        await wait_for(lambda: rings_agree(peers))
        assert len(peers[0].ipam.ring.seeds) == 3
    finally:
        await stop_all(peers)


@asyncio_test
async def test_a_peer_out_of_space_gets_some_from_the_others() -> None:
    peers = await start_cluster(3, cidr=Cidr.parse("10.9.0.0/26"))
    try:
        await wait_for(lambda: rings_agree(peers))
        first = peers[0].ipam
        owned = sum(b - a for a, b in first.ring.owned(first.ourself))
        got = [await first.allocate(f"c{i}") for i in range(owned + 10)]
        assert len(set(got)) == len(got)
        assert first.counters["space_asked"] >= 1
        others = [await peers[1].ipam.allocate(f"d{i}") for i in range(5)]
        assert not set(others) & set(got)
        await wait_for(lambda: rings_agree(peers))
    finally:
        await stop_all(peers)


@asyncio_test
async def test_claims_are_honoured_when_free_and_refused_naming_the_owner() -> None:
    peers = await start_cluster(2)
    try:
        await wait_for(lambda: rings_agree(peers))
        a, b = peers[0].ipam, peers[1].ipam
        mine = a.ring.owned(a.ourself)[0][0] + 5
        assert await a.claim("web", mine) == mine
        assert await a.claim("web", mine) == mine  # again: the same
        with pytest.raises(AddressInUse, match="in use by container web"):
            await a.claim("db", mine)
        with pytest.raises(AddressInUse, match=r"belongs to peer .*\(p0\)"):
            await b.claim("db", mine)
        assert await a.allocate("other") != mine
        with pytest.raises(UsageError, match="invalid container ID"):
            await a.allocate("has space")
    finally:
        await stop_all(peers)


@asyncio_test
async def test_differently_seeded_peers_refuse_each_other() -> None:
    names = [peer_name(i) for i in range(2)]
    seed_a = "seed=" + ",".join(f"{n:012x}" for n in names)
    seed_b = f"seed={names[1]:012x}"
    a = Peer(0, config(2, init=seed_a), None)
    b = Peer(1, config(2, init=seed_b), None)
    await a.start([])
    await b.start([a])
    try:
        await wait_for(lambda: a.ipam.refusals and b.ipam.refusals)
        reason = a.ipam.status()["refused"][0]["reason"]
        assert "ring was made for" in reason and "bootstrapped apart" in reason
        # Each keeps its own ring.
        assert a.ipam.ring.seeds != b.ipam.ring.seeds
    finally:
        await stop_all([a, b])


@asyncio_test
async def test_different_consensus_sizes_refuse_each_other() -> None:
    a = Peer(0, config(2, init="consensus=3"), None)
    b = Peer(1, config(2, init="consensus=5"), None)
    await a.start([])
    await b.start([a])
    try:
        await wait_for(lambda: bool(a.ipam.refusals))
        assert "consensus=5" in a.ipam.status()["refused"][0]["reason"]
    finally:
        await stop_all([a, b])


@asyncio_test
async def test_an_observer_owns_nothing_until_it_asks() -> None:
    peers = await start_cluster(2)
    observer = Peer(9, config(2, init="observer"), None)
    await observer.start(peers)
    try:
        await wait_for(lambda: rings_agree([*peers, observer]))
        assert observer.ipam.ring.owned(observer.ipam.ourself) == []
        addr = await observer.ipam.allocate("x")
        assert observer.ipam.ring.owner(addr) == observer.ipam.ourself
    finally:
        await stop_all([*peers, observer])


@asyncio_test
async def test_rmpeer_refuses_a_live_peer_and_takes_a_dead_ones_ranges() -> None:
    peers = await start_cluster(3)
    try:
        await wait_for(lambda: rings_agree(peers))
        a, b, c = (p.ipam for p in peers)
        with pytest.raises(Refused, match="alive"):
            await a.rmpeer("p2")
        with pytest.raises(Refused, match="cannot remove itself"):
            await a.rmpeer("p0")
        with pytest.raises(NotFoundError):
            await a.rmpeer("nobody")
        total = RANGE.size
        await peers[2].stop()
        await wait_for(
            lambda: (
                c.ourself not in a.node.routes.reachable()
                and c.ourself not in b.node.routes.reachable()
            )
        )
        # Two hosts at once: one takes the ranges, the other is told who does.
        results = await asyncio.gather(a.rmpeer("p2"), b.rmpeer("p2"), return_exceptions=True)
        taken = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, Refused)]
        assert len(taken) == 1 and len(refused) == 1, results
        assert "taking" in refused[0].message or "took" in refused[0].message
        await wait_for(
            lambda: (
                a.ring.owned_counts() == b.ring.owned_counts()
                and c.ourself not in a.ring.owned_counts()
            )
        )
        assert sum(a.ring.owned_counts().values()) == total
        with pytest.raises(Refused, match="took"):
            await (b if taken[0] is results[0] else a).rmpeer("p2")
    finally:
        await stop_all(peers[:2])


@asyncio_test
async def test_a_peer_leaving_for_good_hands_its_ranges_over() -> None:
    peers = await start_cluster(3)
    try:
        await wait_for(lambda: rings_agree(peers))
        leaving = peers[2].ipam
        result = await leaving.leave()
        assert result["addresses"] > 0
        await wait_for(
            lambda: (
                leaving.ourself not in peers[0].ipam.ring.owned_counts() and rings_agree(peers[:2])
            )
        )
    finally:
        await stop_all(peers)


@asyncio_test
async def test_a_restarted_peer_claims_its_addresses_back_first(tmp_path: Path) -> None:
    peers = await start_cluster(2, state=tmp_path)
    try:
        await wait_for(lambda: rings_agree(peers))
        before = {f"c{i}": await peers[1].ipam.allocate(f"c{i}") for i in range(5)}
        assert peers[1].ipam.release("c4") is not None
        await peers[1].stop()
        again = Peer(1, config(2), tmp_path)
        assert again.ipam.allocations() == {k: format_ip(v) for k, v in before.items() if k != "c4"}
        await again.start([peers[0]])
        peers[1] = again
        fresh = await again.ipam.allocate("new")
        assert fresh not in {v for k, v in before.items() if k != "c4"}
        assert await again.ipam.allocate("c1") == before["c1"]
    finally:
        await stop_all(peers)


@asyncio_test
async def test_concurrent_allocations_on_all_peers_never_collide() -> None:
    peers = await start_cluster(4, cidr=Cidr.parse("10.9.0.0/25"))
    try:
        await wait_for(lambda: rings_agree(peers))
        rng = random.Random(7)
        jobs = [peers[rng.randrange(4)].ipam.allocate(f"k{i}") for i in range(110)]
        got = await asyncio.gather(*jobs)
        assert len(set(got)) == 110
        await wait_for(lambda: rings_agree(peers))
        for addr in got:
            owner = peers[0].ipam.ring.owner(addr)
            holder = next(p for p in peers if p.ipam.ourself == owner)
            assert addr in holder.ipam.space.by_addr
        assert parse_ip("10.9.0.0") not in got and parse_ip("10.9.0.127") not in got
    finally:
        await stop_all(peers)


@asyncio_test
async def test_a_peer_removed_while_away_is_told_its_addresses_are_foreign(tmp_path: Path) -> None:
    peers = await start_cluster(2, state=tmp_path)
    try:
        await wait_for(lambda: rings_agree(peers))
        held = await peers[1].ipam.allocate("kept")
        await peers[1].stop()
        await wait_for(lambda: peers[1].ipam.ourself not in peers[0].node.routes.reachable())
        await peers[0].ipam.rmpeer("p1")
        back = Peer(1, config(2), tmp_path)
        await back.start([peers[0]])
        peers[1] = back
        await wait_for(lambda: back.ipam.ring.owner(held) == peers[0].ipam.ourself)
        assert back.ipam.status()["foreign"] == [format_ip(held)]
    finally:
        await stop_all(peers)

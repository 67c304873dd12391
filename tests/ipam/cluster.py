"""In-process IPAM peers: mesh nodes on loopback, each with an allocator, one event loop."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from odpctl.ipam.addr import Cidr
from odpctl.ipam.allocator import Allocator, IpamConfig
from odpctl.ipam.bootstrap import Bootstrap
from odpctl.ipam.store import Store
from odpctl.mesh.names import PeerName
from odpctl.mesh.node import MeshConfig, MeshNode

RANGE = Cidr.parse("10.9.0.0/24")


def peer_name(i: int) -> PeerName:
    return PeerName(0x02AA00000000 + i)


class Peer:
    def __init__(self, i: int, config: IpamConfig, state: Path | None) -> None:
        self.i = i
        self.node = MeshNode(
            MeshConfig(
                name=peer_name(i),
                nickname=f"p{i}",
                listen_host="127.0.0.1",
                listen_port=0,
                discovery=False,
                gossip_interval=2.0,
                heartbeat_interval=1.0,
                heartbeat_timeout=3.0,
                backoff_initial=0.2,
                backoff_max=1.0,
            )
        )
        self.ipam = Allocator(
            self.node, config, Store(state, f"p{i}") if state is not None else None
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.node.listen_port}"

    async def start(self, connect: list[Peer]) -> None:
        await self.node.start()
        self.ipam.start()
        if connect:
            self.node.connect([p.address for p in connect])

    async def stop(self) -> None:
        await self.ipam.stop()
        await self.node.stop()


def config(n: int, *, cidr: Cidr = RANGE, init: str | None = None, **kw: Any) -> IpamConfig:
    return replace(
        IpamConfig(
            range=cidr, bootstrap=Bootstrap.parse(init, n - 1), tick=0.05, settle=0.3, timeout=5.0
        ),
        **kw,
    )


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def start_cluster(n: int, state: Path | None = None, **kw: object) -> list[Peer]:
    """``n`` peers, each connected to the ones started before it."""
    peers: list[Peer] = []
    for i in range(n):
        peer = Peer(i, config(n, **kw), state)  # type: ignore[arg-type]
        await peer.start(list(peers))
        peers.append(peer)
    return peers


def rings_agree(peers: list[Peer]) -> bool:
    first = peers[0].ipam.ring
    return first.made and all(p.ipam.ring.owned_counts() == first.owned_counts() for p in peers)


def asyncio_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop (no plugin needed)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run

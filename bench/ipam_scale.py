#!/usr/bin/env python3
"""IPAM at scale: 100 routers on loopback, in one process, on one event loop.

Run as ``.venv/bin/python bench/ipam_scale.py`` (``--help`` for options).

Each router is a bare `MeshNode` with an `Allocator` (``consensus=N``), given
``--seeds`` addresses of routers started before it, as bench/mesh_converge.py
does.  Phases, each timed from the event that starts it:

- **mesh**: the routers connect; done when every one reaches every other
  (not IPAM's work, reported for scale);
- **consensus**: the allocators' clocks start (their Paxos state has been
  gossiped with the topology already); done when every router holds the
  same ring, made by Paxos among them;
- **allocations**: one router allocates ``--allocations`` addresses one by
  one, with its state log written (as a router does), then as many more
  without the log, side by side;
- **gossip per allocation**: every router allocates ``--spread`` addresses;
  the bytes IPAM puts on the mesh over the next gossip rounds, less what the
  same rounds cost with no allocation (measured just before), per allocation;
- **rmpeer**: a router stops; once the others see it gone, router 0 runs
  rmpeer (which waits ``--settle`` seconds to hear of a competing taker) and
  claims an address of the dead router's range: the time until that claim
  succeeds, and until every router's ring shows the take-over.

All routers share one CPU, so times are upper bounds of what a router on its
own host sees.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odpctl.ipam.addr import Cidr
from odpctl.ipam.allocator import Allocator, IpamConfig
from odpctl.ipam.bootstrap import Bootstrap
from odpctl.ipam.store import Store
from odpctl.mesh.names import name_from_bytes
from odpctl.mesh.node import MeshConfig, MeshNode


async def until(predicate: Callable[[], bool], timeout: float) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"not done within {timeout:g} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


def gossip_bytes(allocators: list[Allocator], what: str = "gossip_bytes") -> int:
    return sum(a.counters[what] for a in allocators)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    n = args.nodes
    cidr = Cidr.parse(args.range)
    ipam = IpamConfig(range=cidr, bootstrap=Bootstrap("consensus", n), settle=args.settle)
    tmp = Path(tempfile.mkdtemp(prefix="odpctl-bench-ipam-"))
    nodes = [
        MeshNode(
            MeshConfig(
                name=name_from_bytes(b"ipam%d" % i),
                nickname=f"r{i}",
                listen_host="127.0.0.1",
                listen_port=0,
                discovery=False,
                gossip_interval=args.gossip_interval,
                backoff_initial=0.5,
                backoff_max=5.0,
                conn_limit=max(128, n + 8),
                accept_rate=1000.0,
                accept_burst=1000,
            )
        )
        for i in range(n)
    ]
    allocators = [
        Allocator(node, ipam, Store(tmp, "r0") if i == 0 else None) for i, node in enumerate(nodes)
    ]
    for node in nodes:
        await node.start()

    # --- mesh ---
    t_mesh = time.perf_counter()
    for i, node in enumerate(nodes[1:], 1):
        seeds = rng.sample(range(i), min(args.seeds, i))
        node.connect(f"127.0.0.1:{nodes[j].listen_port}" for j in seeds)
    await until(lambda: all(len(node.routes.reachable()) == n for node in nodes), args.timeout)
    mesh = time.perf_counter() - t_mesh

    # --- consensus ---
    bytes0 = gossip_bytes(allocators)
    for allocator in allocators:
        allocator.start()
    first = allocators[0].ring

    def agreed() -> bool:
        return first.made and all(a.ring.made and a.ring.tokens == first.tokens for a in allocators)

    consensus = await until(agreed, args.timeout)
    consensus_bytes = gossip_bytes(allocators) - bytes0

    # --- allocations on one router ---
    async def allocate_many(allocator: Allocator, prefix: str, count: int) -> float:
        start = time.perf_counter()
        for i in range(count):
            await allocator.allocate(f"{prefix}{i}")
        return count / (time.perf_counter() - start)

    logged = await allocate_many(allocators[0], "logged-", args.allocations)
    allocators[0].store = None
    unlogged = await allocate_many(allocators[0], "plain-", args.allocations)

    # --- gossip bytes per allocation ---
    # An allocation changes a free count, which its router announces with its next
    # periodic gossip; the whole state that periodic gossip also carries is paid
    # whether anything was allocated or not (reported apart, per router and second).
    window = 2 * args.gossip_interval
    delta = "delta_bytes_received"
    quiet0, state0 = gossip_bytes(allocators, delta), gossip_bytes(allocators)
    await asyncio.sleep(window)
    quiet = gossip_bytes(allocators, delta) - quiet0
    periodic = (gossip_bytes(allocators) - state0) / n / window
    busy0 = gossip_bytes(allocators, delta)
    for allocator in allocators[2:]:
        for i in range(args.spread):
            await allocator.allocate(f"spread-{i}")
    await asyncio.sleep(window)
    busy = gossip_bytes(allocators, delta) - busy0
    spread_count = (n - 2) * args.spread
    per_alloc = max(busy - quiet, 0) / spread_count

    # --- rmpeer ---
    victim, taker = allocators[-1], allocators[0]
    victim_range = first.owned(victim.ourself)[0]
    await victim.stop()
    await nodes[-1].stop()
    await until(lambda: victim.ourself not in taker.node.routes.reachable(), args.timeout)
    t_rm = time.perf_counter()
    await taker.rmpeer(f"r{n - 1}")
    await taker.claim("after-rmpeer", victim_range[0] + 1)
    usable = time.perf_counter() - t_rm
    everywhere = usable + await until(
        lambda: all(victim.ourself not in a.ring.owned_counts() for a in allocators[:-1]),
        args.timeout,
    )

    for allocator, node in zip(allocators[:-1], nodes[:-1], strict=True):
        await allocator.stop()
        await node.stop()

    print(f"IPAM: {n} routers on loopback, one event loop, {args.seeds} seeds each, range {cidr}")
    print(f"  mesh converged             {mesh:8.2f} s   (not IPAM's work)")
    print(
        f"  consensus ({n} peers)      {consensus:8.2f} s   target < 2 s; "
        f"{consensus_bytes / n / 1024:.1f} KiB of IPAM gossip sent per router"
    )
    print(
        f"  allocations on one router  {logged:8,.0f} /s  target >= 5,000 (state log "
        f"written); {unlogged:,.0f} /s without the log: ratio {logged / unlogged:.2f}"
    )
    print(
        f"  gossip per allocation      {per_alloc:8.1f} B    received by all routers "
        f"({spread_count} allocations on {n - 2} routers: {busy / 1024:.1f} KiB of updates "
        f"in {window:g} s, {quiet / 1024:.1f} KiB with none); periodic whole-state gossip "
        f"{periodic:,.0f} B/s per router sent regardless"
    )
    print(
        f"  rmpeer to usable range     {usable:8.2f} s   (of which {args.settle:g} s "
        f"waiting to hear of a competing taker); on every router after {everywhere:.2f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3, help="addresses given to each router")
    p.add_argument("--range", default="10.32.0.0/12")
    p.add_argument("--allocations", type=int, default=5000)
    p.add_argument("--spread", type=int, default=10, help="allocations per router")
    p.add_argument(
        "--gossip-interval",
        type=float,
        default=10.0,
        help="the mesh's periodic gossip (its default; 100 routers gossiping "
        "every second saturate one event loop)",
    )
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(message)s")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 16 * args.nodes + 1024)), hard))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

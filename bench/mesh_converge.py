#!/usr/bin/env python3
"""Mesh convergence: 100 routers on loopback, in one process, on one event loop.

Run as ``.venv/bin/python bench/mesh_converge.py`` (``--help`` for options).

Each router is a bare `MeshNode` (no overlay) listening on 127.0.0.1; router
i is given ``--seeds`` addresses of routers started before it, as operators
give ``--peer``.  By default routers connect to their seeds only (a random
mesh of about 3 connections per router); ``--discovery`` lets them connect
to every peer they learn of, Weave's default, which builds a full mesh
(n(n-1)/2 connections: 4,950 for 100 routers, all handshaking in this one
process).  Two phases, timed from the event that starts them:

- **cold start**: all routers start at once; converged when every router
  holds the same topology (the same peers, each at the same UID and version,
  every peer's own latest), with every peer in it (and with discovery, every
  router has an established connection to every other);
- **a peer leaves**: the last router stops (it says goodbye on its
  connections; a router that vanishes without a word is noticed after three
  heartbeat intervals, 15 s by default, and the rest is the same); converged
  when every remaining router has forgotten it and all again hold the same
  topology.

Gossip bytes are the bytes the routers sent on their mesh connections (frames
and handshakes, as on the wire) during each phase, divided by the number of
routers.  Side by side, the same count if every periodic gossip had carried the
full topology instead of a digest (mesh's way): the ratio is what digests save.

All routers share one CPU (one event loop), so times here are upper bounds of
what a router on its own host sees: every router's work is serialised.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import logging
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odpctl.mesh.connection import ConnState
from odpctl.mesh.names import name_from_bytes
from odpctl.mesh.node import MeshConfig, MeshNode


def topology_digest(node: MeshNode) -> bytes:
    items = sorted(
        (p.name, p.uid, p.version) for p in node.topology.peers.values() if not p.placeholder
    )
    return hashlib.blake2b(repr(items).encode(), digest_size=16).digest()


def converged(nodes: list[MeshNode], full_mesh: bool) -> bool:
    n = len(nodes)
    first = topology_digest(nodes[0])
    for node in nodes:
        if len(node.topology.peers) != n:
            return False
        if full_mesh and sum(c.state == ConnState.ESTABLISHED for c in node.connections()) != n - 1:
            return False
        if topology_digest(node) != first:
            return False
    # Every peer's own entry must have reached everyone at its latest version.
    for node in nodes:
        own = node.topology.ourself
        for other in nodes:
            seen = other.topology.peers.get(node.name)
            if seen is None or (seen.uid, seen.version) != (own.uid, own.version):
                return False
    return True


def bytes_sent(nodes: list[MeshNode]) -> int:
    return sum(node.totals()["bytes_sent"] for node in nodes)


def progress(nodes: list[MeshNode]) -> str:
    established = sum(sum(c.state == ConnState.ESTABLISHED for c in n.connections()) for n in nodes)
    peers = [len(n.topology.peers) for n in nodes]
    digests = len({topology_digest(n) for n in nodes})
    handshaking = sum(len(n._handshaking) for n in nodes)
    return (
        f"established {established // 2}, handshaking {handshaking}, peers known"
        f" {min(peers)}..{max(peers)}, distinct topologies {digests}"
    )


async def wait_converged(
    nodes: list[MeshNode], full_mesh: bool, timeout: float, verbose: bool = False
) -> float:
    start = time.perf_counter()
    last = start
    while time.perf_counter() - start < timeout:
        if converged(nodes, full_mesh):
            return time.perf_counter() - start
        await asyncio.sleep(0.02)
        if verbose and time.perf_counter() - last > 1:
            last = time.perf_counter()
            print(f"  {last - start:6.1f} s: {progress(nodes)}", file=sys.stderr)
    raise TimeoutError(f"no convergence within {timeout:g} s: {progress(nodes)}")


def full_topology_size(node: MeshNode) -> int:
    return sum(len(p) for p in node.topology.encode_update(list(node.topology.peers)))


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    config = dict(
        listen_host="127.0.0.1",
        listen_port=0,
        discovery=args.discovery,
        password=args.password.encode() if args.password else None,
        gossip_interval=args.gossip_interval,
        heartbeat_interval=args.heartbeat,
        heartbeat_timeout=3 * args.heartbeat,
        backoff_initial=0.5,
        backoff_max=5.0,
        conn_limit=max(128, args.nodes + 8),
        accept_rate=1000.0,
        accept_burst=1000,
    )
    nodes = [
        MeshNode(MeshConfig(name=name_from_bytes(b"bench%d" % i), nickname=f"r{i}", **config))
        for i in range(args.nodes)
    ]
    # Listen first (not timed): the seeds must know the ports.
    for node in nodes:
        await node.start()
    ports = [node.listen_port for node in nodes]

    # --- cold start ---
    sent0 = bytes_sent(nodes)
    t0 = time.perf_counter()
    for i, node in enumerate(nodes[1:], 1):
        seeds = rng.sample(range(i), min(args.seeds, i))
        node.connect(f"127.0.0.1:{ports[j]}" for j in seeds)
    cold = await wait_converged(nodes, args.discovery, args.timeout, args.verbose)
    cold_bytes = bytes_sent(nodes) - sent0
    conns = sum(len(n.connections()) for n in nodes) // 2
    del t0

    # --- steady state: what periodic gossip costs ---
    sent1 = bytes_sent(nodes)
    await asyncio.sleep(args.steady)
    steady_bytes = bytes_sent(nodes) - sent1
    full = full_topology_size(nodes[0])
    digest = len(nodes[0].topology.encode_digest())

    # --- a peer leaves ---
    # The last router: nobody depends on it alone (its seeds are all older),
    # so the others stay one mesh.
    leaver = nodes.pop()
    sent2 = bytes_sent(nodes)
    await leaver.stop()
    leave = await wait_converged(nodes, args.discovery, args.timeout, args.verbose)
    leave_bytes = bytes_sent(nodes) - sent2

    for node in nodes:
        await node.stop()

    n = args.nodes
    gossips = args.steady / args.gossip_interval  # periodic gossips per router
    import math

    subset = min(int(2 * math.log2(n)), max(conns * 2 // n, 1))
    discovery = (
        "discovery: full mesh" if args.discovery else f"{args.seeds} seeds each, no discovery"
    )
    print(
        f"mesh convergence: {n} routers on loopback, one event loop"
        f" ({discovery}{', encrypted' if args.password else ''})"
    )
    print(f"  connections            {conns}")
    per_router = "KiB sent per router"
    print(f"  cold start             {cold:8.2f} s   {cold_bytes / n / 1024:10.1f} {per_router}")
    print(
        f"  a peer leaves          {leave:8.2f} s   "
        f"{leave_bytes / (n - 1) / 1024:10.1f} {per_router}"
    )
    print(
        f"  steady, {args.steady:g} s          "
        f"{'':8}     {steady_bytes / n / 1024:10.1f} KiB sent per router "
        f"({steady_bytes / n / args.steady:,.0f} B/s)"
    )
    print(
        f"  full topology {full / 1024:.1f} KiB, digest {digest / 1024:.1f} KiB:"
        f" periodic gossip to {subset} neighbours every {args.gossip_interval:g} s costs"
        f" {subset * digest * gossips / 1024:.1f} KiB per router with digests,"
        f" {subset * full * gossips / 1024:.1f} KiB with full topologies"
        f" (ratio {full / digest:.0f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3, help="addresses given to each router")
    p.add_argument(
        "--discovery", action="store_true", help="connect to every peer learnt of (a full mesh)"
    )
    p.add_argument("--password", help="encrypt the mesh with this password")
    p.add_argument("--gossip-interval", type=float, default=10.0)
    p.add_argument("--heartbeat", type=float, default=5.0)
    p.add_argument("--steady", type=float, default=10.0, help="seconds of steady state measured")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.ERROR, format="%(asctime)s %(message)s"
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.nodes * args.nodes + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    gc.collect()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(run(args))
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()

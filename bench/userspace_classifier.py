#!/usr/bin/env python3
"""Userspace datapath classifier and packet pipeline, without any I/O.

Run as ``.venv/bin/python bench/userspace_classifier.py`` (``--help``).

- **classifier**: 10,000 megaflows (``--flows``) installed through the same
  code as OVS_FLOW_CMD_NEW, spread over ``--masks`` masks; lookups/s of
  packet keys that hit flows spread evenly over every mask, through the
  exact-match cache (a few hundred active connections) and around it (every
  key new: the masked classifier alone), and misses.
- **pipeline**: a whole packet through the datapath as a port hands it
  over (flow key extraction, lookup, statistics, actions), the output
  port a stub that sends nothing: packets/s of the Python side alone, the
  ceiling the socket I/O then lowers.

Each figure is the best of ``--repeat`` runs of ``--seconds``, pinned to one
CPU; ``--profile`` prints where the pipeline's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odpctl.datapath.classifier import DpFlow, FlowTable
from odpctl.datapath.dp import Datapath
from odpctl.datapath.execute import compile_actions
from odpctl.datapath.extract import extract
from odpctl.datapath.keyparse import parse_match
from odpctl.datapath.layout import port_meta
from odpctl.datapath.packet import ZERO_VNET, Packet
from odpctl.datapath.ports import Port
from odpctl.odp.actions import Output
from odpctl.odp.keys import encode_key
from odpctl.odp.text.keys import parse_key

# Masks: prefix lengths on the IPv4 destination, with or without the TCP port.
# Each shape owns a first octet, so that no two flows overlap.
_MASK_SHAPES = [(prefix, port) for prefix in (32, 28, 24, 20) for port in (True, False)]


def tcp_frame(src: int, dst: int, sport: int, dport: int, payload: int = 6) -> bytes:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40 + payload, 1, 0x4000, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x10, 1024, 0, 0)
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + tcp + bytes(payload)


def build_table(n_flows: int, n_masks: int) -> tuple[FlowTable, list[bytes]]:
    """A table of ``n_flows`` over ``n_masks`` masks, and one hitting key per flow."""
    table = FlowTable()
    hits = []
    meta = port_meta(1)
    shapes = _MASK_SHAPES[:n_masks]
    for i in range(n_flows):
        j = i % len(shapes)
        prefix, with_port = shapes[j]
        index = i // len(shapes)
        net = ((10 + j) << 24) | (index << (32 - prefix)) & 0xFFFFFF
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        text = (
            f"in_port(1),eth(),eth_type(0x0800),ipv4(dst={_ip(net)}/{_ip(mask)},proto=6),"
            f"tcp({'dst=80' if with_port else ''}),tcp_flags(0/0)"
        )
        key, m = parse_key(text)
        match = parse_match(encode_key(key), encode_key(m))
        flow = DpFlow(match, None)
        flow.program = compile_actions([Output(2)])
        assert table.find_overlap(match) is None, text
        table.insert(flow)
        frame = tcp_frame(0x0B000001, net | 1, 1000 + i % 50000, 80)
        hits.append(meta + extract(frame))
    return table, hits


def _ip(v: int) -> str:
    return ".".join(str(v >> s & 255) for s in (24, 16, 8, 0))


def rate(fn: Callable[[], int], seconds: float, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        n = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            n += fn()
        best = max(best, n / elapsed)
    return best


class NullPort(Port):
    def send(self, _pkt: Packet) -> None:
        self.tx_packets += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--masks", type=int, default=8, choices=range(1, 9))
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})

    table, keys = build_table(args.flows, args.masks)
    print(f"{len(table)} megaflows over {table.n_masks} masks")
    lookup, classify = table.lookup, table.classify

    hot = keys[:: max(1, len(keys) // 256)]  # a few hundred connections: EMC territory

    def emc_run() -> int:
        for k in hot:
            lookup(k)
        return len(hot)

    def classify_run() -> int:
        for k in keys:
            classify(k)
        return len(keys)

    miss = [k[:-4] + b"\xff\xff\xff\xff" for k in keys[:2000]]

    def miss_run() -> int:
        for k in miss:
            classify(k)
        return len(miss)

    def assert_all_hit() -> None:
        assert all(classify(k) is not None for k in keys), "a key missed its flow"

    assert_all_hit()
    for what, fn in (
        ("lookups through the exact-match cache", emc_run),
        ("masked lookups, every key new", classify_run),
        ("misses (every mask tried)", miss_run),
    ):
        print(f"{what:<39}{rate(fn, args.seconds, args.repeat):>12,.0f} /s")

    # The pipeline: a datapath with this table, a stub output port.
    dp = Datapath("bench", lambda _pid, _msgs, done: done(True), 0x23, lambda _d, _p, _r: None)
    dp.table = table
    dp.ports[2] = NullPort(dp, "null", 2)
    # 256 connections to addresses the /24-and-port flows (first octet 14) cover.
    frames = [
        ZERO_VNET + tcp_frame(0x0B000001, (14 << 24) | i << 8 | 1, 1000 + i, 80) for i in range(256)
    ]
    meta = port_meta(1)
    process = dp.process

    def pipeline_run() -> int:
        for f in frames:
            process(Packet(f, meta), 0)
        return len(frames)

    pps = rate(pipeline_run, args.seconds, args.repeat)
    print(
        f"packets through the pipeline (no I/O)  {pps:>12,.0f} /s   "
        f"(hit={dp.hit} missed={dp.missed})"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(rate, pipeline_run, args.seconds, 1)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()

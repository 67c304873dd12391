"""Synthetic flows, ports and datapaths for the watch tests (no datapath needed)."""

from __future__ import annotations

from odpctl.odp.actions import Output
from odpctl.odp.datapath import Datapath
from odpctl.odp.flow import Flow
from odpctl.odp.text.keys import parse_key
from odpctl.odp.vport import Vport, VportStats
from odpctl.watch.frames import FlowFrame, StatsTracker, flow_tracker


def flow(
    in_port: int,
    proto: str = "ipv4()",
    packets: int = 0,
    nbytes: int = 0,
    out: int = 2,
    used: int = 0,
    ufid: bytes | None = None,
) -> Flow:
    eth_type = "0x0800" if proto.startswith("ipv4") else "0x0806"
    key, mask = parse_key(f"in_port({in_port}),eth(),eth_type({eth_type}),{proto}")
    return Flow(key, mask, [Output(out)], ufid, packets, nbytes, used)


def datapath(hit: int = 0, missed: int = 0, lost: int = 0, flows: int = 0) -> Datapath:
    return Datapath("dp0", 7, hit=hit, missed=missed, lost=lost, flows=flows, masks=2)


def vport(port_no: int, name: str, rx: int = 0, tx: int = 0, size: int = 100) -> Vport:
    stats = VportStats(rx, tx, rx * size, tx * size, 0, 0, 0, 0)
    return Vport(name, port_no=port_no, dp_ifindex=7, stats=stats)


def flow_frames(samples: list[tuple[float, list[Flow], Datapath]]) -> list[FlowFrame]:
    """Frames as `FlowWatcher` makes them, from (time, flows, datapath) samples."""
    tracker = flow_tracker(linger=1.0)
    stats = StatsTracker()
    frames = []
    for now, flows, dp in samples:
        stats_frame = stats.update(dp, now, 1_700_000_000.0 + now)
        frames.append(
            FlowFrame(
                "dp0",
                now,
                1_700_000_000.0 + now,
                stats_frame.interval,
                tracker.update(flows, now),
                len(flows),
                stats_frame,
            )
        )
    return frames

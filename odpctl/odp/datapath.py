"""Datapaths: what the ``ovs_datapath`` family says about one, and its codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attrs_to_dict, get_str, get_u32
from odpctl.odp.uapi import DpAttr, DpFeature

# struct ovs_dp_stats { __u64 n_hit, n_missed, n_lost, n_flows; }
_DP_STATS = struct.Struct("=QQQQ")
# struct ovs_dp_megaflow_stats { __u64 n_mask_hit; __u32 n_masks; __u32 pad0;
#                                __u64 n_cache_hit; __u64 pad1; }
_MEGAFLOW_STATS = struct.Struct("=QI4xQ8x")

NO_FEATURES = DpFeature(0)


@dataclass(slots=True)
class Datapath:
    name: str
    ifindex: int
    hit: int = 0
    missed: int = 0
    lost: int = 0
    flows: int = 0
    mask_hit: int = 0
    masks: int = 0
    cache_hit: int = 0
    features: DpFeature = NO_FEATURES
    masks_cache_size: int | None = None
    upcall_pid: int | None = None
    per_cpu_pids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def lookups(self) -> int:
        return self.hit + self.missed + self.lost

    @property
    def masks_hit_per_packet(self) -> float:
        """Average masks visited per packet looked up, as ``ovs-dpctl show``
        prints it (lost upcalls were looked up too, but ovs-dpctl counts
        hits and misses only)."""
        packets = self.hit + self.missed
        return self.mask_hit / packets if packets else 0.0

    @property
    def cache_hit_rate(self) -> float:
        """Percentage of packets whose mask came from the per-CPU mask cache."""
        packets = self.hit + self.missed
        return self.cache_hit / packets * 100 if packets else 0.0


def decode_datapath(dp_ifindex: int, data: bytes) -> Datapath:
    attrs = attrs_to_dict(data)
    name = attrs.get(DpAttr.NAME)
    if name is None:
        raise DecodeError("datapath reply without a name")
    dp = Datapath(get_str(name), dp_ifindex)
    try:
        stats = attrs.get(DpAttr.STATS)
        if stats is not None:
            dp.hit, dp.missed, dp.lost, dp.flows = _DP_STATS.unpack(stats)
        megaflow = attrs.get(DpAttr.MEGAFLOW_STATS)
        if megaflow is not None:
            dp.mask_hit, dp.masks, dp.cache_hit = _MEGAFLOW_STATS.unpack(megaflow)
        features = attrs.get(DpAttr.USER_FEATURES)
        if features is not None:
            dp.features = DpFeature(get_u32(features))
        cache = attrs.get(DpAttr.MASKS_CACHE_SIZE)
        if cache is not None:
            dp.masks_cache_size = get_u32(cache)
        pid = attrs.get(DpAttr.UPCALL_PID)
        if pid is not None:
            dp.upcall_pid = get_u32(pid)
        pids = attrs.get(DpAttr.PER_CPU_PIDS)
        if pids is not None:
            if len(pids) % 4:
                raise DecodeError(f"per-CPU PID array of {len(pids)} bytes")
            dp.per_cpu_pids = struct.unpack(f"={len(pids) // 4}I", pids)
    except struct.error as exc:
        raise DecodeError(f"malformed datapath reply: {exc}") from None
    return dp


def encode_pids(pids: tuple[int, ...] | list[int]) -> bytes:
    """An array of u32 netlink port ids (per-CPU or per-vport upcall PIDs)."""
    return struct.pack(f"={len(pids)}I", *pids)

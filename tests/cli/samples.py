"""Datapaths, ports and flows built by hand, as a kernel dump would give them."""

from __future__ import annotations

import struct

from odpctl.odp.datapath import Datapath
from odpctl.odp.flow import Flow
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import DpFeature, VportType
from odpctl.odp.vport import Vport, VportStats

NOW = 1_000_000  # the datapath clock (ms) at which outputs are rendered

# As the kernel carries it: four 32-bit words in host order.
UFID = struct.pack("=4I", 0x11111111, 0x22223333, 0x44445555, 0x55555555)
UFID_TEXT = "11111111-2222-3333-4444-555555555555"


def datapath() -> Datapath:
    return Datapath(
        "dp0",
        7,
        hit=1500,
        missed=12,
        lost=3,
        flows=3,
        mask_hit=1800,
        masks=2,
        cache_hit=1200,
        features=DpFeature.UNALIGNED | DpFeature.VPORT_PIDS,
        masks_cache_size=256,
    )


def ports() -> list[Vport]:
    def stats(n: int) -> VportStats:
        return VportStats(n, 2 * n, 100 * n, 200 * n, 0, 1, 2, 0)

    return [
        Vport("va", VportType.NETDEV, 5, 7, stats=stats(3000), ifindex=10),
        Vport("dp0", VportType.INTERNAL, 0, 7, stats=stats(0), ifindex=7),
        Vport("vx0", VportType.VXLAN, 1, 7, dst_port=4790, stats=stats(1), ifindex=11),
        Vport(
            "vxlan_sys_4789",
            VportType.NETDEV,
            2,
            7,
            stats=stats(2),
            ifindex=12,
            upcall_success=5,
            upcall_fail=1,
        ),
        Vport("gnv0", VportType.GENEVE, 3, 7, dst_port=6081, stats=None, ifindex=13),
    ]


def flow(match: str, actions: str, **kw: object) -> Flow:
    key, mask = parse_key(match)
    f = Flow(key, mask, parse_actions(actions))
    for name, value in kw.items():
        setattr(f, name, value)
    return f


def flows() -> list[Flow]:
    return [
        flow(
            "in_port(5),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no)",
            "1",
            packets=12,
            bytes=1176,
            used=NOW - 1234,
        ),
        flow(
            "in_port(1),eth(src=00:01:02:03:04:05),eth_type(0x0806)",
            "set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),2",
            ufid=UFID,
        ),
        flow(
            "in_port(5),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80)",
            "5,1",
            packets=3_000_000,
            bytes=4_500_000_000,
            used=NOW - 42,
            tcp_flags=0x12,
        ),
    ]

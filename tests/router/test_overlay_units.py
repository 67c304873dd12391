"""The overlay's pure parts: VNIs, heartbeats and their verdicts, the MAC cache, revalidation."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from typing import Any

from odpctl.mesh.names import PeerName
from odpctl.odp.actions import Output
from odpctl.odp.keys import Eth, Tunnel
from odpctl.overlay import heartbeat
from odpctl.overlay.flows import local_flow, split_vni, tunnel_flow, tunnel_to, vni
from odpctl.overlay.maccache import Local, MacCache, Remote
from odpctl.overlay.revalidate import GRACE, KEEP, STALE, verdict
from odpctl.overlay.view import MeshView

A, B, C = PeerName(0xA), PeerName(0xB), PeerName(0xC)


def test_vni_carries_both_short_ids() -> None:
    assert vni(0x123, 0x456) == 0x456123
    assert split_vni(vni(4095, 1)) == (4095, 1)


def test_heartbeat_frames_are_sized_to_the_mtu_and_recognised() -> None:
    full = heartbeat.frame(heartbeat.FULL, 0xA, 1376)
    assert len(full) == 1376 + 14
    assert heartbeat.parse(full) == (heartbeat.FULL, 0xA)
    assert heartbeat.parse(heartbeat.frame(heartbeat.SMALL, 7, 1376)) == (heartbeat.SMALL, 7)
    assert heartbeat.parse(b"\xff" * 60) is None


def test_health_says_why_the_fast_path_is_not_used() -> None:
    health = heartbeat.Health(interval=1, timeout=0.05, mtu=1376)
    assert not health.ok and "yet" in health.reason
    health.ack(heartbeat.SMALL)
    health.evaluate(6784)
    assert not health.ok and "path MTU too small" in health.reason
    health.ack(heartbeat.FULL)
    assert health.evaluate(6784) and health.ok
    time.sleep(0.1)
    assert health.evaluate(6784) and not health.ok and "UDP 6784" in health.reason


def test_acks_carry_the_round_trip_and_the_other_clock() -> None:
    health = heartbeat.Health(interval=1, timeout=3.5, mtu=1376)
    health.sending(heartbeat.FULL)
    ack = heartbeat.parse_ack(heartbeat.ack_payload(heartbeat.FULL))
    assert ack is not None and ack[0] == heartbeat.FULL and ack[1] is not None
    # The other end's clock 2 s ahead of ours.
    health.ack(heartbeat.FULL, ack[1] + 2.0)
    report: dict[str, Any] = health.report()
    assert report["rtt_ms"] is not None and 0 <= report["rtt_ms"] < 1000
    assert report["clock_offset_s"] is not None and abs(report["clock_offset_s"] - 2.0) < 0.1
    assert report["last_ack"]["small"] is None and report["last_ack"]["full"] is not None
    health.heard()
    assert health.report()["heartbeats_received"] == 1


def test_an_ack_without_a_clock_is_still_understood() -> None:
    assert heartbeat.parse_ack(bytes([heartbeat.SMALL])) == (heartbeat.SMALL, None)
    assert heartbeat.parse_ack(b"") is None
    assert heartbeat.parse_ack(bytes([7])) is None


def test_mac_cache_reports_moves() -> None:
    macs = MacCache()
    mac = b"\x02\x00\x00\x00\x00\x01"
    assert macs.learn(mac, Local(2)) is None
    assert macs.learn(mac, Local(2)) is None
    assert macs.learn(mac, Remote(B)) == Local(2)
    assert macs.moves == 1
    assert macs.forget_peers({A}) == 1 and macs.lookup(mac) is None


def _view(hop_ip: str = "192.168.0.2") -> MeshView:
    short = {A: 1, B: 2}
    return MeshView(
        ourself=A,
        our_short_id=1,
        short_ids=short,
        next_hops={B: B},
        broadcast={A: (B,), B: ()},
        neighbour_ips={B: hop_ip},
        by_short_id={v: k for k, v in short.items()},
    )


def test_revalidation_keeps_right_flows_and_drops_stale_ones() -> None:
    eth = Eth(b"\x02" * 6, b"\x04" * 6)
    flow = local_flow(2, eth, 0x0800, tunnel_to(vni(1, 2), "192.168.0.2", 1))
    assert verdict(flow, _view(), set(), True) == KEEP
    assert verdict(flow, _view("192.168.0.9"), set(), True) == STALE
    gone = MeshView(ourself=A, our_short_id=1, short_ids={A: 1}, by_short_id={1: A})
    assert verdict(flow, gone, {B}, True) == GRACE  # B restarting: keep its traffic flowing
    flood = local_flow(2, Eth(b"\x02" * 6, b"\xff" * 6), 0x0806, [])
    assert verdict(flood, _view(), set(), False) == KEEP
    assert verdict(flood, _view(), set(), True) == STALE


def test_with_a_password_tunnel_ingress_flows_go_when_vxlan_from_their_source_is_not_taken() -> (
    None
):
    eth = Eth(b"\x02" * 6, b"\x04" * 6)
    tunnel = Tunnel(
        tun_id=vni(2, 1),
        ipv4_src=int(ipaddress.IPv4Address("192.168.0.2")),
        ipv4_dst=int(ipaddress.IPv4Address("192.168.0.1")),
        ttl=64,
    )
    flow = tunnel_flow(3, tunnel, eth, 0x0800, [Output(2)])
    assert verdict(flow, _view(), set(), False) == KEEP  # no password: from anywhere
    esp = dataclasses.replace(_view(), vxlan_from=frozenset({"192.168.0.2"}))
    assert verdict(flow, esp, set(), False) == KEEP
    sealed = dataclasses.replace(_view(), vxlan_from=frozenset())
    assert verdict(flow, sealed, set(), False) == STALE

"""The doctor's checks as functions of facts, and its reading of firewall rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from odpctl.doctor.checks_datapath import datapath_checks
from odpctl.doctor.checks_host import host_checks
from odpctl.doctor.checks_peers import peer_checks
from odpctl.doctor.checks_ports import port_checks
from odpctl.doctor.facts import DatapathFacts, Facts, Link
from odpctl.doctor.firewall import iptables_rules_dropping, nft_rules_dropping
from odpctl.doctor.report import Level, Report
from odpctl.odp.datapath import Datapath
from odpctl.odp.uapi import DpFeature

PORTS: dict[str, tuple[int, ...]] = {"tcp": (6783,), "udp": (6784,)}


def _nft_rule(
    handle: int, match_right: Any, verdict: dict[str, Any], chain: str = "in", proto: str = "udp"
) -> dict[str, Any]:
    return {
        "rule": {
            "family": "inet",
            "table": "t",
            "chain": chain,
            "handle": handle,
            "expr": [
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": proto, "field": "dport"}},
                        "right": match_right,
                    }
                },
                verdict,
            ],
        }
    }


def test_nft_rules_that_drop_the_overlay_ports() -> None:
    ruleset = {
        "nftables": [
            {"chain": {"family": "inet", "table": "t", "name": "in", "hook": "input"}},
            {"chain": {"family": "inet", "table": "t", "name": "out", "hook": "output"}},
            _nft_rule(2, 6784, {"drop": None}),
            _nft_rule(3, {"set": [6783, 80]}, {"reject": {"type": "icmpx"}}, proto="tcp"),
            _nft_rule(4, {"range": [6000, 7000]}, {"drop": None}),
            _nft_rule(5, 6784, {"accept": None}),  # not a drop
            _nft_rule(6, 6784, {"drop": None}, chain="out"),  # leaving, not coming in
            _nft_rule(7, 53, {"drop": None}),
        ]
    }
    found = nft_rules_dropping(ruleset, PORTS)
    assert [(r.proto, r.port, r.where.rsplit(" ", 1)[1]) for r in found] == [
        ("udp", 6784, "2"),
        ("tcp", 6783, "3"),
        ("udp", 6784, "4"),
    ]
    assert found[0].text == "udp dport 6784 drop"
    assert found[0].remove == "nft delete rule inet t in handle 2"
    assert found[2].text == "udp dport 6000-7000 drop"


def test_iptables_rules_that_drop_the_overlay_ports() -> None:
    saved = "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            "-A INPUT -p udp -m udp --dport 6784 -j DROP",
            "-A INPUT -p tcp -m multiport --dports 22,6780:6790 -j REJECT",
            "-A OUTPUT -p udp -m udp --dport 6784 -j DROP",
            "-A INPUT -p udp -m udp --dport 6784 -j ACCEPT",
            "COMMIT",
        ]
    )
    found = iptables_rules_dropping(saved, PORTS)
    assert [(r.proto, r.port) for r in found] == [("udp", 6784), ("tcp", 6783)]
    assert found[0].remove == "iptables -D INPUT -p udp -m udp --dport 6784 -j DROP"


def _datapath(
    features: DpFeature = DpFeature.UNALIGNED, lost: tuple[int, int] = (0, 0), flows: int = 10
) -> DatapathFacts:
    first = Datapath("odp-router", 5, lost=lost[0], flows=flows, features=features)
    second = Datapath("odp-router", 5, lost=lost[1], flows=flows, features=features)
    return DatapathFacts("kernel", "kernel datapath", "odp-router", first, second, 1.0, [])


@pytest.mark.parametrize(
    ("datapath", "name", "level"),
    [
        (_datapath(), "dispatch", Level.ok),
        (_datapath(DpFeature.DISPATCH_UPCALL_PER_CPU), "dispatch", Level.problem),
        (_datapath(lost=(3, 9)), "lost", Level.problem),
        (_datapath(lost=(9, 9)), "lost", Level.ok),
        (_datapath(flows=170_000), "flows", Level.warn),
        (_datapath(flows=190_000), "flows", Level.problem),
    ],
)
def test_datapath_checks(datapath: DatapathFacts, name: str, level: Level) -> None:
    facts = Facts(netns=None, control=Path("/nonexistent"), datapath=datapath)
    (check,) = [c for c in datapath_checks(facts) if c.name == name]
    assert check.level is level
    assert check.fix or level is Level.ok


def test_no_datapath_is_a_problem_with_the_way_out() -> None:
    facts = Facts(netns=None, control=Path("/x"), datapath_error="no datapath available")
    (check,) = datapath_checks(facts)
    assert check.level is Level.problem and "odpctl dp serve" in check.fix
    assert Report([check]).exit_code == 1


def _router_facts(beats: dict[str, Any], link_mtu: int = 1500) -> Facts:
    conn = {
        "address": "10.0.0.2:6783",
        "peer": "aa:bb:cc:dd:ee:ff",
        "nickname": "far",
        "direction": "outbound",
        "state": "established",
        "since": 5.0,
        "encrypted": False,
    }
    status = {
        "name": "11:22:33:44:55:66",
        "nickname": "near",
        "overlay": {
            "fastdp": {
                "udp_port": 6784,
                "mtu": 1376,
                "connections": {"aabbccddeeff": {"ip": "10.0.0.2", **beats}},
            }
        },
        "router": {"mtu": 1376, "connections": [conn], "datapath": {"ifaces": {"c0": 2}}},
    }
    return Facts(
        netns=None,
        control=Path("/x"),
        status=status,
        routes={"10.0.0.2": "eth0"},
        links={
            "eth0": Link("eth0", 2, None, link_mtu, "UP", True),
            "c0": Link("c0", 3, "veth", 1376, "LOWERLAYERDOWN", False),
        },
    )


BEATS = {
    "heartbeats_sent": 10,
    "acks": 10,
    "heartbeats_received": 10,
    "timeout": 3.5,
    "last_ack": {"small": 0.5, "full": 0.5},
    "last_received": 0.4,
    "rtt_ms": 0.3,
    "clock_offset_s": 0.001,
}


@pytest.mark.parametrize(
    ("beats", "says"),
    [
        ({}, "passes both ways"),
        ({"last_ack": {"small": 9.0, "full": 9.0}}, "from here to far (10.0.0.2)"),
        ({"last_received": 9.0}, "from far (10.0.0.2) to here"),
        ({"last_ack": {"small": None, "full": None}, "last_received": None}, "blocked both ways"),
    ],
)
def test_udp_both_ways(beats: dict[str, Any], says: str) -> None:
    (udp,) = [c for c in peer_checks(_router_facts({**BEATS, **beats})) if c.name == "udp"]
    assert says in udp.evidence
    assert (udp.level is Level.ok) == (says == "passes both ways")


def test_path_mtu_and_clock_skew() -> None:
    checks = peer_checks(
        _router_facts(
            {**BEATS, "last_ack": {"small": 0.5, "full": 8.0}, "clock_offset_s": -4.2},
            link_mtu=1400,
        )
    )
    mtu = [c for c in checks if c.name == "mtu"]
    assert [c.level for c in mtu] == [Level.problem, Level.problem]
    assert "MTU 1400" in mtu[0].evidence and "--mtu 1350" in mtu[0].fix
    assert "full-size heartbeats are lost" in mtu[1].evidence
    (clock,) = [c for c in checks if c.name == "clock"]
    assert clock.level is Level.warn and "-4200 ms" in clock.evidence


def test_a_veth_whose_peer_is_down_and_a_device_gone() -> None:
    facts = _router_facts(BEATS)
    assert facts.router is not None
    facts.router["datapath"]["ifaces"]["c9"] = 4
    link, gone = port_checks(facts)
    assert link.level is Level.problem and "veth whose peer is down or gone" in link.evidence
    assert gone.level is Level.problem and "device is gone" in gone.evidence


def test_strict_rp_filter_on_the_underlay_warns() -> None:
    facts = _router_facts(BEATS)
    facts.sysctls = {
        "net/ipv4/conf/all/rp_filter": "0",
        "net/ipv4/conf/eth0/rp_filter": "1",
        "net/ipv4/ip_forward": "0",
    }
    (rp,) = [c for c in host_checks(facts) if c.name == "rp_filter"]
    assert rp.level is Level.warn and "rp_filter=2" in rp.fix

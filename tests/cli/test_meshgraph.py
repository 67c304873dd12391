"""The mesh graph from a router's answers, and its Graphviz text (no router needed)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from odpctl.commands import graphview, meshgraph

STATUS: dict[str, Any] = {
    "name": "aa:00:00:00:00:01",
    "nickname": "near",
    "short_id": 1,
    "overlay": {"fastdp": {"connections": {"aa0000000002": {"rtt_ms": 0.25}}}},
    "router": {
        "datapath": {"ifaces": {"c0": 2}},
        "macs": {
            "ports": {"2": ["02:00:00:00:00:0a"]},
            "peers": {"aa:00:00:00:00:02": ["02:00:00:00:00:0b"]},
        },
        "connections": [
            {
                "peer": "aa:00:00:00:00:02",
                "nickname": 'say "far"',
                "address": "10.0.0.2:6783",
                "state": "established",
                "overlay": "fallback",
                "reason": "UDP 6784 blocked?",
            },
        ],
    },
}
PEERS = {
    "self": "aa:00:00:00:00:01",
    "peers": [
        {
            "name": "aa:00:00:00:00:01",
            "nickname": "near",
            "short_id": 1,
            "self": True,
            "reachable": True,
            "connections": [{"peer": "aa:00:00:00:00:02", "established": True}],
        },
        {
            "name": "aa:00:00:00:00:02",
            "nickname": 'say "far"',
            "short_id": 2,
            "self": False,
            "reachable": True,
            "connections": [
                {"peer": "aa:00:00:00:00:01", "established": True},
                {"peer": "aa:00:00:00:00:03", "established": True},
            ],
        },
        {
            "name": "aa:00:00:00:00:03",
            "nickname": None,
            "short_id": 3,
            "self": False,
            "reachable": True,
            "connections": [],
        },
    ],
}


def test_build_and_dot() -> None:
    graph = meshgraph.build(STATUS, PEERS, {"10.0.0.2": (1500.0, 0.0)})
    assert graph.hosts["aa:00:00:00:00:01"].containers == ["c0 02:00:00:00:00:0a"]
    assert graph.hosts["aa:00:00:00:00:02"].containers == ["02:00:00:00:00:0b"]
    mine, gossiped = graph.links
    # On the fallback: its traffic goes through no flow, so no rate is known.
    assert (mine.overlay, mine.rtt_ms, mine.out_rate) == ("fallback", 0.25, None)
    assert (gossiped.a, gossiped.b, gossiped.state) == (
        "aa:00:00:00:00:02",
        "aa:00:00:00:00:03",
        "gossiped",
    )
    text = graphview.dot(graph)
    assert '"say \\"far\\"\\naa:00:00:00:00:02, short ID 2' in text
    assert '[label="fallback\\nUDP 6784 blocked?\\nRTT 0.25 ms", color=darkorange]' in text


def test_fast_path_connections_carry_their_rates() -> None:
    conn = {**STATUS["router"]["connections"][0], "overlay": "fastdp", "reason": None}
    status = {**STATUS, "router": {**STATUS["router"], "connections": [conn]}}
    (mine, _) = meshgraph.build(status, PEERS, {"10.0.0.2": (1500.0, 0.0)}).links
    assert (mine.out_rate, mine.in_rate) == (1500.0, 0.0)
    assert "RTT 0.25 ms\\nout 1.5 KiB/s, in 0 B/s" in graphview.dot(
        meshgraph.build(status, PEERS, {"10.0.0.2": (1500.0, 0.0)})
    )


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz (./setup installs it)")
def test_graphviz_reads_the_text() -> None:
    text = graphview.dot(meshgraph.build(STATUS, PEERS, {}))
    done = subprocess.run(
        ["dot", "-Tplain"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert sum(1 for line in done.stdout.splitlines() if line.startswith("node ")) == 3

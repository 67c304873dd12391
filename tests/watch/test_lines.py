"""Lines and JSON lines for pipes: what each refresh prints, and the documented keys."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from odpctl.odp.packet import Upcall
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import PacketCmd
from odpctl.odp.upcalls import VportEvent
from odpctl.watch import lines
from odpctl.watch.frames import PortFrame, StatsTracker, TimedEvent, port_tracker
from odpctl.watch.summary import summarize

from .samples import datapath, flow, flow_frames, vport

ICMP_KEY = (
    "in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
    "ipv4(src=10.0.0.1,dst=10.0.0.2,proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)"
)


def three_frames() -> list[Any]:
    return flow_frames(
        [
            (0.0, [flow(1, packets=1), flow(2), flow(3, "arp()")], datapath(hit=1)),
            (
                1.0,
                [flow(1, packets=11, nbytes=980), flow(2), flow(4, packets=2, nbytes=84)],
                datapath(hit=13, missed=1),
            ),
            (
                2.0,
                [flow(1, packets=11, nbytes=980), flow(2), flow(4, packets=2, nbytes=84)],
                datapath(hit=13, missed=1),
            ),
        ]
    )


def test_first_refresh_shows_every_flow_as_present() -> None:
    out = list(lines.flow_lines(three_frames()[0], as_json=True))
    objs = [json.loads(line) for line in out]
    assert objs[0]["event"] == "totals" and objs[0]["rate"] is None and objs[0]["flows"] == 3
    assert [o["state"] for o in objs[1:]] == ["present"] * 3


def test_later_refreshes_show_new_gone_and_busy_flows_only() -> None:
    frame = three_frames()[1]
    objs = [json.loads(line) for line in lines.flow_lines(frame, as_json=True)]
    totals, flows = objs[0], objs[1:]
    assert totals["new"] == 1 and totals["removed"] == 1
    assert totals["rate"] == {"packets": 12.0, "bytes": 1064.0}
    assert totals["lookups"] == {"hit": 12.0, "missed": 1.0, "lost": 0.0}
    states = {o["in_port"]: o["state"] for o in flows}
    assert states == {1: "active", 4: "new", 3: "removed"}  # flow 2 is idle: not shown
    assert {o["in_port"]: o["rate"]["packets"] for o in flows if o["rate"]} == {1: 10.0, 4: 2.0}
    every = [json.loads(line) for line in lines.flow_lines(frame, as_json=True, every=True)]
    assert {o["in_port"]: o["state"] for o in every[1:]}[2] == "idle"


def test_a_removed_flow_is_printed_once() -> None:
    frame = three_frames()[2]
    objs = [json.loads(line) for line in lines.flow_lines(frame, as_json=True)]
    assert [o["event"] for o in objs] == ["totals"]  # nothing moved, nothing came or went


def test_json_objects_have_exactly_the_documented_keys() -> None:
    frame = three_frames()[1]
    objs = [json.loads(line) for line in lines.flow_lines(frame, as_json=True)]
    common = set(lines.COMMON_KEYS)
    assert set(objs[0]) == common | set(lines.TOTALS_KEYS)
    for obj in objs[1:]:
        assert set(obj) == common | set(lines.FLOW_EVENT_KEYS)
    stats = StatsTracker()
    stats.update(datapath(), 0.0, 0.0)
    (line,) = lines.stats_lines(stats.update(datapath(hit=5), 1.0, 1.0), as_json=True)
    assert set(json.loads(line)) == common | set(lines.STATS_KEYS)
    event = TimedEvent(1.0, VportEvent("new", vport(3, "v3")))
    (line,) = lines.port_event_lines([event], "dp0", as_json=True)
    assert set(json.loads(line)) == common | set(lines.PORT_EVENT_KEYS)
    upcall = Upcall(PacketCmd.MISS, 7, parse_key(ICMP_KEY)[0], b"\0" * 98)
    obj = json.loads(lines.upcall_line(1.0, upcall, "dp0", as_json=True))
    assert set(obj) == common | set(lines.UPCALL_KEYS)
    tracker = port_tracker()
    tracker.update([vport(1, "a")], 0.0)
    frame_p = PortFrame("dp0", 1.0, 1.0, 1.0, tracker.update([vport(1, "a", rx=5)], 1.0))
    (line,) = lines.port_rate_lines(frame_p, as_json=True)
    assert set(json.loads(line)) == common | set(lines.PORT_RATES_KEYS)


def test_text_lines() -> None:
    frames = three_frames()
    head, *rest = lines.flow_lines(frames[1], as_json=False)
    assert " dp0 flows 3 new 1 removed 1 12 pkt/s 1.0 KiB/s | hit 12/s missed 1.0/s" in head
    assert any(
        " new " in line and "in_port(4)" in line and "2.0 pkt/s 84 B/s" in line for line in rest
    )
    assert any(line.split()[1] == "removed" and "in_port(3)" in line for line in rest)
    stats = StatsTracker()
    (first,) = lines.stats_lines(stats.update(datapath(hit=3), 0.0, 0.0), as_json=False)
    assert "hit 3 missed 0 lost 0 (totals) flows 0 masks 2" in first
    (second,) = lines.stats_lines(stats.update(datapath(hit=13), 1.0, 1.0), as_json=False)
    assert "hit 10/s missed 0/s lost 0/s hit-ratio 100.0%" in second


def test_port_lines() -> None:
    tracker = port_tracker()
    tracker.update([vport(1, "a"), vport(2, "b")], 0.0)
    frame = PortFrame(
        "dp0", 1.0, 1.0, 1.0, tracker.update([vport(1, "a", rx=5, tx=5), vport(2, "b")], 1.0)
    )
    (line,) = lines.port_rate_lines(frame, as_json=False)
    assert "port 1 a active rx 5.0 pkt/s 500 B/s tx 5.0 pkt/s 500 B/s" in line
    assert len(list(lines.port_rate_lines(frame, as_json=False, every=True))) == 2
    event = TimedEvent(1.0, VportEvent("del", vport(2, "b")))
    (line,) = lines.port_event_lines([event], "dp0", as_json=False)
    assert line.endswith("port del 2: b (netdev)")


def test_upcall_lines() -> None:
    key = parse_key(ICMP_KEY)[0]
    upcall = Upcall(PacketCmd.ACTION, 7, key, b"\0" * 60, userdata=b"\x01\x02", length=98)
    text = lines.upcall_line(0.0, upcall, "dp0", as_json=False, port_names={1: "veth0"})
    assert " action " in text
    assert "10.0.0.1 > 10.0.0.2: ICMP echo request, 98 bytes | in_port(veth0),eth(" in text
    assert text.endswith("userdata:0102")
    obj = json.loads(lines.upcall_line(0.0, upcall, "dp0", as_json=True))
    assert obj["type"] == "action" and obj["length"] == 98 and obj["userdata"] == "0102"
    assert obj["key"].startswith("in_port(1),eth(src=02:00:00:00:00:01")
    assert obj["summary"] == summarize(key, 98)


def test_stats_lines_show_receive_drops_and_what_the_router_did_not_handle() -> None:
    stats = StatsTracker()
    frame = dataclasses.replace(
        stats.update(datapath(hit=3), 0.0, 0.0),
        rx_dropped=1880,
        unhandled={"drop: hairpin": 2, "error: datapath: ENOSPC": 1},
    )
    (text,) = lines.stats_lines(frame, as_json=False)
    assert " rx-dropped 1880 " in text
    assert text.endswith(" unhandled 3 (drop: hairpin 2, error: datapath: ENOSPC 1)")
    (line,) = lines.stats_lines(frame, as_json=True)
    obj = json.loads(line)
    assert obj["rx_dropped"] == 1880 and obj["unhandled"]["drop: hairpin"] == 2

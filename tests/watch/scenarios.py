"""What `odpctl watch` must show on a datapath with traffic, for either datapath.

Each scenario takes a `Bed` with hosts ``a`` and ``b`` plugged in (no flows
yet) and ``odpctl``, a runner of one command line in this process (returns
an object with ``code``, ``out``, ``err``).  tests/watch runs them against
the userspace datapath, tests/kernel against the kernel's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odpctl.odp.actions import Output
from odpctl.odp.flow import Flow
from odpctl.odp.text.keys import parse_key

from .bed import Bed, ip, wait_for

Odpctl = Callable[..., Any]
ODPCTL = str(Path(sys.executable).with_name("odpctl"))


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def watch_while(bed: Bed, argv: list[str], action: Callable[[], None]) -> Result:
    """``odpctl watch ...`` as a process; ``action`` runs once it has printed a line,
    so that what it changes comes after the watch's first look, however slow the
    machine (the guest) is to start a command."""
    proc = subprocess.Popen(
        [ODPCTL, *bed.options, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        action()
        # Not communicate(): it would miss what readline() buffered already.
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Result(proc.returncode, first + out, err)


@dataclass
class Result:
    code: int
    out: str
    err: str


def _add(bed: Bed, text: str, out: int) -> None:
    key, mask = parse_key(text)
    bed.dpif.add_flow(bed.dp, Flow(key, mask, [Output(out)]))


def flows_show_rates_new_and_removed_flows(bed: Bed, a: str, b: str, odpctl: Odpctl) -> None:
    bed.connect(a, b)
    pa, pb = bed.hosts[a], bed.hosts[b]
    doomed = f"in_port({pa}),eth(),eth_type(0x88cc)"
    _add(bed, doomed, pb)
    newcomer = f"in_port({pb}),eth(),eth_type(0x86dd),ipv6()"

    def change() -> None:
        _add(bed, newcomer, pa)
        bed.dpif.delete_flow(bed.dp, parse_key(doomed)[0])

    with bed.pinging(a, b):
        result = watch_while(
            bed, ["watch", "flows", "--json", "--count", "5", "--interval", "0.4"], change
        )
    assert result.code == 0, result.err
    objs = json_lines(result.out)
    totals = [o for o in objs if o["event"] == "totals"]
    assert len(totals) == 5 and totals[0]["rate"] is None
    assert all(t["rate"]["packets"] > 0 for t in totals[1:]), totals
    assert all(t["lookups"]["hit"] > 0 for t in totals[1:]), totals
    flows = [o for o in objs if o["event"] == "flow"]
    busy = [o for o in flows if o["state"] == "active" and "0x0800" in o["match"]]
    assert {o["in_port"] for o in busy} == {pa, pb}
    assert all(o["rate"]["packets"] > 0 and o["rate"]["bytes"] > 0 for o in busy)
    # The newcomer is new once (then active, should a stray IPv6 packet match it).
    newcomer_states = [o["state"] for o in flows if "0x86dd" in o["match"]]
    assert newcomer_states[:1] == ["new"] and "new" not in newcomer_states[1:], flows
    assert [o["state"] for o in flows if "0x88cc" in o["match"]] == ["present", "removed"]
    assert sum(t["new"] for t in totals) == 1 and sum(t["removed"] for t in totals) == 1
    # Filtered, in plain lines: only what matches, and a line per refresh at least.
    with bed.pinging(a, b):
        result = odpctl(
            "watch",
            "flows",
            "--count",
            "3",
            "--interval",
            "0.3",
            "--filter",
            f"in_port={pa},eth_type=0x0800",
        )
    assert result.code == 0, result.err
    heads = [line for line in result.out.splitlines() if " dp" in line and " flows " in line]
    assert len(heads) == 3 and all("(1 shown)" in h for h in heads)
    assert all(f"in_port({pa})" in line for line in result.out.splitlines() if line not in heads)


def stats_show_hit_rates(bed: Bed, a: str, b: str, odpctl: Odpctl) -> None:
    bed.connect(a, b)
    with bed.pinging(a, b):
        result = odpctl("watch", "stats", "--json", "--count", "3", "--interval", "0.3")
    assert result.code == 0, result.err
    objs = json_lines(result.out)
    assert len(objs) == 3 and objs[0]["rates"] is None
    assert all(o["rates"]["hit"] > 0 and o["hit_ratio"] > 50 for o in objs[1:]), objs
    assert objs[-1]["lookups"]["hit"] > objs[0]["lookups"]["hit"]
    assert objs[0]["flows"] == 4


def vports_show_events_and_rates(bed: Bed, a: str, b: str, _odpctl: Odpctl) -> None:
    from odpctl.odp.vport import Vport

    bed.connect(a, b)
    ip("-n", bed.ns, "link", "add", "wx0", "type", "veth", "peer", "name", "wx1")
    # Up: the userspace datapath drops a port whose device is down (the kernel keeps it).
    for end in ("wx0", "wx1"):
        ip("-n", bed.ns, "link", "set", end, "up")

    def churn() -> None:
        bed.dpif.add_vport(bed.dp, Vport("wx0"))
        bed.dpif.delete_vport(bed.dp, "wx0")

    with bed.pinging(a, b):
        result = watch_while(
            bed, ["watch", "vports", "--json", "--count", "5", "--interval", "0.4"], churn
        )
    assert result.code == 0, result.err
    objs = json_lines(result.out)
    events = [(o["kind"], o["port"]["name"]) for o in objs if o["event"] == "port"]
    assert events == [("new", "wx0"), ("del", "wx0")]
    rates = [o for o in objs if o["event"] == "port_rates" and o["state"] == "active"]
    assert {o["port_no"] for o in rates} >= {bed.hosts[a], bed.hosts[b]}
    assert all(o["rates"]["rx_packets"] > 0 for o in rates if o["port_no"] == bed.hosts[a])


def upcalls_tap_shows_misses_and_gives_back(
    bed: Bed, a: str, b: str, odpctl: Odpctl, *options: str
) -> None:
    before = {v.port_no: v.upcall_pids for v in bed.dpif.list_vports(bed.dp)}

    def ping() -> None:
        subprocess.run(
            ["ip", "netns", "exec", a, "ping", "-c", "2", "-i", "0.2", "-W", "1", bed.addresses[b]],
            capture_output=True,
            timeout=20,
        )

    # In this process: the tap must be open before the ping, and nothing is
    # printed before an upcall, so the ping waits for the PIDs to be borrowed.
    def borrowed_then_ping() -> None:
        wait_for(
            lambda: any(v.upcall_pids != (0,) for v in bed.dpif.list_vports(bed.dp)),
            timeout=30,
            what="the tap to borrow the PIDs",
        )
        ping()

    pinger = threading.Thread(target=borrowed_then_ping, daemon=True)
    pinger.start()
    result = odpctl(
        "watch",
        "upcalls",
        "--json",
        "--source",
        "tap",
        *options,
        "--count",
        "2",
        "--duration",
        "30s",
    )
    pinger.join(30)
    assert result.code == 0, result.err
    assert "borrowing the upcall PIDs of its 3 ports" in result.err
    objs = json_lines(result.out)
    assert len(objs) == 2
    for obj in objs:
        assert obj["type"] == "miss" and obj["in_port"] == bed.hosts[a]
        assert obj["summary"].startswith("ARP, who-has 10.0.0.2 tell 10.0.0.1")
        assert "eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1" in obj["key"]
    after = {v.port_no: v.upcall_pids for v in bed.dpif.list_vports(bed.dp)}
    assert after == before

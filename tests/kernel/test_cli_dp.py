"""``odpctl dp`` against a real datapath, checked against ovs-dpctl where it runs."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from odpctl.errors import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE
from odpctl.present import jsonout

from .cli_fixtures import (  # noqa: F401  (fixtures, known by their names)
    Backend,
    Result,
    backend_fixture,
    kernel_fixture,
    kodpctl_fixture,
    odpctl_fixture,
    ovs_fixture,
    veth,
)

Odpctl = Callable[..., Result]


def test_add_list_show_delete(odpctl: Odpctl, backend: Backend) -> None:
    empty = odpctl("dp", "list")
    assert empty.code == 0 and "no datapaths" in empty.out
    assert odpctl("dp", "list", "--json").json() == {"datapaths": []}

    assert odpctl("dp", "add", "dpa").code == 0
    assert odpctl("dp", "list", "-f", "odp").lines() == [f"{backend.prefix}@dpa"]
    (doc,) = odpctl("dp", "list", "--json").json()["datapaths"]
    assert list(doc) == [k for k in jsonout.DATAPATH_KEYS if k != "ports"]
    assert (doc["name"], doc["type"], doc["flows"]) == ("dpa", backend.prefix, 0)
    table = odpctl("dp", "list").out
    assert "dpa" in table and "1 datapath, 1 port, 0 flows" in table

    shown = odpctl("dp", "show", "--json").json()["datapaths"][0]
    assert [(p["port_no"], p["name"], p["type"]) for p in shown["ports"]] == [
        (0, "dpa", "internal")
    ]
    assert odpctl("dp", "del", "dpa", "--json").json() == {"deleted": "dpa"}
    assert odpctl("dp", "list", "--json").json() == {"datapaths": []}


def test_show_matches_ovs_dpctl(
    kodpctl: Odpctl, kernel: Backend, ovs: Callable[..., str], run: Callable[..., str]
) -> None:
    # No device here is up, so no packet changes the counters between the two looks.
    run("ip", "link", "add", "sa", "type", "veth", "peer", "name", "sb", netns=kernel.ns)
    assert kodpctl("dp", "add", "dps", "sa").code == 0
    for args in (
        ["in0", "-t", "internal", "--port-no", "7"],
        ["vx0", "-t", "vxlan"],
        ["vx1", "-t", "vxlan", "--dst-port", "4790"],
        ["gnv0", "-t", "geneve"],
        ["gret0", "-t", "gre"],
    ):
        assert kodpctl("vport", "add", "dps", *args).code == 0, args
    ours = kodpctl("dp", "show", "dps", "-f", "odp").lines()
    theirs = ovs("show", "dps").splitlines()
    # Debian's ovs-dpctl (3.1) has no mask cache hit line yet, and shows a fresh
    # tunnel device's defaults as options where odpctl shows the datapath's.
    assert "  cache: hit:0 hit-rate:0.00%" in ours
    ours.remove("  cache: hit:0 hit-rate:0.00%")

    def tunnel_options_out(line: str) -> str:
        return re.sub(r" \((vxlan|geneve|gre)[^)]*\)", r" (\1)", line)

    assert [tunnel_options_out(x) for x in ours] == [tunnel_options_out(x) for x in theirs]
    assert "  port 1: sa" in ours
    assert "  port 7: in0 (internal)" in ours
    assert any(re.fullmatch(r"  port \d+: vx1 \(vxlan: dst_port=4790\)", x) for x in ours)


def test_show_statistics(
    odpctl: Odpctl, backend: Backend, run: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # room for every column of the table
    veth(run, backend.ns, "ta")
    assert odpctl("dp", "add", "dpt", "ta").code == 0
    lines = odpctl("dp", "show", "-s", "-f", "odp").lines()
    at = lines.index("  port 1: ta")
    assert re.fullmatch(
        r"    RX packets:\d+ errors:\d+ dropped:\d+ overruns:\? frame:\?", lines[at + 1]
    )
    table = odpctl("dp", "show", "-s").out
    assert "RX packets" in table and "ta" in table and "features" in table
    doc = odpctl("dp", "show", "dpt", "-s", "--json").json()["datapaths"][0]
    assert set(doc["ports"][1]["stats"]) == {
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "rx_errors",
        "tx_errors",
        "rx_dropped",
        "tx_dropped",
    }


def test_datapath_left_out_only_when_there_is_one(odpctl: Odpctl, backend: Backend) -> None:
    none = odpctl("flow", "dump")
    assert none.code == EXIT_NOT_FOUND and "odpctl dp add NAME" in none.err
    odpctl("dp", "add", "one")
    assert odpctl("flow", "dump", "--json").json()["datapath"] == "one"
    assert odpctl("vport", "list", "--json").json()["datapath"] == "one"
    odpctl("dp", "add", "two")
    several = odpctl("flow", "dump")
    assert several.code == EXIT_USAGE
    assert "there are 2 datapaths (one, two): name the one you mean" in several.err
    # ovs-dpctl's own spelling of a name works too.
    assert odpctl("flow", "dump", f"{backend.prefix}@two", "--json").json()["datapath"] == "two"


def test_set_keeps_what_it_does_not_change(kodpctl: Odpctl, ovs: Callable[..., str]) -> None:
    kodpctl("dp", "add", "dpc")
    before = kodpctl("dp", "show", "--json").json()["datapaths"][0]
    after = kodpctl("dp", "set", "dpc", "--masks-cache-size", "128", "--json").json()["datapath"]
    assert after["cache"]["size"] == 128
    assert after["features"] == before["features"]  # the kernel clears what SET leaves out
    assert "masks-cache: size:128" in ovs("cache-get-size", "dpc")
    assert kodpctl("dp", "set", "dpc", "--upcall-pid", "0").code == 0


def test_refusals(odpctl: Odpctl) -> None:
    odpctl("dp", "add", "dpr")
    again = odpctl("dp", "add", "dpr")
    assert again.code == EXIT_REFUSED
    assert again.err.startswith("odpctl: error: create datapath dpr: File exists")
    for argv in (["dp", "del", "nosuch"], ["dp", "show", "nosuch"], ["flow", "dump", "nosuch"]):
        missing = odpctl(*argv)
        assert missing.code == EXIT_NOT_FOUND, argv
        assert missing.err == "odpctl: error: no datapath nosuch (see `odpctl dp list`)\n"


def test_completion_names(odpctl: Odpctl, backend: Backend, run: Callable[..., str]) -> None:
    veth(run, backend.ns, "na")
    odpctl("dp", "add", "dpn", "na")
    odpctl("dp", "add", "dpm")
    assert odpctl("_names", "dp").lines() == ["dpm", "dpn"]
    assert odpctl("_names", "port", "dpn").lines() == ["dpn", "na"]
    # Silent, and successful, when there is nothing to say.
    assert odpctl("_names", "port", "nosuch") == Result(0, "", "")

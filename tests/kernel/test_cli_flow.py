"""``odpctl flow`` against a real datapath; ``--format odp`` against ovs-dpctl, byte for byte."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from odpctl.errors import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE
from odpctl.present import jsonout

from .cli_fixtures import (  # noqa: F401  (fixtures, known by their names)
    ODPCTL,
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
UFID = "ufid:11111111-2222-3333-4444-555555555555"
IPV4 = "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no)"


@pytest.fixture
def ports(odpctl: Odpctl, backend: Backend, run: Callable[..., str]) -> None:
    """Datapath dpf with ports 1 (fa) and 2 (fb), veths with their far ends
    down, so that no packet disturbs the counters."""
    for name in ("fa", "fb"):
        run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p", netns=backend.ns)
    assert odpctl("dp", "add", "dpf", "fa", "fb").code == 0


@pytest.mark.usefixtures("ports")
def test_add_dump_get_mod_del(odpctl: Odpctl) -> None:
    added = odpctl("flow", "add", IPV4, "2")
    assert (added.code, added.out, added.err) == (0, "", "")
    line = f"{IPV4}, packets:0, bytes:0, used:never, actions:2"
    assert odpctl("flow", "dump", "-f", "odp").lines() == [line]
    assert odpctl("flow", "get", "dpf", IPV4, "-f", "odp").lines() == [line]
    got = odpctl("flow", "get", IPV4, "--json").json()
    assert got["datapath"] == "dpf" and list(got["flow"]) == list(jsonout.FLOW_KEYS)
    assert (got["flow"]["match"], got["flow"]["actions"], got["flow"]["in_port"]) == (IPV4, "2", 1)

    modified = odpctl("flow", "mod", IPV4, "fa", "--json").json()  # a port by name
    assert (modified["modified"], modified["added"], modified["failed"]) == (1, 0, 0)
    assert odpctl("flow", "get", IPV4, "-f", "odp").lines() == [
        line.replace("actions:2", "actions:1")
    ]
    assert odpctl("flow", "del", IPV4, "-s").lines() == ["packets:0, bytes:0, used:never"]
    assert odpctl("flow", "dump", "--json").json() == {"datapath": "dpf", "flows": [], "total": 0}
    assert "0 flows" in odpctl("flow", "dump").out


@pytest.mark.usefixtures("ports")
def test_port_names_in_flows(odpctl: Odpctl) -> None:
    assert odpctl("flow", "add", "in_port(fb),eth(),eth_type(0x0806),arp()", "fa,fb").code == 0
    assert odpctl("flow", "dump", "-f", "odp").lines() == [
        "in_port(2),eth(),eth_type(0x0806), packets:0, bytes:0, used:never, actions:1,2"
    ]
    assert odpctl("flow", "dump", "-f", "odp", "--names").lines() == [
        "in_port(fb),eth(),eth_type(0x0806), packets:0, bytes:0, used:never, actions:fa,fb"
    ]
    unknown = odpctl("flow", "add", "in_port(nosuch),eth()", "1")
    assert unknown.code == EXIT_USAGE
    assert unknown.err.splitlines()[1:] == ["  in_port(nosuch),eth()", "          ^"]


# --- the same text as ovs-dpctl ----------------------------------------------------------

FLOWS = [
    (IPV4, "2"),
    (
        "in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.0.0.2,dst=10.1.0.0/255.255.0.0,proto=6,frag=no),tcp(dst=80),tcp_flags(0/0)",
        "1",
    ),
    (
        f"{UFID},in_port(1),eth(src=00:01:02:03:04:05),eth_type(0x0806),arp()",
        "set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),2",
    ),
    (
        "recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)",
        "push_vlan(vid=10,pcp=0),1",
    ),
    ("in_port(1),eth(),eth_type(0x0800),ipv4(proto=1,frag=no),icmp()", "1,2"),
]


@pytest.fixture
def kports(kodpctl: Odpctl, kernel: Backend, run: Callable[..., str]) -> None:
    for name in ("fa", "fb"):
        run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p", netns=kernel.ns)
    assert kodpctl("dp", "add", "dpf", "fa", "fb").code == 0


@pytest.mark.usefixtures("kports")
@pytest.mark.parametrize("writer", ["odpctl", "ovs-dpctl"])
def test_odp_format_is_ovs_dpctl_dump_flows(
    kodpctl: Odpctl, ovs: Callable[..., str], writer: str
) -> None:
    for match, actions in FLOWS:
        if writer == "odpctl":
            assert kodpctl("flow", "add", match, actions).code == 0, match
        else:
            ovs("add-flow", "dpf", match, actions)
    # The datapath's own order on both sides: the same lines, in the same order.
    assert kodpctl("flow", "dump", "-f", "odp", "--sort", "none").out == ovs("dump-flows", "dpf")
    assert kodpctl("flow", "dump", "-f", "odp", "--sort", "none", "-m").out == ovs(
        "dump-flows", "-m", "dpf"
    )
    assert kodpctl("flow", "get", UFID, "-f", "odp").out == ovs("get-flow", "dpf", UFID)
    # And what odpctl deletes is gone for ovs-dpctl too.
    assert kodpctl("flow", "del", UFID).code == 0
    assert kodpctl("flow", "del", IPV4).code == 0
    assert len(ovs("dump-flows", "dpf").splitlines()) == len(FLOWS) - 2


@pytest.mark.usefixtures("ports")
def test_ufid(odpctl: Odpctl) -> None:
    match, actions = FLOWS[2]
    assert odpctl("flow", "add", match, actions).code == 0
    (flow,) = odpctl("flow", "dump", "--json").json()["flows"]
    assert flow["ufid"] == UFID[5:]
    assert not odpctl("flow", "dump", "-f", "odp").out.startswith("ufid:")  # as ovs-dpctl
    assert odpctl("flow", "dump", "-f", "odp", "-m").out.startswith(f"{UFID}, ")
    line = odpctl("flow", "get", UFID, "-m", "-f", "odp").out
    assert line.startswith(f"{UFID}, ") and "in_port(fa)" in line  # -m names ports
    assert odpctl("flow", "get", UFID, "--no-names", "-m", "-f", "odp").out.count("in_port(1)")
    deleted = odpctl("flow", "del", UFID, "--json").json()
    assert deleted["deleted"] == 1 and deleted["flows"][0]["ufid"] == UFID[5:]
    assert odpctl("flow", "get", UFID).code == EXIT_NOT_FOUND


@pytest.mark.usefixtures("ports")
def test_refusals(odpctl: Odpctl, backend: Backend) -> None:
    odpctl("flow", "add", IPV4, "2")
    again = odpctl("flow", "add", IPV4, "2")
    assert again.code == EXIT_REFUSED
    assert "odpctl flow mod" in again.err and again.err.count("\n") == 1
    other = IPV4.replace("10.0.0.1", "10.0.0.9")
    for argv in (["flow", "del", other], ["flow", "get", other], ["flow", "mod", other, "1"]):
        missing = odpctl(*argv)
        assert missing.code == EXIT_NOT_FOUND, argv
        assert "no such flow in datapath dpf" in missing.err and "ufid" in missing.err
    bad = odpctl("flow", "add", "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.300)", "2")
    assert bad.code == EXIT_USAGE and bad.err.count("\n") == 3
    if backend.kernel:
        # A tunnel match without a TTL: the kernel's "Invalid argument".
        refused = odpctl("flow", "add", "tunnel(tun_id=0x1,dst=10.0.0.1),in_port(1),eth()", "2")
        assert refused.code == EXIT_REFUSED
        assert "Invalid argument" in refused.err


@pytest.mark.usefixtures("ports")
def test_mod_may_create_and_flush(odpctl: Odpctl) -> None:
    created = odpctl("flow", "mod", "--may-create", IPV4, "2", "--json").json()
    assert (created["added"], created["modified"]) == (1, 0)
    assert odpctl("flow", "mod", "-c", IPV4, "1", "--json").json()["modified"] == 1
    assert odpctl("flow", "flush", "--json").json() == {"datapath": "dpf", "flushed": True}
    assert odpctl("flow", "dump", "--json").json()["flows"] == []


# --- traffic: statistics, filters, orders -----------------------------------------------


def test_traffic(
    odpctl: Odpctl, backend: Backend, run: Callable[..., str], netns: Callable[[], str]
) -> None:
    a, b = netns(), netns()
    eth_a = veth(run, backend.ns, "ta", peer_ns=a)
    eth_b = veth(run, backend.ns, "tb", peer_ns=b)
    run("ip", "addr", "add", "10.201.0.1/24", "dev", eth_a, netns=a)
    run("ip", "addr", "add", "10.201.0.2/24", "dev", eth_b, netns=b)
    odpctl("dp", "add", "dpx", "ta", "tb")
    for in_port, out_port in ((1, 2), (2, 1)):
        for proto in ("eth_type(0x0806),arp()", "eth_type(0x0800),ipv4(frag=no)"):
            assert (
                odpctl("flow", "add", f"in_port({in_port}),eth(),{proto}", str(out_port)).code == 0
            )
    run("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.201.0.2", netns=a)

    flows = odpctl("flow", "dump", "--json").json()["flows"]
    ipv4 = [f for f in flows if "0x0800" in f["match"]]
    assert all(f["packets"] >= 3 and f["used"] is not None for f in ipv4)

    recent = odpctl("flow", "dump", "--used-within", "30s", "--json").json()
    assert {f["match"] for f in ipv4} <= {f["match"] for f in recent["flows"]}
    assert recent["total"] == 4

    picked = odpctl("flow", "dump", "--filter", "in_port=1,eth_type=0x0800", "--json").json()
    assert [f["match"] for f in picked["flows"]] == [
        "in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)"
    ]
    by_name = odpctl("flow", "dump", "--filter", "in_port=ta,eth_type=0x0800", "--json").json()
    assert [f["match"] for f in by_name["flows"]] == [f["match"] for f in picked["flows"]]

    busiest = odpctl("flow", "dump", "--sort", "packets", "--json").json()["flows"]
    assert [f["packets"] for f in busiest] == sorted((f["packets"] for f in busiest), reverse=True)
    by_key = [f["match"] for f in odpctl("flow", "dump", "--json").json()["flows"]]
    assert by_key == [f["match"] for f in sorted(flows, key=lambda f: (f["in_port"], f["match"]))]

    odp = odpctl("flow", "dump", "-f", "odp").out
    assert re.search(r"packets:[1-9]\d*, bytes:[1-9]\d*, used:\d+\.\d{3}s, actions:2", odp)
    table = odpctl("flow", "dump").out
    assert "4 flows" in table and "packets" in table

    match = "in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)"
    assert odpctl("flow", "mod", "--clear", match, "2").code == 0
    assert odpctl("flow", "get", match, "--json").json()["flow"]["packets"] == 0
    run("ping", "-c", "1", "-W", "2", "10.201.0.2", netns=a)
    final = odpctl("flow", "del", match, "-s").out
    assert re.fullmatch(r"packets:[1-9]\d*, bytes:\d+, used:\d+\.\d{3}s\n", final)
    assert len(odpctl("vport", "list", "-s").out.splitlines()) > 3


# --- many flows from a file --------------------------------------------------------------


def _lines(n: int) -> list[str]:
    return [
        f"in_port(1),eth(),eth_type(0x0800),ipv4(src=10.2.{i >> 8}.{i & 255},frag=no) 2"
        for i in range(n)
    ]


@pytest.mark.usefixtures("ports")
def test_bulk(odpctl: Odpctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = tmp_path / "flows"
    text = [
        "# 500 flows and two bad lines",
        *_lines(500),
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.3.0.x,frag=no) 2",  # line 502
        _lines(1)[0],
    ]  # line 503: there already
    flows.write_text("\n".join(text) + "\n")
    result = odpctl("flow", "add", "--file", str(flows), "--json")
    assert result.code == EXIT_USAGE  # the first failure's
    doc = json.loads(result.out)
    assert (doc["added"], doc["failed"]) == (500, 2)
    assert [e["line"] for e in doc["errors"]] == [502, 503]
    assert [e["exit_code"] for e in doc["errors"]] == [EXIT_USAGE, EXIT_REFUSED]
    assert result.err.startswith(f"odpctl: error: {flows}:502: column ")
    assert f"{flows}:503: add flow: File exists (EEXIST)" in result.err
    assert odpctl("flow", "dump", "--json").json()["total"] == 500

    mods = tmp_path / "mods"
    mods.write_text("".join(f"modify {line[:-2]} 1\n" for line in _lines(100)))
    assert odpctl("flow", "add", "--file", str(mods)).out == "100 modified\n"
    assert sum(f["actions"] == "1" for f in odpctl("flow", "dump", "--json").json()["flows"]) == 100

    # Deletions from standard input, with the default command set by `flow del`.
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(line[:-2] + "\n" for line in _lines(500))))
    assert odpctl("flow", "del", "dpf", "--file", "-").out == "500 deleted\n"
    assert odpctl("flow", "dump", "--json").json()["total"] == 0


# --- the installed command, in a namespace, as a script runs it -------------------------


def test_real_command(kernel: Backend, ovs: Callable[..., str]) -> None:
    def odpctl_bin(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ODPCTL, "--netns", kernel.ns, *argv], capture_output=True, text=True, timeout=120
        )

    made = odpctl_bin("dp", "add", "dpreal", "--json")
    assert made.returncode == 0
    assert json.loads(made.stdout)["datapath"]["name"] == "dpreal"
    assert "system@dpreal" in ovs("dump-dps")
    refused = odpctl_bin("flow", "add", "tunnel(tun_id=0x1,dst=10.0.0.1),in_port(0),eth()", "0")
    assert refused.returncode == EXIT_REFUSED
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr

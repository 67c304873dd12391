"""``odpctl vport`` against a real datapath, checked against ovs-dpctl where it runs."""

from __future__ import annotations

import re
from collections.abc import Callable

from odpctl.errors import EXIT_NOT_FOUND
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


def test_add_list_delete(odpctl: Odpctl, backend: Backend, run: Callable[..., str]) -> None:
    veth(run, backend.ns, "pa")
    veth(run, backend.ns, "pb")
    odpctl("dp", "add", "dpv")
    added = odpctl("vport", "add", "dpv", "pa", "--port-no", "5", "--json").json()
    assert added["datapath"] == "dpv"
    assert (added["port"]["port_no"], added["port"]["name"], added["port"]["type"]) == (
        5,
        "pa",
        "netdev",
    )
    assert odpctl("vport", "add", "dpv", "pb").code == 0
    assert odpctl("vport", "add", "dpv", "in1", "-t", "internal").code == 0

    doc = odpctl("vport", "list", "--json").json()
    assert doc["datapath"] == "dpv"
    ports = {p["name"]: p for p in doc["ports"]}
    assert set(ports) == {"dpv", "pa", "pb", "in1"}
    for p in doc["ports"]:
        assert list(p) == list(jsonout.PORT_KEYS)
    assert ports["in1"]["type"] == "internal"
    assert [p["port_no"] for p in doc["ports"]] == sorted(p["port_no"] for p in doc["ports"])

    assert "  port 5: pa" in odpctl("vport", "list", "-f", "odp").lines()
    table = odpctl("vport", "list").out
    assert "pa" in table and "internal" in table and "4 ports" in table

    # By name, and by number.
    assert odpctl("vport", "del", "dpv", "pb").code == 0
    assert odpctl("vport", "del", "dpv", "5", "--json").json()["deleted"]["name"] == "pa"
    assert {p["name"] for p in odpctl("vport", "list", "--json").json()["ports"]} == {"dpv", "in1"}


def test_json_carries_a_tunnel_ports_default_options(odpctl: Odpctl) -> None:
    odpctl("dp", "add", "dpg")
    assert odpctl("vport", "add", "dpg", "gnv0", "-t", "geneve").code == 0
    assert odpctl("vport", "add", "dpg", "vx0", "-t", "vxlan", "--dst-port", "4790").code == 0
    ports = {p["name"]: p for p in odpctl("vport", "list", "--json").json()["ports"]}
    assert ports["gnv0"]["options"] == {"dst_port": "6081"}
    assert ports["vx0"]["options"] == {"dst_port": "4790"}
    # People's views leave the default out, as ovs-dpctl does.
    assert "  port 1: gnv0 (geneve)" in odpctl("vport", "list", "-f", "odp").lines()


def test_tunnel_ports(kodpctl: Odpctl, ovs: Callable[..., str]) -> None:
    kodpctl("dp", "add", "dpt")
    assert (
        kodpctl("vport", "add", "dpt", "vx0", "-t", "vxlan", "--dst-port", "4790", "--gbp").code
        == 0
    )
    assert kodpctl("vport", "add", "dpt", "gnv0", "-t", "geneve").code == 0
    # (not gre0: the kernel makes a gre0 of its own in every namespace)
    assert kodpctl("vport", "add", "dpt", "gret0", "-t", "gre").code == 0
    # A tunnel device as current Open vSwitch makes them, attached as a netdev.
    ovs("add-if", "dpt", "vx1,type=vxlan,remote_ip=flow,key=flow,dst_port=4789")
    ports = {p["name"]: p for p in kodpctl("vport", "list", "--json").json()["ports"]}
    assert ports["vx0"]["type"] == "vxlan"
    assert ports["vx0"]["options"] == {"dst_port": "4790", "exts": "gbp"}
    # --json carries the effective options, the defaults too (the tables omit those)
    assert ports["gnv0"]["type"] == "geneve"
    assert ports["gnv0"]["options"] == {"dst_port": "6081"}
    assert ports["vxlan_sys_4789"]["options"] == {"dst_port": "4789"}
    assert ports["gret0"]["type"] == "gre"
    assert ports["vxlan_sys_4789"]["type"] == "vxlan"
    assert ports["vxlan_sys_4789"]["vport_type"] == "netdev"

    shown = ovs("show", "dpt")
    theirs = {(int(m[1]), m[2]) for m in re.finditer(r"port (\d+): (\S+)", shown)}
    ours = {(p["port_no"], p["name"]) for p in ports.values()}
    assert ours == theirs


def test_set_upcall_pids(odpctl: Odpctl, backend: Backend, run: Callable[..., str]) -> None:
    veth(run, backend.ns, "ua")
    odpctl("dp", "add", "dpu", "ua")
    changed = odpctl("vport", "set", "dpu", "ua", "--upcall-pid", "4242", "--json").json()
    assert changed["port"]["upcall_pids"] == [4242]
    (port,) = [p for p in odpctl("vport", "list", "--json").json()["ports"] if p["name"] == "ua"]
    assert port["upcall_pids"] == [4242]


def test_ports_of_another_datapath_are_left_alone(
    odpctl: Odpctl, backend: Backend, run: Callable[..., str]
) -> None:
    veth(run, backend.ns, "oa")
    odpctl("dp", "add", "dpo1", "oa")
    odpctl("dp", "add", "dpo2")
    for argv in (
        ["vport", "del", "dpo2", "oa"],
        ["vport", "set", "dpo2", "oa", "--upcall-pid", "1"],
    ):
        refused = odpctl(*argv)
        assert refused.code == EXIT_NOT_FOUND
        assert "belongs to another datapath" in refused.err
    assert "oa" in {p["name"] for p in odpctl("vport", "list", "dpo1", "--json").json()["ports"]}


def test_missing_ports_and_devices(odpctl: Odpctl) -> None:
    odpctl("dp", "add", "dpm")
    for argv in (
        ["vport", "del", "dpm", "nosuch"],
        ["vport", "del", "dpm", "42"],
        ["vport", "add", "dpm", "nosuchdev"],
    ):
        missing = odpctl(*argv)
        assert missing.code == EXIT_NOT_FOUND, (argv, missing)
        assert missing.err.startswith("odpctl: error: ") and missing.err.count("\n") == 1

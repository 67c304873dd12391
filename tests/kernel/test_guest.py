"""The kernel test bed itself works.

These use only the kernel, iproute2 and Open vSwitch's ovs-dpctl - not odpctl -
so that a failure here points at the guest, not at our library.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def test_datapath_modules_are_loaded() -> None:
    # testbed/guest-init preloads these (ipv6 first, see there)
    for module in ("ipv6", "openvswitch", "vport_vxlan", "veth"):
        assert Path("/sys/module", module).is_dir(), f"module {module} not loaded"


def test_modules_load_on_demand(run: Callable[..., str], netns: Callable[[], str]) -> None:
    # Neither module is preloaded. The first comes through `modprobe` on PATH, the
    # second through the kernel's own autoloader (/proc/sys/kernel/modprobe), which
    # creating a geneve device triggers.
    run("modprobe", "vport-gre")
    assert Path("/sys/module/vport_gre").is_dir()
    ns = netns()
    run("ip", "link", "add", "gnv0", "type", "geneve", "id", "7", "remote", "192.0.2.1", netns=ns)
    assert Path("/sys/module/geneve").is_dir()


def test_datapath_add_show_delete(ovs_dpctl: Callable[..., str], datapath_name: str) -> None:
    ovs_dpctl("add-dp", datapath_name)
    shown = ovs_dpctl("show", datapath_name)
    assert f"system@{datapath_name}:" in shown
    assert f"port 0: {datapath_name} (internal)" in shown
    ovs_dpctl("del-dp", datapath_name)
    with pytest.raises(subprocess.CalledProcessError, match="No such device"):
        ovs_dpctl("show", datapath_name)


def test_vxlan_vport(ovs_dpctl: Callable[..., str], datapath_name: str) -> None:
    # A flow-based VXLAN port, as the overlay router uses. Creating it is where the
    # UML guest deadlocks if ipv6 was not loaded beforehand.
    ovs_dpctl("add-dp", datapath_name)
    ovs_dpctl(
        "add-if", datapath_name, "vx1,type=vxlan,port_no=3,remote_ip=flow,key=flow,dst_port=4789"
    )
    assert "port 3: vxlan_sys_4789 (vxlan" in ovs_dpctl("show", datapath_name)


def _packets_by_flow(dump: str) -> dict[tuple[int, str], int]:
    """``ovs-dpctl dump-flows`` output -> {(in_port, eth_type): packets}."""
    flows = {}
    for line in dump.splitlines():
        m = re.search(r"in_port\((\d+)\).*eth_type\((0x[0-9a-f]+)\).*packets:(\d+)", line)
        if m:
            flows[int(m[1]), m[2]] = int(m[3])
    return flows


def test_ping_through_datapath(
    run: Callable[..., str],
    netns: Callable[[], str],
    veth_pair: Callable[..., tuple[str, str]],
    ovs_dpctl: Callable[..., str],
    datapath_name: str,
) -> None:
    # Two "containers" (namespaces a, b), each with a veth whose outer end is a port
    # of the datapath. The datapath is their only link, so ping can only work
    # through the flows installed here (there is no ovs-vswitchd to handle misses).
    a, b = netns(), netns()
    port_a, eth_a = veth_pair(netns=a)
    port_b, eth_b = veth_pair(netns=b)
    run("ip", "addr", "add", "10.200.0.1/24", "dev", eth_a, netns=a)
    run("ip", "addr", "add", "10.200.0.2/24", "dev", eth_b, netns=b)

    dp = datapath_name
    ovs_dpctl("add-dp", dp)
    ovs_dpctl("add-if", dp, f"{port_a},port_no=1")
    ovs_dpctl("add-if", dp, f"{port_b},port_no=2")
    for in_port, out_port in ((1, 2), (2, 1)):
        for eth_type in ("eth_type(0x0806),arp()", "eth_type(0x0800),ipv4()"):
            ovs_dpctl("add-flow", dp, f"in_port({in_port}),eth(),{eth_type}", str(out_port))

    run("ping", "-c", "2", "-W", "2", "10.200.0.2", netns=a)

    packets = _packets_by_flow(ovs_dpctl("dump-flows", dp))
    assert packets[1, "0x0800"] >= 2, packets  # echo requests a -> b
    assert packets[2, "0x0800"] >= 2, packets  # echo replies b -> a
    assert packets[1, "0x0806"] >= 1, packets  # a's ARP request for b

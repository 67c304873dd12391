"""Real packets through the kernel datapath, driven by the library.

Topology of every test: a "switch" namespace holding the datapath, and host
namespaces each joined to it by a veth pair whose outer end is a vport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from odpctl.odp.actions import Action, Output, Userspace
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import PacketCmd, VportType
from odpctl.odp.vport import Vport

from .switch import LearningSwitch


@dataclass
class Switch:
    """A datapath in its own namespace, with hosts plugged into it."""

    ns: str
    dpif: Dpif
    dp_name: str
    hosts: dict[str, int] = field(default_factory=dict)  # host netns -> port number


@pytest.fixture
def switch(netns: Callable[[], str]) -> Iterator[Switch]:
    ns = netns()
    with Dpif.open("kernel", netns=ns) as dpif:
        dpif.create_datapath("sw")
        yield Switch(ns, dpif, "sw")


def plug_host(
    switch: Switch, host_ns: str, address: str, run: Callable[..., str], upcall_pid: int = 0
) -> int:
    """A veth from ``host_ns`` (holding ``address``) into the datapath; its port number."""
    outer = f"p{len(switch.hosts)}"
    run(
        "ip",
        "link",
        "add",
        outer,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        host_ns,
        netns=switch.ns,
    )
    run("ip", "link", "set", outer, "up", netns=switch.ns)
    run("ip", "addr", "add", address, "dev", "eth0", netns=host_ns)
    run("ip", "link", "set", "eth0", "up", netns=host_ns)
    port = switch.dpif.add_vport(switch.dp_name, Vport(outer, upcall_pids=(upcall_pid,)))
    assert port.port_no is not None
    switch.hosts[host_ns] = port.port_no
    return port.port_no


def ping(run: Callable[..., str], ns: str, address: str, count: int = 2) -> str:
    return run("ping", "-c", str(count), "-i", "0.2", "-W", "2", address, netns=ns)


def test_ping_on_flows_installed_by_the_library(
    switch: Switch, netns: Callable[[], str], run: Callable[..., str]
) -> None:
    a, b = netns(), netns()
    pa = plug_host(switch, a, "10.0.0.1/24", run)
    pb = plug_host(switch, b, "10.0.0.2/24", run)
    for src, dst in ((pa, pb), (pb, pa)):
        for text in (
            f"in_port({src}),eth(),eth_type(0x0806),arp()",
            f"in_port({src}),eth(),eth_type(0x0800),ipv4()",
        ):
            key, mask = parse_key(text)
            switch.dpif.add_flow(switch.dp_name, Flow(key, mask, [Output(dst)]))
    ping(run, a, "10.0.0.2")
    flows = list(switch.dpif.dump_flows(switch.dp_name))
    assert sum(f.packets for f in flows) >= 4
    assert all(f.used for f in flows if f.packets)


def test_learning_switch_on_misses_and_execute(
    switch: Switch, netns: Callable[[], str], run: Callable[..., str]
) -> None:
    a, b = netns(), netns()
    # The controller gets its own Dpif: one per thread is the rule that keeps
    # the miss path off the test's socket.
    with (
        Dpif.open("kernel", netns=switch.ns) as controller_dpif,
        controller_dpif.open_upcall_channel() as channel,
    ):
        pa = plug_host(switch, a, "10.0.0.1/24", run, channel.port_id)
        pb = plug_host(switch, b, "10.0.0.2/24", run, channel.port_id)
        controller = LearningSwitch(controller_dpif, switch.dp_name, [pa, pb], channel)
        controller.start()
        try:
            ping(run, a, "10.0.0.2", count=1)
            assert controller.stats.flows_installed >= 1
            before = switch.dpif.get_datapath(switch.dp_name)
            ping(run, a, "10.0.0.2", count=3)
            after = switch.dpif.get_datapath(switch.dp_name)
        finally:
            controller.stop()
        assert controller.stats.errors == 0, controller.last_error
        assert channel.overruns == 0
    # The later pings hit the installed flows, in both directions.
    assert after.hit - before.hit >= 6
    flows = {
        (f.key.in_port, f.key.eth.src if f.key.eth else None): f.packets
        for f in switch.dpif.dump_flows(switch.dp_name)
    }
    assert any(packets >= 3 for (port, _), packets in flows.items() if port == pa)
    assert any(packets >= 3 for (port, _), packets in flows.items() if port == pb)


def test_userspace_action_upcall_carries_userdata(
    switch: Switch, netns: Callable[[], str], run: Callable[..., str]
) -> None:
    a, b = netns(), netns()
    pa = plug_host(switch, a, "10.0.0.1/24", run)
    pb = plug_host(switch, b, "10.0.0.2/24", run)
    userdata = bytes.fromhex("0102030405060708")
    with switch.dpif.open_upcall_channel() as channel:
        for src, dst in ((pa, pb), (pb, pa)):
            key, mask = parse_key(f"in_port({src}),eth(),eth_type(0x0800),ipv4()")
            actions: list[Action] = [Userspace(channel.port_id, userdata, None, False), Output(dst)]
            switch.dpif.add_flow(switch.dp_name, Flow(key, mask, actions))
            key, mask = parse_key(f"in_port({src}),eth(),eth_type(0x0806),arp()")
            switch.dpif.add_flow(switch.dp_name, Flow(key, mask, [Output(dst)]))
        ping(run, a, "10.0.0.2", count=1)
        upcall = channel.receive(timeout=5)
    assert upcall is not None
    assert upcall.cmd == PacketCmd.ACTION
    assert upcall.userdata == userdata
    assert upcall.key.in_port in (pa, pb)
    assert upcall.key.eth_type == 0x0800


def test_ping_through_vxlan_to_a_linux_vxlan_device(
    switch: Switch, netns: Callable[[], str], run: Callable[..., str]
) -> None:
    a, far = netns(), netns()
    pa = plug_host(switch, a, "10.0.0.1/24", run)
    # underlay: switch 192.168.99.1 <-> far 192.168.99.2
    run(
        "ip",
        "link",
        "add",
        "u0",
        "type",
        "veth",
        "peer",
        "name",
        "u1",
        "netns",
        far,
        netns=switch.ns,
    )
    run("ip", "addr", "add", "192.168.99.1/24", "dev", "u0", netns=switch.ns)
    run("ip", "link", "set", "u0", "up", netns=switch.ns)
    run("ip", "addr", "add", "192.168.99.2/24", "dev", "u1", netns=far)
    run("ip", "link", "set", "u1", "up", netns=far)
    run(
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "42",
        "remote",
        "192.168.99.1",
        "local",
        "192.168.99.2",
        "dstport",
        "4789",
        netns=far,
    )
    run("ip", "addr", "add", "10.0.0.3/24", "dev", "vx0", netns=far)
    run("ip", "link", "set", "vx0", "up", netns=far)
    vx = switch.dpif.add_vport(switch.dp_name, Vport("vxlan_sys_4789", VportType.VXLAN))
    flows = [
        (
            f"in_port({pa}),eth(),eth_type(0x0800),ipv4()",
            f"set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),{vx.port_no}",
        ),
        (
            f"in_port({pa}),eth(),eth_type(0x0806),arp()",
            f"set(tunnel(tun_id=0x2a,dst=192.168.99.2,ttl=64,tp_dst=4789,flags(df|key))),{vx.port_no}",
        ),
        (
            f"tunnel(tun_id=0x2a,src=192.168.99.2,dst=192.168.99.1,ttl=64/0,flags(+key)),"
            f"in_port({vx.port_no}),eth(),eth_type(0x0800),ipv4()",
            str(pa),
        ),
        (
            f"tunnel(tun_id=0x2a,src=192.168.99.2,dst=192.168.99.1,ttl=64/0,flags(+key)),"
            f"in_port({vx.port_no}),eth(),eth_type(0x0806),arp()",
            str(pa),
        ),
    ]
    for key_text, actions_text in flows:
        key, mask = parse_key(key_text)
        switch.dpif.add_flow(switch.dp_name, Flow(key, mask, parse_actions(actions_text)))
    ping(run, a, "10.0.0.3", count=3)
    by_port = {
        f.key.in_port: f.packets
        for f in switch.dpif.dump_flows(switch.dp_name)
        if f.key.eth_type == 0x0800
    }
    assert by_port[pa] >= 3 and by_port[vx.port_no] >= 3

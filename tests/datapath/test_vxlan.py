"""Tunnels: VXLAN with a Linux vxlan device on the far side, Geneve between datapaths.

The underlay is a veth pair between the datapath's namespace (10.99.0.1)
and a "remote" namespace (10.99.0.2) that terminates the tunnel with an
ordinary Linux vxlan device, so the datapath's encapsulation has to be the
real thing both ways.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.flow import Flow
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import KeyAttr, PacketCmd, VportType
from odpctl.odp.vport import Vport

from .conftest import Host
from .test_traffic import iperf, ping

LOCAL, REMOTE = "10.99.0.1", "10.99.0.2"
VNI = 0x2A
INNER_MTU = 1450  # 1500 less the 50 bytes of VXLAN encapsulation


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@dataclass
class Tunnel:
    dp: DpRef
    port: int  # the datapath's host port
    vxlan: int  # the datapath's vxlan port
    host: Host  # on the datapath's side
    remote: Host  # behind the Linux vxlan device


@pytest.fixture
def vxlan_setup(
    dpif: Dpif,
    dp_ns: str,
    netns: Callable[[], str],
    host: Callable[[str], tuple[Host, str]],
) -> Tunnel:
    remote_ns = netns()
    sh(
        "ip",
        "-n",
        dp_ns,
        "link",
        "add",
        "u0",
        "type",
        "veth",
        "peer",
        "name",
        "u1",
        "netns",
        remote_ns,
    )
    sh("ip", "-n", dp_ns, "addr", "add", f"{LOCAL}/24", "dev", "u0")
    sh("ip", "-n", dp_ns, "link", "set", "u0", "up")
    sh("ip", "-n", remote_ns, "addr", "add", f"{REMOTE}/24", "dev", "u1")
    sh("ip", "-n", remote_ns, "link", "set", "u1", "up")
    sh(
        "ip",
        "-n",
        remote_ns,
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        str(VNI),
        "dstport",
        "4789",
        "remote",
        LOCAL,
        "local",
        REMOTE,
        "dev",
        "u1",
    )
    sh("ip", "-n", remote_ns, "addr", "add", "192.168.50.2/24", "dev", "vx0")
    sh("ip", "-n", remote_ns, "link", "set", "vx0", "up")
    dp = dpif.create_datapath("dpx")
    h, h_if = host("192.168.50.1/24")
    sh("ip", "-n", h.ns, "link", "set", h.ifname, "mtu", str(INNER_MTU))
    port = dpif.add_vport(dp, Vport(h_if)).port_no or 0
    vxlan = dpif.add_vport(dp, Vport("vxlan_sys_4789", VportType.VXLAN, dst_port=4789)).port_no
    assert vxlan is not None
    remote = Host(remote_ns, "vx0", "192.168.50.2", "")
    return Tunnel(dp, port, vxlan, h, remote)


def add(dpif: Dpif, dp: DpRef, key: str, actions: str) -> None:
    k, m = parse_key(key)
    dpif.add_flow(dp, Flow(k, m, parse_actions(actions)))


def install(dpif: Dpif, t: Tunnel) -> None:
    add(
        dpif,
        t.dp,
        f"in_port({t.port}),eth()",
        f"set(tunnel(tun_id={VNI:#x},dst={REMOTE},ttl=64,flags(key))),{t.vxlan}",
    )
    add(
        dpif,
        t.dp,
        f"tunnel(tun_id={VNI:#x},src={REMOTE},dst={LOCAL},ttl=64/0,flags(+key)),"
        f"in_port({t.vxlan}),eth()",
        str(t.port),
    )


def test_ping_through_vxlan(dpif: Dpif, vxlan_setup: Tunnel) -> None:
    install(dpif, vxlan_setup)
    ping(vxlan_setup.host, vxlan_setup.remote.ip, count=4)
    ping(vxlan_setup.host, vxlan_setup.remote.ip, size=3000, count=2)  # fragments


def test_tcp_through_vxlan(dpif: Dpif, vxlan_setup: Tunnel) -> None:
    install(dpif, vxlan_setup)
    assert iperf(vxlan_setup.host, vxlan_setup.remote) > 5e6
    assert iperf(vxlan_setup.remote, vxlan_setup.host) > 5e6


def test_tunnel_metadata_of_a_miss(dpif: Dpif, vxlan_setup: Tunnel) -> None:
    t = vxlan_setup
    with dpif.open_upcall_channel() as channel:
        dpif.set_vport(t.dp, t.vxlan, upcall_pids=[channel.port_id])
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                t.remote.ns,
                "ping",
                "-c",
                "3",
                "-i",
                "0.3",
                "-W",
                "1",
                "192.168.50.1",
            ],
            capture_output=True,
        )
        # The remote's own IPv6 chatter (router solicitations, MLD) may come first.
        deadline = time.monotonic() + 5
        upcall = channel.receive(timeout=5)
        while (
            upcall is not None
            and upcall.key.get(KeyAttr.ETHERTYPE) != 0x0806
            and time.monotonic() < deadline
        ):
            upcall = channel.receive(timeout=max(0.1, deadline - time.monotonic()))
    assert upcall is not None and upcall.cmd == PacketCmd.MISS
    assert upcall.in_port == t.vxlan
    tun = upcall.key[KeyAttr.TUNNEL]
    assert tun.tun_id == VNI
    assert (tun.ipv4_src, tun.ipv4_dst) == (0x0A630002, 0x0A630001)
    assert tun.tp_dst == 4789 and tun.ttl
    assert upcall.key[KeyAttr.ETHERTYPE] == 0x0806  # the remote's ARP request


def test_geneve_between_two_userspace_datapaths(
    dp_ns: str,
    netns: Callable[[], str],
    socket_dir: str,
) -> None:
    # Two userspace datapaths, one per "host" namespace, over one underlay.
    from .conftest import start_server_thread

    other_ns = netns()
    sh(
        "ip",
        "-n",
        dp_ns,
        "link",
        "add",
        "g0",
        "type",
        "veth",
        "peer",
        "name",
        "g1",
        "netns",
        other_ns,
    )
    sh("ip", "-n", dp_ns, "addr", "add", "10.98.0.1/24", "dev", "g0")
    sh("ip", "-n", other_ns, "addr", "add", "10.98.0.2/24", "dev", "g1")
    sh("ip", "-n", dp_ns, "link", "set", "g0", "up")
    sh("ip", "-n", other_ns, "link", "set", "g1", "up")
    servers = [
        start_server_thread(f"{socket_dir}/a.sock", dp_ns),
        start_server_thread(f"{socket_dir}/b.sock", other_ns),
    ]
    try:
        ends = []
        for server, local, remote, ns, cidr in (
            (servers[0], "10.98.0.1", "10.98.0.2", dp_ns, "192.168.60.1/24"),
            (servers[1], "10.98.0.2", "10.98.0.1", other_ns, "192.168.60.2/24"),
        ):
            h, h_if = _host_in(ns, netns, cidr)
            d = Dpif.open(f"unix:{server.path}")
            dp = d.create_datapath("gdp")
            port = d.add_vport(dp, Vport(h_if)).port_no
            gnv = d.add_vport(dp, Vport("geneve0", VportType.GENEVE)).port_no
            opts = "geneve({class=0x102,type=0x80,len=4,0xa1b2c3d4})"
            add(
                d,
                dp,
                f"in_port({port}),eth()",
                f"set(tunnel(tun_id=0x7,dst={remote},ttl=64,{opts},flags(key))),{gnv}",
            )
            add(
                d,
                dp,
                f"tunnel(tun_id=0x7,src={remote},dst={local},ttl=64/0,"
                f"geneve({{class=0x102,type=0x80,len=4,0xa1b2c3d4}}),flags(+key)),"
                f"in_port({gnv}),eth()",
                str(port),
            )
            ends.append((d, dp, h))
        ping(ends[0][2], "192.168.60.2", count=3)
        for d, _, _ in ends:
            d.close()
    finally:
        for server in servers:
            server.stop()


def _diagnose(clients: list[Dpif], namespaces: list[str]) -> None:
    """Print what the ports and the hosts' TCP stacks saw, for a failure's report."""
    for d in clients:
        for dp in d.list_datapaths():
            for p in d.list_vports(dp):
                print(d.endpoint.describe(), p.name, p.stats)
    for ns in namespaces:
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "nstat",
                "-az",
                "TcpRetransSegs",
                "TcpInCsumErrors",
                "TcpInSegs",
                "TcpOutSegs",
                "IpInHdrErrors",
                "IpInDiscards",
                "IpInAddrErrors",
            ],
            capture_output=True,
            text=True,
        ).stdout
        links = subprocess.run(
            ["ip", "-n", ns, "-s", "-s", "link"], capture_output=True, text=True
        ).stdout
        print(ns, out, links)


def _host_in(dp_ns: str, netns: Callable[[], str], cidr: str) -> tuple[Host, str]:
    """A host namespace wired to ``dp_ns`` (the ``host`` fixture's, for a second datapath)."""
    import secrets

    ns = netns()
    tag = secrets.token_hex(3)
    outer, inner = f"go{tag}", f"gi{tag}"
    sh("ip", "-n", dp_ns, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
    sh("ip", "-n", dp_ns, "link", "set", outer, "up")
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "set", inner, "mtu", "1400")
    sh("ip", "-n", ns, "addr", "add", cidr, "dev", inner)
    sh("ip", "-n", ns, "link", "set", inner, "up")
    return Host(ns, inner, cidr.split("/")[0], ""), outer


@pytest.mark.kernel
def test_userspace_vxlan_talks_to_the_kernel_datapath(
    netns: Callable[[], str], socket_dir: str
) -> None:
    # The kernel datapath's vxlan port on one side, the userspace one on the
    # other: each encapsulates what the other decapsulates.
    from pathlib import Path

    from .conftest import start_server_thread

    if not Path("/sys/module/openvswitch").is_dir():
        pytest.skip("needs the openvswitch module: run it in the test-bed guest (tests/run)")
    k_ns, u_ns = netns(), netns()
    sh("ip", "-n", k_ns, "link", "add", "w0", "type", "veth", "peer", "name", "w1", "netns", u_ns)
    for ns, dev, ip in ((k_ns, "w0", "10.97.0.1"), (u_ns, "w1", "10.97.0.2")):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    server = start_server_thread(f"{socket_dir}/u.sock", u_ns)
    clients = [Dpif.open("kernel", netns=k_ns), Dpif.open(f"unix:{server.path}")]
    try:
        hosts = []
        for d, ns, local, remote, cidr in (
            (clients[0], k_ns, "10.97.0.1", "10.97.0.2", "192.168.70.1/24"),
            (clients[1], u_ns, "10.97.0.2", "10.97.0.1", "192.168.70.2/24"),
        ):
            h, h_if = _host_in(ns, netns, cidr)
            dp = d.create_datapath("kvx")
            port = d.add_vport(dp, Vport(h_if)).port_no
            vx = d.add_vport(dp, Vport("vxlan_sys_4789", VportType.VXLAN, dst_port=4789)).port_no
            add(
                d,
                dp,
                f"in_port({port}),eth()",
                f"set(tunnel(tun_id=0x5,dst={remote},ttl=64,flags(key))),{vx}",
            )
            add(
                d,
                dp,
                f"tunnel(tun_id=0x5,src={remote},dst={local},ttl=64/0,flags(+key)),"
                f"in_port({vx}),eth()",
                str(port),
            )
            hosts.append(h)
        ping(hosts[0], hosts[1].ip, count=3)
        for a, b in ((hosts[0], hosts[1]), (hosts[1], hosts[0])):
            try:
                assert iperf(a, b) > 1e6
            except (AssertionError, subprocess.TimeoutExpired):
                _diagnose(clients, [a.ns, b.ns, k_ns, u_ns])
                raise
    finally:
        for d in clients:
            d.close()
        server.stop()

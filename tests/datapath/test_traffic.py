"""Real traffic between namespaces through the datapath: ping, iperf3, rewrites.

Hosts are namespaces wired to the datapath's namespace by veth pairs (the
``host`` factory); the flows are installed by hand.  These need only
``dpif`` and the namespace fixtures, so they run against both datapaths.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from odpctl.odp.dpif import Dpif, DpRef
from odpctl.odp.flow import Flow
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.vport import Vport

from .conftest import Host

HostFactory = Callable[[str], tuple[Host, str]]


def add(dpif: Dpif, dp: DpRef, key: str, actions: str) -> None:
    k, m = parse_key(key)
    dpif.add_flow(dp, Flow(k, m, parse_actions(actions)))


def ping(src: Host, dst_ip: str, *, count: int = 3, size: int = 56, ok: bool = True) -> None:
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            src.ns,
            "ping",
            "-c",
            str(count),
            "-i",
            "0.2",
            "-W",
            "2",
            "-s",
            str(size),
            dst_ip,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if ok:
        assert result.returncode == 0, f"ping {dst_ip} from {src.ns} failed:\n{result.stdout}"
    else:
        assert result.returncode != 0, f"ping {dst_ip} from {src.ns} should have failed"


def wait_listening(ns: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"],
            capture_output=True,
            text=True,
        ).stdout
        if out.strip():
            return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on port {port} in {ns}")


def iperf(
    client: Host, server: Host, seconds: int = 2, *, udp: bool = False, bind: str | None = None
) -> float:
    """iperf3 from ``client`` to ``server``; returns the received bits per second."""
    srv = subprocess.Popen(
        ["ip", "netns", "exec", server.ns, "iperf3", "-s", "-1", *(["-B", bind] if bind else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(server.ns, 5201)
        args = ["-u", "-b", "50M"] if udp else []
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                client.ns,
                "iperf3",
                "-J",
                "-c",
                server.ip,
                "-t",
                str(seconds),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        )
        report = json.loads(result.stdout)
        assert "error" not in report, report.get("error")
        end = report["end"]
        received = end["sum"] if udp else end["sum_received"]
        return float(received["bits_per_second"])
    finally:
        srv.kill()
        srv.wait()


def two_hosts(
    dpif: Dpif, host: HostFactory, name: str, subnet: str = "10.7.0"
) -> tuple[DpRef, Host, Host, int, int]:
    dp = dpif.create_datapath(name)
    a, a_if = host(f"{subnet}.1/24")
    b, b_if = host(f"{subnet}.2/24")
    pa = dpif.add_vport(dp, Vport(a_if)).port_no or 0
    pb = dpif.add_vport(dp, Vport(b_if)).port_no or 0
    return dp, a, b, pa, pb


def connect(dpif: Dpif, dp: DpRef, pa: int, pb: int) -> None:
    """Everything from one port to the other, both ways."""
    add(dpif, dp, f"in_port({pa}),eth()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))


def test_ping_and_statistics(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpt")
    ping(a, b.ip, count=1, ok=False)  # no flows: misses, nobody listening
    # a now holds b's address as unreachable for a while; forget that.
    subprocess.run(["ip", "-n", a.ns, "neigh", "flush", "all"], check=True)
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth(),eth_type(0x0806),arp()", str(pa))
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0800),ipv4()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth(),eth_type(0x0800),ipv4()", str(pa))
    ping(a, b.ip, count=5)
    flows = {(f.key.in_port, f.key.eth_type): f for f in dpif.dump_flows(dp)}
    icmp = flows[(pa, 0x0800)]
    assert icmp.packets >= 5 and icmp.bytes >= 5 * 98
    assert icmp.used > 0
    ports = {p.port_no: p for p in dpif.list_vports(dp)}
    b_stats, a_stats = ports[pb].stats, ports[pa].stats
    assert b_stats is not None and b_stats.tx_packets >= 5
    assert a_stats is not None and a_stats.rx_packets >= 5
    stats = dpif.get_datapath(dp)
    assert stats.hit >= 10 and stats.missed >= 1


def test_tcp_throughput_and_tcp_flags(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpi")
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth(),eth_type(0x0806),arp()", str(pa))
    add(
        dpif,
        dp,
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)",
        str(pb),
    )
    add(
        dpif,
        dp,
        f"in_port({pb}),eth(),eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(0/0)",
        str(pa),
    )
    bps = iperf(a, b)
    assert bps > 10e6, f"only {bps / 1e6:.1f} Mbit/s"
    tcp = {f.key.in_port: f for f in dpif.dump_flows(dp) if f.key.eth_type == 0x0800}
    assert tcp[pa].tcp_flags & 0x02  # SYN went a -> b
    assert tcp[pb].tcp_flags & 0x12 == 0x12  # SYN+ACK came back
    assert tcp[pa].bytes > 1e6


def test_udp(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpu", "10.7.1")
    connect(dpif, dp, pa, pb)
    assert iperf(a, b, udp=True) > 1e6


def test_mac_rewrite(dpif: Dpif, host: HostFactory) -> None:
    # a believes b's address is at a MAC nobody has; the flow puts b's real one.
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpe", "10.7.2")
    subprocess.run(
        [
            "ip",
            "-n",
            a.ns,
            "neigh",
            "replace",
            b.ip,
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            a.ifname,
        ],
        check=True,
    )
    add(
        dpif,
        dp,
        f"in_port({pa}),eth(dst=02:00:00:00:00:99),eth_type(0x0800),ipv4()",
        f"set(eth(dst={b.mac})),{pb}",
    )
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip)


def test_address_rewrite_keeps_checksums_right(dpif: Dpif, host: HostFactory) -> None:
    # a talks to 10.7.3.99, which the datapath maps to b and back (a tiny NAT);
    # ping checks the IP checksum, iperf3 the TCP one of offloaded segments.
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpn", "10.7.3")
    subprocess.run(
        ["ip", "-n", a.ns, "neigh", "replace", "10.7.3.99", "lladdr", b.mac, "dev", a.ifname],
        check=True,
    )
    fake = b.ip.replace(".2", ".99")
    for proto, l4 in (("1", "icmp()"), ("6", "tcp(),tcp_flags(0/0)")):
        add(
            dpif,
            dp,
            f"in_port({pa}),eth(),eth_type(0x0800),ipv4(dst={fake},proto={proto}),{l4}",
            f"set(ipv4(dst={b.ip}/255.255.255.255)),{pb}",
        )
        add(
            dpif,
            dp,
            f"in_port({pb}),eth(),eth_type(0x0800),ipv4(src={b.ip},proto={proto}),{l4}",
            f"set(ipv4(src={fake}/255.255.255.255)),{pa}",
        )
    add(dpif, dp, f"in_port({pb}),eth(),eth_type(0x0806),arp()", str(pa))
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    ping(a, fake)
    assert iperf(a, Host(b.ns, b.ifname, fake, b.mac)) > 10e6


def test_vlan_push_and_pop(dpif: Dpif, dp_ns: str, host: HostFactory) -> None:
    # a -> push_vlan -> a veth loop inside dp_ns -> back in tagged -> pop_vlan -> b,
    # and the same the other way: pings pass only if tags go on, match and come off.
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpv", "10.7.4")
    subprocess.run(
        ["ip", "-n", dp_ns, "link", "add", "lp0", "type", "veth", "peer", "name", "lp1"], check=True
    )
    for dev in ("lp0", "lp1"):
        subprocess.run(["ip", "-n", dp_ns, "link", "set", dev, "up"], check=True)
    l0 = dpif.add_vport(dp, Vport("lp0")).port_no
    l1 = dpif.add_vport(dp, Vport("lp1")).port_no
    add(dpif, dp, f"in_port({pa}),eth()", f"push_vlan(vid=10,pcp=3),{l0}")
    add(dpif, dp, f"in_port({pb}),eth()", f"push_vlan(vid=20,pcp=0),{l1}")
    for l3 in ("eth_type(0x0800),ipv4()", "eth_type(0x0806),arp()"):
        add(
            dpif,
            dp,
            f"in_port({l1}),eth(),eth_type(0x8100),vlan(vid=10,pcp=3),encap({l3})",
            f"pop_vlan,{pb}",
        )
        add(
            dpif,
            dp,
            f"in_port({l0}),eth(),eth_type(0x8100),vlan(vid=20),encap({l3})",
            f"pop_vlan,{pa}",
        )
    ping(a, b.ip)


def test_recirculation_with_hash(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpr", "10.7.5")
    # recirc_id(0): without it the first flow would match recirculated packets too.
    add(dpif, dp, f"recirc_id(0),in_port({pa}),eth()", "hash(l4(0)),recirc(7)")
    add(dpif, dp, f"recirc_id(7),dp_hash(0/0),in_port({pa}),eth()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip)
    recirculated = [f for f in dpif.dump_flows(dp) if f.key.get(20) == 7]
    assert recirculated and recirculated[0].packets >= 3


def test_check_pkt_len(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpc", "10.7.6")
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    add(
        dpif,
        dp,
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()",
        f"check_pkt_len(size=200,gt(),le({pb}))",
    )
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip, size=56)
    ping(a, b.ip, size=400, count=2, ok=False)


def test_clone_and_sample_copy_to_a_third_port(dpif: Dpif, host: HostFactory) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dps", "10.7.7")
    _c, c_if = host("10.7.7.3/24")
    pc = dpif.add_vport(dp, Vport(c_if)).port_no
    add(
        dpif,
        dp,
        f"in_port({pa}),eth(),eth_type(0x0800),ipv4()",
        f"clone(set(eth(dst=02:00:00:00:00:77)),{pc}),sample(sample=100%,actions({pc})),{pb}",
    )
    add(dpif, dp, f"in_port({pa}),eth(),eth_type(0x0806),arp()", str(pb))
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip, count=4)
    ports = {p.port_no: p for p in dpif.list_vports(dp)}
    stats = ports[pc].stats
    assert stats is not None and stats.tx_packets >= 8


def test_internal_port_reaches_the_datapath_namespace(
    dpif: Dpif, dp_ns: str, host: HostFactory
) -> None:
    dp = dpif.create_datapath("dpl")
    a, a_if = host("10.7.8.1/24")
    pa = dpif.add_vport(dp, Vport(a_if)).port_no
    subprocess.run(["ip", "-n", dp_ns, "addr", "add", "10.7.8.254/24", "dev", "dpl"], check=True)
    subprocess.run(["ip", "-n", dp_ns, "link", "set", "dpl", "up"], check=True)
    connect(dpif, dp, pa or 0, 0)
    ping(a, "10.7.8.254")
    local = Host(dp_ns, "dpl", "10.7.8.254", "")
    assert iperf(a, local) > 10e6


@pytest.mark.parametrize("size", [1400, 3000])
def test_big_pings_fragment_and_pass(dpif: Dpif, host: HostFactory, size: int) -> None:
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpg", "10.7.9")
    connect(dpif, dp, pa, pb)
    ping(a, b.ip, size=size)


def test_rewrite_then_recirculate(dpif: Dpif, host: HostFactory) -> None:
    # A rewritten packet goes round again: it is looked up by its new bytes.
    dp, a, b, pa, pb = two_hosts(dpif, host, "dpw", "10.7.10")
    subprocess.run(
        [
            "ip",
            "-n",
            a.ns,
            "neigh",
            "replace",
            b.ip,
            "lladdr",
            "02:00:00:00:00:98",
            "dev",
            a.ifname,
        ],
        check=True,
    )
    add(
        dpif,
        dp,
        f"recirc_id(0),in_port({pa}),eth(dst=02:00:00:00:00:98)",
        f"set(eth(dst={b.mac})),recirc(3)",
    )
    add(dpif, dp, f"recirc_id(3),in_port({pa}),eth(dst={b.mac})", str(pb))
    add(dpif, dp, f"recirc_id(0),in_port({pa}),eth(dst={b.mac})", str(pb))  # a's ARP replies
    add(dpif, dp, f"in_port({pb}),eth()", str(pa))
    ping(a, b.ip)
    (again,) = [f for f in dpif.dump_flows(dp) if f.key.get(20) == 3]
    assert again.packets >= 3

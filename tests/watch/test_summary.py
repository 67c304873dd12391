"""One-line packet summaries from upcall keys."""

from __future__ import annotations

import pytest

from odpctl.odp.text.keys import parse_key
from odpctl.watch.summary import summarize

ETH = "in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02)"
IP4 = "eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto={},tos=0,ttl=64,frag=no)"
IP6 = "eth_type(0x86dd),ipv6(src=fe80::1,dst=ff02::1,label=0,proto={},tclass=0,hlimit=255,frag=no)"


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (f"{ETH},{IP4.format(1)},icmp(type=8,code=0)", "10.0.0.1 > 10.0.0.2: ICMP echo request"),
        (
            f"{ETH},{IP4.format(1)},icmp(type=3,code=3)",
            "10.0.0.1 > 10.0.0.2: ICMP unreachable code 3",
        ),
        (
            f"{ETH},{IP4.format(6)},tcp(src=40000,dst=80),tcp_flags(syn|ack)",
            "10.0.0.1.40000 > 10.0.0.2.80: TCP, Flags [S.]",
        ),
        (f"{ETH},{IP4.format(17)},udp(src=5353,dst=53)", "10.0.0.1.5353 > 10.0.0.2.53: UDP"),
        (f"{ETH},{IP4.format(47)}", "10.0.0.1 > 10.0.0.2: GRE"),
        (f"{ETH},{IP4.format(253)}", "10.0.0.1 > 10.0.0.2: proto 253"),
        (
            f"{ETH},{IP6.format(58)},icmpv6(type=135,code=0)",
            "fe80::1 > ff02::1: ICMPv6 neighbor solicitation",
        ),
        (
            f"{ETH},eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1,sha=02:00:00:00:00:01,"
            "tha=00:00:00:00:00:00)",
            "ARP, who-has 10.0.0.2 tell 10.0.0.1",
        ),
        (
            f"{ETH},eth_type(0x0806),arp(sip=10.0.0.2,tip=10.0.0.1,op=2,sha=02:00:00:00:00:02,"
            "tha=02:00:00:00:00:01)",
            "ARP, reply 10.0.0.2 is-at 02:00:00:00:00:02",
        ),
        (f"{ETH},eth_type(0x88cc)", "02:00:00:00:00:01 > 02:00:00:00:00:02, LLDP"),
        (f"{ETH},eth_type(0x1234)", "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x1234"),
        ("in_port(1)", "no ethertype"),
        (
            f"tunnel(tun_id=0x2a,src=192.0.2.1,dst=192.0.2.2,ttl=64),{ETH},{IP4.format(1)},"
            "icmp(type=0,code=0)",
            "[tun_id 0x2a] 10.0.0.1 > 10.0.0.2: ICMP echo reply",
        ),
    ],
)
def test_summaries(text: str, summary: str) -> None:
    assert summarize(parse_key(text)[0]) == summary


def test_length() -> None:
    key = parse_key(f"{ETH},{IP4.format(1)},icmp(type=8,code=0)")[0]
    assert summarize(key, 98).endswith(", 98 bytes")

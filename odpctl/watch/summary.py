"""A packet in one line, tcpdump-like, from the flow key the datapath extracted.

An upcall carries the key the datapath parsed from the packet, so nothing is
parsed twice: ``10.0.0.1.5353 > 10.0.0.2.53: UDP, 74 bytes``.  What the key
does not say (ICMP sequence numbers, DNS names) is left to a packet capture.
"""

from __future__ import annotations

from odpctl.odp.keys import FlowKey
from odpctl.odp.text.values import format_ipv4, format_ipv6, format_mac
from odpctl.odp.uapi import ETH_P_IP, KeyAttr
from odpctl.present.odptext import tcp_flags_text

ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_ARP = 0x0806
ETH_TYPE_RARP = 0x8035
_ETH_TYPE_NAMES = {
    0x8100: "802.1Q",
    0x88A8: "802.1ad",
    0x8847: "MPLS",
    0x8848: "MPLS",
    0x88CC: "LLDP",
    0x894F: "NSH",
}

_ICMP_TYPES = {
    0: "echo reply",
    3: "unreachable",
    5: "redirect",
    8: "echo request",
    11: "time exceeded",
}
_ICMPV6_TYPES = {
    1: "unreachable",
    2: "packet too big",
    3: "time exceeded",
    128: "echo request",
    129: "echo reply",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    143: "multicast listener report v2",
}
_IP_PROTOS = {
    1: "ICMP",
    2: "IGMP",
    6: "TCP",
    17: "UDP",
    47: "GRE",
    50: "ESP",
    58: "ICMPv6",
    132: "SCTP",
}
_ARP_OPS = {1: "who-has", 2: "reply"}
_PORT_ATTRS = {6: KeyAttr.TCP, 17: KeyAttr.UDP, 132: KeyAttr.SCTP}


def _l4(key: FlowKey, proto: int, src: str, dst: str, icmp_kind: KeyAttr) -> str:
    port_attr = _PORT_ATTRS.get(proto)
    ports = key.get(port_attr) if port_attr is not None else None
    name = _IP_PROTOS.get(proto, f"proto {proto}")
    if ports is not None:
        text = f"{src}.{ports.src} > {dst}.{ports.dst}: {name}"
        if proto == 6 and KeyAttr.TCP_FLAGS in key:
            text += f", Flags [{tcp_flags_text(key[KeyAttr.TCP_FLAGS])}]"
        return text
    icmp = key.get(icmp_kind)
    if icmp is not None:
        types = _ICMP_TYPES if icmp_kind is KeyAttr.ICMP else _ICMPV6_TYPES
        kind = types.get(icmp.type, f"type {icmp.type}")
        code = f" code {icmp.code}" if icmp.code else ""
        return f"{src} > {dst}: {name} {kind}{code}"
    return f"{src} > {dst}: {name}"


def summarize(key: FlowKey, length: int | None = None) -> str:
    """``key`` (a packet's exact key, as upcalls carry) as one line; ``length`` in bytes."""
    eth_type = key.eth_type
    if eth_type == ETH_P_IP and KeyAttr.IPV4 in key:
        ip = key[KeyAttr.IPV4]
        text = _l4(key, ip.proto, format_ipv4(ip.src), format_ipv4(ip.dst), KeyAttr.ICMP)
    elif eth_type == ETH_TYPE_IPV6 and KeyAttr.IPV6 in key:
        ip6 = key[KeyAttr.IPV6]
        text = _l4(key, ip6.proto, format_ipv6(ip6.src), format_ipv6(ip6.dst), KeyAttr.ICMPV6)
    elif eth_type in (ETH_TYPE_ARP, ETH_TYPE_RARP) and KeyAttr.ARP in key:
        arp = key[KeyAttr.ARP]
        op = _ARP_OPS.get(arp.op, f"op {arp.op}")
        if arp.op == 1:
            text = f"ARP, who-has {format_ipv4(arp.tip)} tell {format_ipv4(arp.sip)}"
        elif arp.op == 2:
            text = f"ARP, reply {format_ipv4(arp.sip)} is-at {format_mac(arp.sha)}"
        else:
            text = f"ARP, {op} {format_ipv4(arp.sip)} > {format_ipv4(arp.tip)}"
    else:
        eth = key.eth
        kind = (
            _ETH_TYPE_NAMES.get(eth_type, f"ethertype 0x{eth_type:04x}")
            if eth_type is not None
            else "no ethertype"
        )
        text = f"{format_mac(eth.src)} > {format_mac(eth.dst)}, {kind}" if eth else kind
    tunnel = key.tunnel
    if tunnel is not None and tunnel.tun_id is not None:
        text = f"[tun_id {tunnel.tun_id:#x}] {text}"
    if length is not None:
        text += f", {length} bytes"
    return text

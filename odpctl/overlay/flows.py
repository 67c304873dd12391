"""The matches and actions the fast datapath installs.

Flows match the frame's in_port and Ethernet addresses exactly (plus the
tunnel it arrived in, for tunnel ingress) and nothing above: one flow per
conversation, however many TCP or UDP flows it carries.  The kernel insists
that a key with an IP or ARP ethertype carries the matching L3 attribute, so
those are present but fully wildcarded.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from odpctl.odp.actions import Action, Output, Set
from odpctl.odp.flow import Flow
from odpctl.odp.keys import Eth, FlowKey, Tunnel
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, KeyAttr

VXLAN_PORT = 6784
TUNNEL_TTL = 64
SHORT_ID_BITS = 12
_SHORT_ID_MASK = (1 << SHORT_ID_BITS) - 1
_EXACT_PORT = 0xFFFFFFFF
_EXACT_ETH = Eth(b"\xff" * 6, b"\xff" * 6)
_L3 = {ETH_P_IP: "ipv4", ETH_P_ARP: "arp", ETH_P_IPV6: "ipv6"}
BROADCAST = b"\xff" * 6


def vni(src_short: int, dst_short: int) -> int:
    """The VNI of a frame from peer ``src_short`` to peer ``dst_short``."""
    return (src_short & _SHORT_ID_MASK) | (dst_short & _SHORT_ID_MASK) << SHORT_ID_BITS


def split_vni(value: int) -> tuple[int, int]:
    """(source short ID, destination short ID) of a VNI."""
    return value & _SHORT_ID_MASK, (value >> SHORT_ID_BITS) & _SHORT_ID_MASK


def is_multicast(mac: bytes) -> bool:
    return bool(mac[0] & 1)


def flowable(eth_type: int | None) -> bool:
    """Whether we know how to write a flow for frames of this ethertype."""
    return eth_type in _L3 or (
        eth_type is not None
        and eth_type >= 0x0600
        and eth_type not in (0x8100, 0x88A8, 0x8847, 0x8848)
    )


@cache
def _l3(eth_type: int) -> tuple[FlowKey, FlowKey]:
    name = _L3.get(eth_type)
    return parse_key(f"eth_type(0x{eth_type:04x})" + (f",{name}()" if name else ""))


def tunnel_to(
    vni_value: int, dst_ip: str, vxlan_port: int, udp_port: int = VXLAN_PORT
) -> list[Action]:
    return list(_tunnel_to(vni_value, dst_ip, vxlan_port, udp_port))


@cache
def _tunnel_to(vni_value: int, dst_ip: str, vxlan_port: int, udp_port: int) -> tuple[Action, ...]:
    # Once per peer and port, not once per miss: parsing the address is dear.
    tunnel = Tunnel(
        tun_id=vni_value,
        ipv4_dst=int(ipaddress.IPv4Address(dst_ip)),
        ttl=TUNNEL_TTL,
        tp_dst=udp_port,
        df=True,
    )
    return Set(KeyAttr.TUNNEL, tunnel), Output(vxlan_port)


def local_flow(in_port: int, eth: Eth, eth_type: int, actions: list[Action]) -> Flow:
    l3_key, l3_mask = _l3(eth_type)
    key = FlowKey({KeyAttr.IN_PORT: in_port, KeyAttr.ETHERNET: eth, **l3_key})
    mask = FlowKey({KeyAttr.IN_PORT: _EXACT_PORT, KeyAttr.ETHERNET: _EXACT_ETH, **l3_mask})
    return Flow(key, mask, actions)


def tunnel_flow(
    in_port: int, tunnel: Tunnel, eth: Eth, eth_type: int, actions: list[Action]
) -> Flow:
    l3_key, l3_mask = _l3(eth_type)
    # The ttl must be present (the kernel refuses a tunnel match without it)
    # but masked out: relays and the sender's ttl may vary.
    tkey = Tunnel(
        tun_id=tunnel.tun_id,
        ipv4_src=tunnel.ipv4_src,
        ipv4_dst=tunnel.ipv4_dst,
        ttl=tunnel.ttl if tunnel.ttl is not None else TUNNEL_TTL,
    )
    tmask = Tunnel(tun_id=(1 << 64) - 1, ipv4_src=0xFFFFFFFF, ipv4_dst=0xFFFFFFFF, ttl=0)
    key = FlowKey({KeyAttr.TUNNEL: tkey, KeyAttr.IN_PORT: in_port, KeyAttr.ETHERNET: eth, **l3_key})
    mask = FlowKey(
        {
            KeyAttr.TUNNEL: tmask,
            KeyAttr.IN_PORT: _EXACT_PORT,
            KeyAttr.ETHERNET: _EXACT_ETH,
            **l3_mask,
        }
    )
    return Flow(key, mask, actions)

"""Install-time checks of a flow's actions, with the kernel's rules.

`validate_actions` decodes ``OVS_FLOW_ATTR_ACTIONS`` (or a packet's
actions) and refuses what the kernel's ``__ovs_nla_copy_actions`` refuses,
with the same errno: an output port out of range, a userspace action with no
PID, a VLAN push without the CFI bit, a truncation shorter than an Ethernet
header, a set() of a field the flow does not pin down (set(tcp) needs
proto 6 in the *masked* key), nesting deeper than the kernel allows.

Actions the kernel knows and this datapath cannot run (conntrack, MPLS,
NSH, meters, psample) are refused here, at install time, with EOPNOTSUPP
and a sentence saying which, rather than accepted and silently dropped.

What comes back is the action list as the kernel would echo it in dumps:
as given, except ``set(tunnel(...))`` rewritten the kernel's way (zero
addresses and ports left out, TTL always present).
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import NamedTuple

from odpctl.datapath.errors import RequestError
from odpctl.datapath.keyencode import put_tunnel
from odpctl.datapath.keyparse import _Builder, einval, parse_tunnel, unsupported
from odpctl.datapath.layout import DP_MAX_PORTS, Key, unpack
from odpctl.errors import DecodeError
from odpctl.odp.actions import (
    Action,
    AddMpls,
    CheckPktLen,
    Clone,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    Hash,
    Meter,
    Output,
    PopEth,
    PopMpls,
    PopNsh,
    PopVlan,
    Psample,
    PushEth,
    PushMpls,
    PushNsh,
    PushVlan,
    Recirc,
    Sample,
    Set,
    SetMasked,
    Trunc,
    UnknownAction,
    Userspace,
    decode_actions,
)
from odpctl.odp.keys import decode_tunnel, encode_key_attr
from odpctl.odp.uapi import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    VLAN_CFI,
    HashAlg,
    KeyAttr,
)

# Largest action list the kernel takes (MAX_ACTIONS_BUFSIZE).
MAX_ACTIONS_SIZE = 32 * 1024
# How deep sample/clone/check_pkt_len/dec_ttl may nest (OVS_COPY_ACTIONS_MAX_DEPTH).
MAX_DEPTH = 16
ETH_HLEN = 14

_IP_TYPES = (ETH_P_IP, ETH_P_IPV6)
_TCP, _UDP, _SCTP = 6, 17, 132

# Kernel actions this datapath cannot run, and why, for the refusal.
_UNSUPPORTED: dict[type, str] = {
    PushMpls: "push_mpls",
    PopMpls: "pop_mpls",
    AddMpls: "add_mpls",
    Ct: "ct (there is no connection tracking)",
    PushEth: "push_eth",
    PopEth: "pop_eth",
    PushNsh: "push_nsh",
    PopNsh: "pop_nsh",
    Meter: "meter",
    Psample: "psample",
}


class EgressTunnel(NamedTuple):
    """What set(tunnel(...)) asks of the tunnel port a packet leaves by."""

    key: Key  # the tun_* fields are the ones that matter
    opts: bytes


def validate_actions(data: bytes, masked_key: Key) -> list[Action]:
    """The decoded actions, as the kernel would echo them; RequestError if refused."""
    if 0 < len(data) < 4:
        raise RequestError(errno.ERANGE, "actions attribute shorter than an attribute header")
    if len(data) > MAX_ACTIONS_SIZE:
        raise RequestError(
            errno.EMSGSIZE, f"actions of {len(data)} bytes exceed {MAX_ACTIONS_SIZE}"
        )
    try:
        actions = decode_actions(data)
    except DecodeError as exc:
        raise einval(str(exc)) from None
    return _check(actions, masked_key, 0, masked_key.eth_type)


# Parsed tunnels by their encoding: the flows of a router send to a few peers,
# so most set(tunnel(...)) actions repeat one another.
_TUNNELS: dict[bytes, tuple[EgressTunnel, Set]] = {}
_TUNNELS_MAX = 4096


def _tunnel(value: object) -> tuple[EgressTunnel, Set]:
    """A set(tunnel(...))'s egress tunnel, and the action as the kernel echoes it."""
    try:
        raw = encode_key_attr(KeyAttr.TUNNEL, value)[4:]
    except ValueError as exc:
        raise einval(f"set(tunnel): {exc}") from None
    known = _TUNNELS.get(raw)
    if known is not None:
        return known
    m = _Builder()
    parse_tunnel(raw, m, False)
    tun = EgressTunnel(unpack(bytes(m.bufs[0])), m.opts[0])
    canon = put_tunnel(tun.key, tun.opts, len(tun.opts), tun.key.tun_proto)
    if len(_TUNNELS) >= _TUNNELS_MAX:
        _TUNNELS.clear()
    known = _TUNNELS[raw] = (tun, Set(KeyAttr.TUNNEL, decode_tunnel(canon)))
    return known


def egress_tunnel(value: object) -> EgressTunnel:
    """The tunnel a set(tunnel(...)) action sets, checked as the kernel does."""
    return _tunnel(value)[0]


def _check(
    actions: list[Action] | tuple[Action, ...], key: Key, depth: int, eth_type: int
) -> list[Action]:
    if depth > MAX_DEPTH:
        raise RequestError(errno.EOVERFLOW, f"actions nested deeper than {MAX_DEPTH}")
    out: list[Action] = []
    last = len(actions) - 1
    for i, a in enumerate(actions):
        if isinstance(a, Output):
            if a.port >= DP_MAX_PORTS:
                raise einval(f"output to port {a.port}, beyond the maximum {DP_MAX_PORTS - 1}")
        elif isinstance(a, Userspace):
            if not a.pid:
                raise einval("userspace action without a netlink PID")
        elif isinstance(a, Trunc):
            if a.max_len < ETH_HLEN:
                raise einval(f"trunc({a.max_len}) is shorter than an Ethernet header")
        elif isinstance(a, Hash):
            if a.alg not in (HashAlg.L4, HashAlg.SYM_L4):
                raise einval(f"unknown hash algorithm {a.alg}")
        elif isinstance(a, PushVlan):
            if a.tpid not in (ETH_P_8021Q, ETH_P_8021AD):
                raise einval(f"push_vlan with TPID {a.tpid:#06x}, not a VLAN EtherType")
            if not a.tci & VLAN_CFI:
                raise einval("push_vlan TCI lacks the VLAN_CFI bit (0x1000)")
        elif isinstance(a, Set):
            a = _check_set(a, key, eth_type)
        elif isinstance(a, SetMasked):
            _check_set_masked(a, key, eth_type)
        elif isinstance(a, (Sample, Clone)):
            a = replace(a, actions=tuple(_check(a.actions, key, depth + 1, eth_type)))
        elif isinstance(a, CheckPktLen):
            a = replace(
                a,
                gt=tuple(_check(a.gt, key, depth + 1, eth_type)),
                le=tuple(_check(a.le, key, depth + 1, eth_type)),
            )
        elif isinstance(a, DecTtl):
            if eth_type not in _IP_TYPES:
                raise einval("dec_ttl on a flow that is not IPv4 or IPv6")
            a = replace(a, actions=tuple(_check(a.actions, key, depth + 1, eth_type)))
        elif isinstance(a, Drop):
            if i != last:
                raise einval("drop must be the last action")
        elif isinstance(a, (PopVlan, Recirc, CtClear)):
            pass
        elif type(a) in _UNSUPPORTED:
            raise unsupported(f"the action {_UNSUPPORTED[type(a)]}")
        elif isinstance(a, UnknownAction):
            raise einval(f"unknown action type {a.kind}")
        else:
            # tnl_push, tnl_pop, lb_output: Open vSwitch's own datapath only.
            raise einval(f"{type(a).__name__} is not an action of the kernel datapath")
        out.append(a)
    return out


def _check_set(a: Set, key: Key, eth_type: int) -> Action:
    kind = a.kind
    if kind in (KeyAttr.PRIORITY, KeyAttr.SKB_MARK, KeyAttr.ETHERNET):
        return a
    if kind == KeyAttr.TUNNEL:
        return _tunnel(a.value)[1]
    _check_l3l4(kind, key, eth_type)
    if kind == KeyAttr.IPV4:
        if a.value.proto != key.ip_proto or a.value.frag != key.ip_frag:
            raise einval("set(ipv4) changes the protocol or fragment type the flow matches")
    elif kind == KeyAttr.IPV6:
        if a.value.proto != key.ip_proto or a.value.frag != key.ip_frag:
            raise einval("set(ipv6) changes the protocol or fragment type the flow matches")
        if a.value.label & 0xFFF00000:
            raise einval(f"IPv6 flow label {a.value.label:#x} is out of range")
    return a


def _check_set_masked(a: SetMasked, key: Key, eth_type: int) -> None:
    kind = a.kind
    if kind == KeyAttr.TUNNEL:
        raise einval("masked set of the tunnel is not supported by the kernel datapath")
    try:
        value = encode_key_attr(kind, a.value)[4:]
        mask = encode_key_attr(kind, a.mask)[4:]
    except ValueError as exc:
        raise einval(f"masked set: {exc}") from None
    if any(v & ~m for v, m in zip(value, mask, strict=False)):
        raise einval("masked set value has bits outside its mask")
    if kind in (KeyAttr.PRIORITY, KeyAttr.SKB_MARK, KeyAttr.ETHERNET):
        return
    _check_l3l4(kind, key, eth_type)
    if kind == KeyAttr.IPV4 and (a.mask.proto or a.mask.frag):
        raise einval("masked set(ipv4) of the protocol or fragment type")
    if kind == KeyAttr.IPV6:
        if a.mask.proto or a.mask.frag:
            raise einval("masked set(ipv6) of the protocol or fragment type")
        if a.mask.label & 0xFFF00000 or a.value.label & 0xFFF00000:
            raise einval("masked set(ipv6) flow label out of range")


def _check_l3l4(kind: int, key: Key, eth_type: int) -> None:
    """The kernel's validate_set conditions for layer-3/4 fields, then ours."""
    if kind == KeyAttr.IPV4:
        if eth_type != ETH_P_IP:
            raise einval("set(ipv4) on a flow that does not match eth_type(0x0800)")
        return
    if kind == KeyAttr.IPV6:
        if eth_type != ETH_P_IPV6:
            raise einval("set(ipv6) on a flow that does not match eth_type(0x86dd)")
        return
    for proto_kind, proto, name in (
        (KeyAttr.TCP, _TCP, "tcp"),
        (KeyAttr.UDP, _UDP, "udp"),
        (KeyAttr.SCTP, _SCTP, "sctp"),
    ):
        if kind == proto_kind:
            if eth_type not in _IP_TYPES or key.ip_proto != proto:
                raise einval(f"set({name}) on a flow that does not match IP protocol {proto}")
            if kind == KeyAttr.SCTP:
                raise unsupported("set(sctp) (it cannot recompute SCTP's CRC32c)")
            return
    if kind == KeyAttr.MPLS:
        if eth_type not in (ETH_P_MPLS_UC, ETH_P_MPLS_MC):
            raise einval("set(mpls) on a flow that does not match an MPLS EtherType")
        raise unsupported("set(mpls)")
    if kind in (KeyAttr.CT_MARK, KeyAttr.CT_LABELS):
        raise unsupported("setting conntrack fields (it has no connection tracking)")
    if kind == KeyAttr.NSH:
        raise unsupported("set(nsh)")
    raise einval(f"set() of key attribute {kind} is not allowed")

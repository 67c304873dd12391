#!/usr/bin/env python3
"""Flow message codec: messages encoded and decoded per second, one core.

Run as ``.venv/bin/python bench/codec.py`` (``--help`` for options).

Two flow shapes:

- **weave**: what Weave's fast datapath installs: key in_port + eth(src,dst) +
  tunnel(tun_id, ipv4 src/dst, ttl, df) with a mask; actions
  set(tunnel(tun_id, dst, ttl, df)) + output.
- **heavy**: recirc_id, in_port, eth, eth_type, ipv4, tcp, ct_state/zone/mark,
  tcp_flags, all masked; actions ct(commit,zone), set_masked(eth), push_vlan,
  output, userspace.

A *message* is the whole generic-netlink flow message: nlmsghdr + genlmsghdr
+ ovs_header + OVS_FLOW_ATTR_*.

- decode: a dump datagram as the kernel sends it (``--batch`` messages, each
  KEY, MASK, USED, STATS, [TCP_FLAGS], ACTIONS) ->
  ``decode_messages`` + ``split_odp`` + ``decode_flow_attrs`` -> `Flow`s.
- encode: a `Flow` -> an ``OVS_FLOW_CMD_NEW`` request
  (``encode_flow_attrs`` + ``odp_payload`` + ``encode_message``).

Side by side, in the same run, pyroute2's generic ``genlmsg``/``nla`` class
machinery encodes and decodes the *same* bytes (checked byte for byte before
timing).  Its decode walks every attribute's value (pyroute2 decodes lazily,
so an untouched message costs nothing and proves nothing); its encode builds
the nested ``attrs`` lists it consumes from the same `Flow` and calls
``encode()``.

Each figure is the best of ``--repeat`` runs of about ``--seconds`` each,
after a warm-up, pinned to one CPU with ``os.sched_setaffinity``; the garbage
collector stays on, as in real use.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyroute2.netlink import genlmsg, nla, nlmsg_base

from odpctl.netlink.attrs import attr, attr_u8, attr_u64
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    decode_messages,
    encode_message,
)
from odpctl.odp.actions import (
    Action,
    Ct,
    Output,
    PushVlan,
    Set,
    SetMasked,
    Userspace,
    encode_actions,
)
from odpctl.odp.flow import Flow, decode_flow_attrs, encode_flow_attrs
from odpctl.odp.header import odp_payload, split_odp
from odpctl.odp.keys import Eth, FlowKey, Ipv4, Ports, Tunnel, encode_key
from odpctl.odp.uapi import FLOW_VERSION, FlowAttr, FlowCmd, KeyAttr

DECODE_TARGET = 150_000
ENCODE_TARGET = 100_000

FAMILY_ID = 0x1B  # what the kernel might have given ovs_flow
DP_IFINDEX = 7
DUMP_PID = 0x3039
REQUEST_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL

# --- the two flows ---------------------------------------------------------------

MAC_A = bytes.fromhex("0a580a200001")
MAC_B = bytes.fromhex("0a580a200002")
ALL6 = b"\xff" * 6


def weave_flow() -> Flow:
    key = FlowKey(
        {
            KeyAttr.IN_PORT: 2,
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
            KeyAttr.TUNNEL: Tunnel(
                tun_id=0x00301002, ipv4_src=0xC0000201, ipv4_dst=0xC0000202, ttl=64, df=True
            ),
        }
    )
    mask = FlowKey(
        {
            KeyAttr.IN_PORT: 0xFFFFFFFF,
            KeyAttr.ETHERNET: Eth(ALL6, ALL6),
            KeyAttr.TUNNEL: Tunnel(
                tun_id=2**64 - 1, ipv4_src=2**32 - 1, ipv4_dst=2**32 - 1, ttl=0xFF, df=True
            ),
        }
    )
    actions: list[Action] = [
        Set(KeyAttr.TUNNEL, Tunnel(tun_id=0x00201003, ipv4_dst=0xC0000203, ttl=64, df=True)),
        Output(1),
    ]
    return Flow(key, mask, actions, packets=1234, bytes=1_500_000, used=987_654_321)


def heavy_flow() -> Flow:
    key = FlowKey(
        {
            KeyAttr.RECIRC_ID: 1,
            KeyAttr.IN_PORT: 3,
            KeyAttr.CT_STATE: 0x22,
            KeyAttr.CT_ZONE: 5,
            KeyAttr.CT_MARK: 0x10,
            KeyAttr.ETHERNET: Eth(MAC_A, MAC_B),
            KeyAttr.ETHERTYPE: 0x0800,
            KeyAttr.IPV4: Ipv4(0x0A200001, 0x0A200002, 6, 0, 64, 0),
            KeyAttr.TCP: Ports(40000, 80),
            KeyAttr.TCP_FLAGS: 0x010,
        }
    )
    mask = FlowKey(
        {
            KeyAttr.RECIRC_ID: 0xFFFFFFFF,
            KeyAttr.IN_PORT: 0xFFFFFFFF,
            KeyAttr.CT_STATE: 0xFF,
            KeyAttr.CT_ZONE: 0xFFFF,
            KeyAttr.CT_MARK: 0xFFFFFFFF,
            KeyAttr.ETHERNET: Eth(ALL6, ALL6),
            KeyAttr.ETHERTYPE: 0xFFFF,
            KeyAttr.IPV4: Ipv4(0xFFFFFFFF, 0xFFFFFFFF, 0xFF, 0, 0, 0xFF),
            KeyAttr.TCP: Ports(0, 0xFFFF),
            KeyAttr.TCP_FLAGS: 0x0FFF,
        }
    )
    actions: list[Action] = [
        Ct(commit=True, zone=5),
        SetMasked(KeyAttr.ETHERNET, Eth(MAC_B, MAC_A), Eth(ALL6, ALL6)),
        PushVlan(0x8100, 0x1064),
        Output(4),
        Userspace(0x1234, userdata=bytes.fromhex("0102030405060708")),
    ]
    return Flow(key, mask, actions, packets=99, bytes=65_000, used=123_456, tcp_flags=0x1B)


# --- odpctl ------------------------------------------------------------------------


def dump_attrs(flow: Flow) -> bytes:
    """A flow's attributes as ovs_flow_cmd_fill_info() writes them in a dump."""
    assert flow.mask is not None
    parts = [
        attr(FlowAttr.KEY, encode_key(flow.key)),
        attr(FlowAttr.MASK, encode_key(flow.mask)),
        attr_u64(FlowAttr.USED, flow.used),
        attr(FlowAttr.STATS, struct.pack("=QQ", flow.packets, flow.bytes)),
    ]
    if flow.tcp_flags:
        parts.append(attr_u8(FlowAttr.TCP_FLAGS, flow.tcp_flags))
    parts.append(attr(FlowAttr.ACTIONS, encode_actions(flow.actions)))
    return b"".join(parts)


def dump_datagram(flow: Flow, batch: int) -> bytes:
    payload = odp_payload(FlowCmd.GET, FLOW_VERSION, DP_IFINDEX, dump_attrs(flow))
    return b"".join(
        encode_message(FAMILY_ID, NLM_F_MULTI, 1, DUMP_PID, payload) for _ in range(batch)
    )


def odpctl_decode(datagram: bytes) -> list[Flow]:
    return [decode_flow_attrs(split_odp(m.payload)[2]) for m in decode_messages(datagram)]


def odpctl_encode(flow: Flow, seq: int = 1) -> bytes:
    payload = odp_payload(FlowCmd.NEW, FLOW_VERSION, DP_IFINDEX, encode_flow_attrs(flow))
    return encode_message(FAMILY_ID, REQUEST_FLAGS, seq, 0, payload)


# --- pyroute2: generic nla classes for the same attributes ----------------------------
#
# Written for this benchmark from the uAPI, in the shape of the kernel
# selftests' ovs-dpctl.py: a genlmsg subclass with the ovs_header field and
# nested nla classes named in nla_map tables.


class P2Key(nla):  # type: ignore[misc]
    """enum ovs_key_attr, with the struct payloads the two flows use."""

    nla_map = (
        ("OVS_KEY_ATTR_UNSPEC", "none"),
        ("OVS_KEY_ATTR_ENCAP", "none"),
        ("OVS_KEY_ATTR_PRIORITY", "uint32"),
        ("OVS_KEY_ATTR_IN_PORT", "uint32"),
        ("OVS_KEY_ATTR_ETHERNET", "ethernet"),
        ("OVS_KEY_ATTR_VLAN", "be16"),
        ("OVS_KEY_ATTR_ETHERTYPE", "be16"),
        ("OVS_KEY_ATTR_IPV4", "ipv4"),
        ("OVS_KEY_ATTR_IPV6", "none"),
        ("OVS_KEY_ATTR_TCP", "ports"),
        ("OVS_KEY_ATTR_UDP", "ports"),
        ("OVS_KEY_ATTR_ICMP", "none"),
        ("OVS_KEY_ATTR_ICMPV6", "none"),
        ("OVS_KEY_ATTR_ARP", "none"),
        ("OVS_KEY_ATTR_ND", "none"),
        ("OVS_KEY_ATTR_SKB_MARK", "uint32"),
        ("OVS_KEY_ATTR_TUNNEL", "tunnel"),
        ("OVS_KEY_ATTR_SCTP", "ports"),
        ("OVS_KEY_ATTR_TCP_FLAGS", "be16"),
        ("OVS_KEY_ATTR_DP_HASH", "uint32"),
        ("OVS_KEY_ATTR_RECIRC_ID", "uint32"),
        ("OVS_KEY_ATTR_MPLS", "none"),
        ("OVS_KEY_ATTR_CT_STATE", "uint32"),
        ("OVS_KEY_ATTR_CT_ZONE", "uint16"),
        ("OVS_KEY_ATTR_CT_MARK", "uint32"),
    )

    class ethernet(nla):  # type: ignore[misc]
        fields = (("src", "6s"), ("dst", "6s"))

    class ipv4(nla):  # type: ignore[misc]
        fields = (
            ("src", ">I"),
            ("dst", ">I"),
            ("proto", "B"),
            ("tos", "B"),
            ("ttl", "B"),
            ("frag", "B"),
        )

    class ports(nla):  # type: ignore[misc]
        fields = (("src", ">H"), ("dst", ">H"))

    class tunnel(nla):  # type: ignore[misc]
        nla_map = (
            ("OVS_TUNNEL_KEY_ATTR_ID", "be64"),
            ("OVS_TUNNEL_KEY_ATTR_IPV4_SRC", "be32"),
            ("OVS_TUNNEL_KEY_ATTR_IPV4_DST", "be32"),
            ("OVS_TUNNEL_KEY_ATTR_TOS", "uint8"),
            ("OVS_TUNNEL_KEY_ATTR_TTL", "uint8"),
            ("OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT", "flag"),
            ("OVS_TUNNEL_KEY_ATTR_CSUM", "flag"),
            ("OVS_TUNNEL_KEY_ATTR_OAM", "flag"),
            ("OVS_TUNNEL_KEY_ATTR_GENEVE_OPTS", "none"),
            ("OVS_TUNNEL_KEY_ATTR_TP_SRC", "be16"),
            ("OVS_TUNNEL_KEY_ATTR_TP_DST", "be16"),
        )


class P2MaskedKey(nla):  # type: ignore[misc]
    """A key attribute inside set_masked(): value then mask in one payload.

    Not a subclass of P2Key: pyroute2 caches the compiled nla_map on the
    class, and a subclass would inherit its parent's table.
    """

    nla_map = (
        ("OVS_KEY_ATTR_UNSPEC", "none"),
        ("OVS_KEY_ATTR_ENCAP", "none"),
        ("OVS_KEY_ATTR_PRIORITY", "none"),
        ("OVS_KEY_ATTR_IN_PORT", "none"),
        ("OVS_KEY_ATTR_ETHERNET", "ethernet_masked"),
    )

    class ethernet_masked(nla):  # type: ignore[misc]
        fields = (("src", "6s"), ("dst", "6s"), ("src_mask", "6s"), ("dst_mask", "6s"))


class P2Actions(nla):  # type: ignore[misc]
    """enum ovs_action_attr, with the nests the two flows use."""

    nla_map = (
        ("OVS_ACTION_ATTR_UNSPEC", "none"),
        ("OVS_ACTION_ATTR_OUTPUT", "uint32"),
        ("OVS_ACTION_ATTR_USERSPACE", "userspace"),
        ("OVS_ACTION_ATTR_SET", "key"),
        ("OVS_ACTION_ATTR_PUSH_VLAN", "push_vlan"),
        ("OVS_ACTION_ATTR_POP_VLAN", "flag"),
        ("OVS_ACTION_ATTR_SAMPLE", "none"),
        ("OVS_ACTION_ATTR_RECIRC", "uint32"),
        ("OVS_ACTION_ATTR_HASH", "none"),
        ("OVS_ACTION_ATTR_PUSH_MPLS", "none"),
        ("OVS_ACTION_ATTR_POP_MPLS", "none"),
        ("OVS_ACTION_ATTR_SET_MASKED", "masked_key"),
        ("OVS_ACTION_ATTR_CT", "ct"),
    )
    key = P2Key
    masked_key = P2MaskedKey

    class userspace(nla):  # type: ignore[misc]
        nla_map = (
            ("OVS_USERSPACE_ATTR_UNSPEC", "none"),
            ("OVS_USERSPACE_ATTR_PID", "uint32"),
            ("OVS_USERSPACE_ATTR_USERDATA", "cdata"),
            ("OVS_USERSPACE_ATTR_EGRESS_TUN_PORT", "uint32"),
            ("OVS_USERSPACE_ATTR_ACTIONS", "flag"),
        )

    class push_vlan(nla):  # type: ignore[misc]
        fields = (("tpid", ">H"), ("tci", ">H"))

    class ct(nla):  # type: ignore[misc]
        nla_map = (
            ("OVS_CT_ATTR_UNSPEC", "none"),
            ("OVS_CT_ATTR_COMMIT", "flag"),
            ("OVS_CT_ATTR_ZONE", "uint16"),
            ("OVS_CT_ATTR_MARK", "none"),
            ("OVS_CT_ATTR_LABELS", "none"),
            ("OVS_CT_ATTR_HELPER", "asciiz"),
        )


class P2FlowMsg(genlmsg):  # type: ignore[misc]
    """An ovs_flow message: genlmsghdr + struct ovs_header + OVS_FLOW_ATTR_*."""

    fields = (*genlmsg.fields, ("dpifindex", "i"))
    nla_map = (
        ("OVS_FLOW_ATTR_UNSPEC", "none"),
        ("OVS_FLOW_ATTR_KEY", "key"),
        ("OVS_FLOW_ATTR_ACTIONS", "actions"),
        ("OVS_FLOW_ATTR_STATS", "stats"),
        ("OVS_FLOW_ATTR_TCP_FLAGS", "uint8"),
        ("OVS_FLOW_ATTR_USED", "uint64"),
        ("OVS_FLOW_ATTR_CLEAR", "flag"),
        ("OVS_FLOW_ATTR_MASK", "key"),
        ("OVS_FLOW_ATTR_PROBE", "flag"),
        ("OVS_FLOW_ATTR_UFID", "cdata"),
        ("OVS_FLOW_ATTR_UFID_FLAGS", "uint32"),
        ("OVS_FLOW_ATTR_PAD", "none"),
    )
    key = P2Key
    actions = P2Actions

    class stats(nla):  # type: ignore[misc]
        fields = (("packets", "Q"), ("bytes", "Q"))


def _walk(node: Any) -> int:
    """Touch every attribute's value so that pyroute2 decodes it; count them."""
    n = 0
    for slot in node["attrs"]:
        value = slot.get_value()
        n += 1
        if isinstance(value, nlmsg_base) and "attrs" in value:
            n += _walk(value)
    return n


def p2_decode(datagram: bytes) -> list[P2FlowMsg]:
    out = []
    offset = 0
    end = len(datagram)
    while offset < end:
        msg = P2FlowMsg(datagram, offset=offset)
        msg.decode()
        _walk(msg)
        out.append(msg)
        offset += (msg["header"]["length"] + 3) & ~3
    return out


def _p2_tunnel(t: Tunnel) -> dict[str, Any]:
    attrs: list[list[Any]] = []
    if t.tun_id is not None:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_ID", t.tun_id])
    if t.ipv4_src is not None:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_IPV4_SRC", t.ipv4_src])
    if t.ipv4_dst is not None:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_IPV4_DST", t.ipv4_dst])
    if t.tos is not None:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_TOS", t.tos])
    if t.ttl is not None:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_TTL", t.ttl])
    if t.df:
        attrs.append(["OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT", True])
    return {"attrs": attrs}


_P2_KEY_NAMES = {int(k): f"OVS_KEY_ATTR_{k.name}" for k in KeyAttr}


def _p2_key(key: FlowKey) -> dict[str, Any]:
    attrs: list[list[Any]] = []
    for kind, value in key.items():
        name = _P2_KEY_NAMES[kind]
        if kind == KeyAttr.TUNNEL:
            attrs.append([name, _p2_tunnel(value)])
        elif kind == KeyAttr.ETHERNET:
            attrs.append([name, {"src": value.src, "dst": value.dst}])
        elif kind == KeyAttr.IPV4:
            attrs.append([name, value._asdict()])
        elif kind == KeyAttr.TCP:
            attrs.append([name, {"src": value.src, "dst": value.dst}])
        else:
            attrs.append([name, value])
    return {"attrs": attrs}


def _p2_actions(actions: list[Action]) -> dict[str, Any]:
    attrs: list[list[Any]] = []
    for a in actions:
        if isinstance(a, Output):
            attrs.append(["OVS_ACTION_ATTR_OUTPUT", a.port])
        elif isinstance(a, Set):
            attrs.append(["OVS_ACTION_ATTR_SET", _p2_key(FlowKey({a.kind: a.value}))])
        elif isinstance(a, SetMasked):
            v, m = a.value, a.mask
            eth = {"src": v.src, "dst": v.dst, "src_mask": m.src, "dst_mask": m.dst}
            masked = {"attrs": [["OVS_KEY_ATTR_ETHERNET", eth]]}
            attrs.append(["OVS_ACTION_ATTR_SET_MASKED", masked])
        elif isinstance(a, Ct):
            ct: list[list[Any]] = []
            if a.commit:
                ct.append(["OVS_CT_ATTR_COMMIT", True])
            if a.zone is not None:
                ct.append(["OVS_CT_ATTR_ZONE", a.zone])
            attrs.append(["OVS_ACTION_ATTR_CT", {"attrs": ct}])
        elif isinstance(a, PushVlan):
            attrs.append(["OVS_ACTION_ATTR_PUSH_VLAN", {"tpid": a.tpid, "tci": a.tci}])
        elif isinstance(a, Userspace):
            us: list[list[Any]] = [["OVS_USERSPACE_ATTR_PID", a.pid]]
            if a.userdata is not None:
                us.append(["OVS_USERSPACE_ATTR_USERDATA", a.userdata])
            attrs.append(["OVS_ACTION_ATTR_USERSPACE", {"attrs": us}])
        else:
            raise NotImplementedError(a)
    return {"attrs": attrs}


def p2_encode(flow: Flow, seq: int = 1) -> bytes:
    msg = P2FlowMsg()
    msg["cmd"] = FlowCmd.NEW
    msg["version"] = FLOW_VERSION
    msg["reserved"] = 0
    msg["dpifindex"] = DP_IFINDEX
    attrs: list[list[Any]] = [["OVS_FLOW_ATTR_KEY", _p2_key(flow.key)]]
    if flow.mask is not None:
        attrs.append(["OVS_FLOW_ATTR_MASK", _p2_key(flow.mask)])
    attrs.append(["OVS_FLOW_ATTR_ACTIONS", _p2_actions(flow.actions)])
    msg["attrs"] = attrs
    msg["header"]["type"] = FAMILY_ID
    msg["header"]["flags"] = REQUEST_FLAGS
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


# --- checks: both sides handle the same bytes ---------------------------------------


def _p2_summary(msg: P2FlowMsg) -> tuple[Any, ...]:
    key = msg.get_attr("OVS_FLOW_ATTR_KEY")
    actions = msg.get_attr("OVS_FLOW_ATTR_ACTIONS")
    stats = msg.get_attr("OVS_FLOW_ATTR_STATS")
    return (
        key.get_attr("OVS_KEY_ATTR_IN_PORT"),
        key.get_attr("OVS_KEY_ATTR_ETHERNET")["src"],
        msg.get_attr("OVS_FLOW_ATTR_USED"),
        (stats["packets"], stats["bytes"]),
        len(actions["attrs"]),
    )


def _odpctl_summary(flow: Flow) -> tuple[Any, ...]:
    assert flow.key.eth is not None
    return (
        flow.key.in_port,
        flow.key.eth.src,
        flow.used,
        (flow.packets, flow.bytes),
        len(flow.actions),
    )


def check(name: str, flow: Flow, datagram: bytes, batch: int) -> None:
    ours = odpctl_decode(datagram)
    assert len(ours) == batch and all(f == flow for f in ours), f"{name}: odpctl decode differs"
    theirs = p2_decode(datagram)
    assert len(theirs) == batch, f"{name}: pyroute2 decoded {len(theirs)} messages"
    assert _p2_summary(theirs[0]) == _odpctl_summary(flow), f"{name}: pyroute2 decode differs"
    a, b = odpctl_encode(flow), p2_encode(flow)
    if a != b:
        raise SystemExit(
            f"{name}: odpctl and pyroute2 encode different bytes:\n{a.hex()}\n{b.hex()}"
        )
    # And the request decodes back to the flow (no stats in a request).
    (msg,) = decode_messages(a)
    assert decode_flow_attrs(split_odp(msg.payload)[2]) == Flow(flow.key, flow.mask, flow.actions)


# --- timing --------------------------------------------------------------------------


def pin_one_cpu() -> int | None:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def rate(fn: Callable[[], Any], per_call: int, seconds: float, repeat: int) -> float:
    """Best messages/s over ``repeat`` runs of about ``seconds`` each."""
    # Warm up and calibrate: how many calls make one run.
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.05:
            break
        calls *= 2
    calls = max(1, int(calls * seconds / elapsed))
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - t0
        best = max(best, calls * per_call / elapsed)
    return best


def profile(flows: dict[str, Flow], batch: int, top: int) -> None:
    for name, flow in flows.items():
        datagram = dump_datagram(flow, batch)
        for op, fn in (
            ("decode", lambda d=datagram: odpctl_decode(d)),
            ("encode", lambda f=flow: odpctl_encode(f)),
        ):
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20_000 // (batch if op == "decode" else 1)):
                fn()
            prof.disable()
            print(f"\n--- cProfile: odpctl {name} {op} (sorted by own time) ---")
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one run")
    parser.add_argument("--repeat", type=int, default=9, help="runs; the best one counts")
    parser.add_argument(
        "--batch", type=int, default=16, help="flow messages per dump datagram decoded"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile odpctl's codec too")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    cpu = pin_one_cpu()
    flows = {"weave": weave_flow(), "heavy": heavy_flow()}
    datagrams = {name: dump_datagram(flow, args.batch) for name, flow in flows.items()}
    for name, flow in flows.items():
        check(name, flow, datagrams[name], args.batch)

    print(
        f"flow message codec, one core (cpu {cpu if cpu is not None else '?'}), "
        f"Python {sys.version.split()[0]}, best of {args.repeat} x {args.seconds:g}s"
    )
    print(
        f"decode: dump datagrams of {args.batch} messages; encode: one OVS_FLOW_CMD_NEW "
        "request per flow; same bytes on both sides"
    )
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(
            f"note: load average {load:.1f} on {os.cpu_count()} CPUs: absolute rates are low; "
            "the ratios are measured side by side"
        )
    sizes = ", ".join(
        f"{name} {len(odpctl_encode(f))}/{len(datagrams[name]) // args.batch} B"
        for name, f in flows.items()
    )
    print(f"message sizes (request/dump entry): {sizes}\n")
    header = (
        f"{'flow':6} {'op':7} {'odpctl msgs/s':>14} {'pyroute2 msgs/s':>16} {'ratio':>7}  target"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for name, flow in flows.items():
        datagram = datagrams[name]
        for op, ours, theirs, per_call, target in (
            (
                "decode",
                lambda d=datagram: odpctl_decode(d),
                lambda d=datagram: p2_decode(d),
                args.batch,
                DECODE_TARGET,
            ),
            (
                "encode",
                lambda f=flow: odpctl_encode(f),
                lambda f=flow: p2_encode(f),
                1,
                ENCODE_TARGET,
            ),
        ):
            r_ours = rate(ours, per_call, args.seconds, args.repeat)
            r_theirs = rate(theirs, per_call, args.seconds, args.repeat)
            verdict = "PASS" if r_ours >= target else "FAIL"
            failed |= verdict == "FAIL"
            print(
                f"{name:6} {op:7} {r_ours:14,.0f} {r_theirs:16,.0f} {r_ours / r_theirs:6.1f}x"
                f"  {verdict} (>= {target:,})",
                flush=True,
            )
    if args.profile:
        profile(flows, args.batch, args.top)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

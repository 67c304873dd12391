"""Flow actions in Open vSwitch's ODP text syntax: formatting.

`format_actions` prints a list of `odpctl.odp.actions.Action` exactly as
``ovs-dpctl dump-flows`` does (``lib/odp-util.c``, ``format_odp_actions``):
``drop`` for an empty list, bare port numbers for outputs, userdata shown
through Open vSwitch's cookie layouts, and so on.  `parse_actions`
(`odpctl.odp.text.actionparse`, re-exported here with it) reads all of it
back; tunnel headers are `odpctl.odp.text.tnlheader`'s.

Key attributes inside ``set(...)`` are printed by the key syntax,
`odpctl.odp.text.keys` (``format_key_attr``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from odpctl.odp.actions import (
    SLOW_PATH_REASONS,
    Action,
    AddMpls,
    CheckPktLen,
    Clone,
    ControllerCookie,
    Ct,
    CtClear,
    DecTtl,
    Drop,
    FlowSampleCookie,
    Hash,
    IpfixCookie,
    LbOutput,
    Meter,
    Nat,
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
    SampleDirection,
    Set,
    SetMasked,
    SflowCookie,
    SlowPathCookie,
    Trunc,
    TunnelPop,
    TunnelPush,
    UnknownAction,
    Userspace,
    decode_user_action_cookie,
)
from odpctl.odp.keys import Nsh, NshBase, Tunnel
from odpctl.odp.text.actionparse import parse_actions
from odpctl.odp.text.keys import format_key_attr
from odpctl.odp.text.memo import TextMemo, tunnel_fields
from odpctl.odp.text.tnlheader import tnl_header_text
from odpctl.odp.text.values import (
    format_ipv4,
    format_ipv6,
    format_mac,
    format_min_hex,
    hex0,
)
from odpctl.odp.uapi import (
    ETH_P_8021Q,
    VLAN_CFI,
    HashAlg,
    KeyAttr,
)

__all__ = ["format_actions", "parse_actions"]

UINT32_MAX = 0xFFFFFFFF
_PortNames = Mapping[int, str] | None


# --- shared little formatters ------------------------------------------------------


def _port(port: int, names: _PortNames) -> str:
    if names:
        name = names.get(port)
        if name is not None:
            return name
    return str(port)


def _mpls_lse(lse: int) -> str:
    return f"label={lse >> 12},tc={(lse >> 9) & 7},ttl={lse & 0xFF},bos={(lse >> 8) & 1}"


def _slow_path_reasons(reason: int) -> str:
    # format_flags(..., ','): names of known bits, then the unknown ones in hex.
    if not reason:
        return "0"
    names: list[str] = []
    bad = 0
    for bit in range(32):
        flag = 1 << bit
        if reason & flag:
            name = _SLOW_PATH_NAMES.get(flag)
            if name is None:
                bad |= flag
            else:
                names.append(name)
    if bad:
        names.append(f"0x{bad:x}")
    return ",".join(names)


_SLOW_PATH_NAMES = dict(SLOW_PATH_REASONS)


# --- formatting -------------------------------------------------------------------

_Out = list[str]


def format_actions(actions: Iterable[Action], port_names: _PortNames = None) -> str:
    """Actions as ``ovs-dpctl`` prints them; ``drop`` for none.

    ``port_names`` maps port numbers to the names to print instead, as
    ``ovs-dpctl --names`` does.
    """
    if port_names is None and type(actions) is list:
        # A dump repeats few action lists (one per destination): their text
        # is kept by an immutable stand-in (see odpctl.odp.text.memo).
        # An action holding a mutable value (clone, sample) makes it unhashable.
        return _TEXTS.text(tuple(map(_frozen_action, actions)), _format_actions, actions, None)
    return _format_actions(actions, port_names)


_TEXTS = TextMemo()


def _frozen_action(action: Action) -> Any:
    """An immutable stand-in for ``action``: itself if it hashes (a frozen
    action of immutable values), but an output() is its port (its own hash
    is a Python function) and a set() of a mutable Tunnel is the tunnel's
    fields."""
    if type(action) is Output:
        return action.port
    if type(action) is Set and type(action.value) is Tunnel:
        return Set, action.kind, tunnel_fields(action.value)
    return action


def _format_actions(actions: Iterable[Action], port_names: _PortNames) -> str:
    out: _Out = []
    _format_list(out, actions, port_names)
    return "".join(out)


def _format_list(out: _Out, actions: Iterable[Action], names: _PortNames) -> None:
    formatters = _FORMATTERS
    first = True
    for action in actions:
        if not first:
            out.append(",")
        first = False
        fmt = formatters.get(type(action))
        if fmt is None:
            raise TypeError(f"not an action: {action!r}")
        fmt(out, action, names)
    if first:
        out.append("drop")


def _fmt_output(out: _Out, a: Output, names: _PortNames) -> None:
    out.append(_port(a.port, names))


def _fmt_userspace(out: _Out, a: Userspace, names: _PortNames) -> None:
    out.append(f"userspace(pid={a.pid}")
    if a.userdata is not None:
        cookie = decode_user_action_cookie(a.userdata)
        if isinstance(cookie, SflowCookie):
            tci = cookie.vlan_tci
            out.append(f",sFlow(vid={tci & 0xFFF},pcp={tci >> 13},output={cookie.output})")
        elif isinstance(cookie, SlowPathCookie):
            out.append(f",slow_path({_slow_path_reasons(cookie.reason)})")
        elif isinstance(cookie, FlowSampleCookie):
            out.append(
                f",flow_sample(probability={cookie.probability}"
                f",collector_set_id={cookie.collector_set_id}"
                f",obs_domain_id={cookie.obs_domain_id}"
                f",obs_point_id={cookie.obs_point_id}"
                f",output_port={_port(cookie.output_odp_port, names)}"
            )
            if cookie.direction == SampleDirection.INGRESS:
                out.append(",ingress")
            elif cookie.direction == SampleDirection.EGRESS:
                out.append(",egress")
            out.append(")")
        elif isinstance(cookie, IpfixCookie):
            out.append(f",ipfix(output_port={_port(cookie.output_odp_port, names)})")
        elif isinstance(cookie, ControllerCookie):
            out.append(
                f",controller(reason={cookie.reason}"
                f",dont_send={int(bool(cookie.dont_send))}"
                f",continuation={int(bool(cookie.continuation))}"
                f",recirc_id={cookie.recirc_id}"
                f",rule_cookie={hex0(cookie.rule_cookie)}"
                f",controller_id={cookie.controller_id}"
                f",max_len={cookie.max_len})"
            )
        else:
            out.append(f",userdata({a.userdata.hex()})")
    if a.actions:
        out.append(",actions")
    if a.egress_tun_port is not None:
        out.append(f",tunnel_out_port={_port(a.egress_tun_port, names)}")
    out.append(")")


def _fmt_set(out: _Out, a: Set, _names: _PortNames) -> None:
    out.append("set(")
    out.append(format_key_attr(a.kind, a.value, None))
    out.append(")")


def _fmt_set_masked(out: _Out, a: SetMasked, _names: _PortNames) -> None:
    if a.kind == KeyAttr.NSH:
        out.append(f"set(nsh({_nsh_masked(a.value, a.mask)}))")
        return
    out.append("set(")
    out.append(format_key_attr(a.kind, a.value, a.mask))
    out.append(")")


def _nsh_masked(value: Nsh, mask: Nsh) -> str:
    """format_nsh_key_mask: the fields whose mask is not zero."""
    zero = NshBase(0, 0, 0, 0, 0)
    vb = value.base or zero
    mb = mask.base or zero
    vc = value.md1 or (0, 0, 0, 0)
    mc = mask.md1 or (0, 0, 0, 0)
    parts: list[str] = []

    def u8(name: str, v: int, m: int) -> None:
        if m:
            parts.append(f"{name}={v}" if m == 0xFF else f"{name}=0x{v:02x}/0x{m:02x}")

    def be32(name: str, v: int, m: int) -> None:
        if m:
            parts.append(f"{name}=0x{v:x}" if m == UINT32_MAX else f"{name}=0x{v:x}/0x{m:08x}")

    spi_mask = mb.path_hdr >> 8
    if spi_mask == 0xFFFFFF:
        spi_mask = UINT32_MAX
    u8("flags", vb.flags, mb.flags)
    u8("ttl", vb.ttl, mb.ttl)
    u8("mdtype", vb.mdtype, mb.mdtype)
    u8("np", vb.np, mb.np)
    be32("spi", vb.path_hdr >> 8, spi_mask)
    u8("si", vb.path_hdr & 0xFF, mb.path_hdr & 0xFF)
    for i in range(4):
        be32(f"c{i + 1}", vc[i], mc[i])
    return ",".join(parts)


def _vlan_tci(tci: int) -> str:
    # format_vlan_tci with a full mask, not verbose.
    text = f"vid={tci & 0xFFF},pcp={tci >> 13}"
    if not tci & VLAN_CFI:
        text += ",cfi=0"
    return text


def _fmt_push_vlan(out: _Out, a: PushVlan, _names: _PortNames) -> None:
    out.append("push_vlan(")
    if a.tpid != ETH_P_8021Q:
        out.append(f"tpid=0x{a.tpid:04x},")
    out.append(_vlan_tci(a.tci))
    out.append(")")


def _fmt_pop_vlan(out: _Out, _a: PopVlan, _names: _PortNames) -> None:
    out.append("pop_vlan")


def _fmt_sample(out: _Out, a: Sample, names: _PortNames) -> None:
    percentage = (100.0 * a.probability) / UINT32_MAX
    out.append(f"sample(sample={percentage:.1f}%,actions(")
    _format_list(out, a.actions, names)
    out.append("))")


def _fmt_recirc(out: _Out, a: Recirc, _names: _PortNames) -> None:
    out.append(f"recirc({hex0(a.id)})")


def _fmt_hash(out: _Out, a: Hash, _names: _PortNames) -> None:
    if a.alg == HashAlg.L4:
        out.append(f"hash(l4({a.basis}))")
    elif a.alg == HashAlg.SYM_L4:
        out.append(f"hash(sym_l4({a.basis}))")
    else:
        out.append(f"hash(Unknown hash algorithm({a.alg}))")


def _fmt_push_mpls(out: _Out, a: PushMpls, _names: _PortNames) -> None:
    out.append(f"push_mpls({_mpls_lse(a.lse)},eth_type=0x{a.ethertype:x})")


def _fmt_pop_mpls(out: _Out, a: PopMpls, _names: _PortNames) -> None:
    out.append(f"pop_mpls(eth_type=0x{a.ethertype:x})")


def _fmt_add_mpls(out: _Out, a: AddMpls, _names: _PortNames) -> None:
    out.append(f"add_mpls({_mpls_lse(a.lse)},eth_type=0x{a.ethertype:x})")


def _u128_text(value: bytes, mask: bytes) -> str:
    # format_u128, verbose: the value as one 128-bit number, then the mask
    # unless it is all ones.  Open vSwitch keeps labels as host-order u128.
    text = format_min_hex(_u128_be(value))
    if mask != b"\xff" * 16:
        text += "/" + format_min_hex(_u128_be(mask))
    return text


def _u128_be(raw: bytes) -> bytes:
    return int.from_bytes(raw, sys.byteorder).to_bytes(16, "big")


def _nat_text(n: Nat) -> str:
    """format_odp_ct_nat, including its complaints about inconsistent NATs."""
    has_addr = n.ip_min is not None or n.ip_max is not None
    has_proto = n.proto_min is not None or n.proto_max is not None
    if not (n.src or n.dst) and (
        has_addr or has_proto or n.persistent or n.proto_hash or n.proto_random
    ):
        return 'nat(error: options allowed only with "src" or "dst")'
    if n.src and n.dst:
        return 'nat(error: Only one of "src" or "dst" may be present.)'
    if n.ip_min is None and n.proto_min is not None:
        return "nat(error: proto but no IP.)"
    if (n.ip_min is None and n.ip_max is not None) or (
        n.proto_min is None and n.proto_max is not None
    ):
        return "nat(error: range max without min.)"
    if n.ip_min is not None and (
        len(n.ip_min) not in (4, 16) or (n.ip_max is not None and len(n.ip_max) != len(n.ip_min))
    ):
        return "nat(error: IP address sizes do not match)"
    addr_len = len(n.ip_min) if n.ip_min is not None else 0
    ip_min = n.ip_min or b""
    ip_max = n.ip_max or bytes(addr_len)
    proto_min = n.proto_min or 0
    proto_max = n.proto_max or 0
    max_set = any(ip_max)
    if (max_set and ip_min > ip_max) or (proto_max and proto_min > proto_max):
        return "nat(range error)"
    if not (n.src or n.dst):
        return "nat"
    text = "nat(src" if n.src else "nat(dst"
    if addr_len:
        if addr_len == 4:
            text += "=" + format_ipv4(int.from_bytes(ip_min, "big"))
            if max_set and ip_max != ip_min:
                text += "-" + format_ipv4(int.from_bytes(ip_max, "big"))
        else:
            text += "=" + _bracket(ip_min, bool(proto_min))
            if max_set and ip_max != ip_min:
                text += "-" + _bracket(ip_max, bool(proto_min))
        if proto_min:
            text += f":{proto_min}"
            if proto_max and proto_max != proto_min:
                text += f"-{proto_max}"
    flags = ""
    if n.persistent:
        flags += ",persistent"
    if n.proto_hash:
        flags += ",hash"
    if n.proto_random:
        flags += ",random"
    return text + flags + ")"


def _bracket(addr: bytes, bracket: bool) -> str:
    text = format_ipv6(addr)
    return f"[{text}]" if bracket else text


def _fmt_ct(out: _Out, a: Ct, _names: _PortNames) -> None:
    parts: list[str] = []
    if a.commit:
        parts.append("commit")
    if a.force_commit:
        parts.append("force_commit")
    if a.zone:
        parts.append(f"zone={a.zone}")
    if a.mark is not None:
        parts.append(f"mark={hex0(a.mark[0])}/{hex0(a.mark[1])}")
    if a.labels is not None:
        parts.append("label=" + _u128_text(*a.labels))
    if a.helper is not None:
        parts.append(f"helper={a.helper}")
    if a.timeout is not None:
        parts.append(f"timeout={a.timeout}")
    if a.nat is not None:
        parts.append(_nat_text(a.nat))
    out.append(f"ct({','.join(parts)})" if parts else "ct")


def _fmt_ct_clear(out: _Out, _a: CtClear, _names: _PortNames) -> None:
    out.append("ct_clear")


def _fmt_trunc(out: _Out, a: Trunc, _names: _PortNames) -> None:
    out.append(f"trunc({a.max_len})")


def _fmt_push_eth(out: _Out, a: PushEth, _names: _PortNames) -> None:
    out.append(f"push_eth(src={format_mac(a.src)},dst={format_mac(a.dst)})")


def _fmt_pop_eth(out: _Out, _a: PopEth, _names: _PortNames) -> None:
    out.append("pop_eth")


def _fmt_push_nsh(out: _Out, a: PushNsh, _names: _PortNames) -> None:
    # Open vSwitch prints push_nsh through the NSH header it would push
    # (odp_nsh_hdr_from_attr), so flags and TTL show as the header holds them.
    nsh = a.nsh
    base = nsh.base
    flags, ttl = (base.flags, base.ttl) if base is not None else (0, 63)
    mdtype, np, path = (base.mdtype, base.np, base.path_hdr) if base is not None else (0, 0, 0)
    if nsh.unknown:  # the header is abandoned before flags and TTL are set
        flags = ttl = 0
    out.append(
        f"push_nsh(flags={flags & 3},ttl={ttl & 0x3F},mdtype={mdtype},np={np}"
        f",spi=0x{path >> 8:x},si={path & 0xFF}"
    )
    if nsh.md1 is not None:
        metadata = b"".join(c.to_bytes(4, "big") for c in nsh.md1)
    else:
        metadata = nsh.md2 or b""
    if mdtype == 1:
        context = metadata[:16].ljust(16, b"\0")
        for i in range(4):
            out.append(f",c{i + 1}=0x{int.from_bytes(context[4 * i : 4 * i + 4], 'big'):x}")
    elif mdtype == 2:
        out.append(",md2=" + format_min_hex(metadata))
    else:
        out.append(",<error: unknown mdtype>")
    out.append(")")


def _fmt_pop_nsh(out: _Out, _a: PopNsh, _names: _PortNames) -> None:
    out.append("pop_nsh()")


def _fmt_meter(out: _Out, a: Meter, _names: _PortNames) -> None:
    out.append(f"meter({a.id})")


def _fmt_clone(out: _Out, a: Clone, names: _PortNames) -> None:
    out.append("clone(")
    _format_list(out, a.actions, names)
    out.append(")")


def _fmt_check_pkt_len(out: _Out, a: CheckPktLen, names: _PortNames) -> None:
    out.append(f"check_pkt_len(size={a.size},gt(")
    _format_list(out, a.gt, names)
    out.append("),le(")
    _format_list(out, a.le, names)
    out.append("))")


def _fmt_dec_ttl(out: _Out, a: DecTtl, names: _PortNames) -> None:
    out.append("dec_ttl(le_1(")
    _format_list(out, a.actions, names)
    out.append("))")


def _fmt_drop(out: _Out, _a: Drop, _names: _PortNames) -> None:
    out.append("drop")


def _fmt_psample(out: _Out, a: Psample, _names: _PortNames) -> None:
    out.append(f"psample(group={a.group}")
    if a.cookie is not None:
        out.append(",cookie=" + format_min_hex(a.cookie))
    out.append(")")


def _fmt_tunnel_push(out: _Out, a: TunnelPush, names: _PortNames) -> None:
    out.append(f"tnl_push(tnl_port({_port(a.tnl_port, names)}),")
    out.append(tnl_header_text(a.tnl_type, a.header))
    out.append(f",out_port({_port(a.out_port, names)}))")


def _fmt_tunnel_pop(out: _Out, a: TunnelPop, names: _PortNames) -> None:
    out.append(f"tnl_pop({_port(a.port, names)})")


def _fmt_lb_output(out: _Out, a: LbOutput, _names: _PortNames) -> None:
    out.append(f"lb_output({a.bond_id})")


def _fmt_unknown(out: _Out, a: UnknownAction, _names: _PortNames) -> None:
    out.append(f"action{a.kind}")
    if a.data:
        out.append("(" + " ".join(f"{b:02x}" for b in a.data) + ")")


_FORMATTERS: dict[type, Callable[[_Out, Any, _PortNames], None]] = {
    Output: _fmt_output,
    Userspace: _fmt_userspace,
    Set: _fmt_set,
    SetMasked: _fmt_set_masked,
    PushVlan: _fmt_push_vlan,
    PopVlan: _fmt_pop_vlan,
    Sample: _fmt_sample,
    Recirc: _fmt_recirc,
    Hash: _fmt_hash,
    PushMpls: _fmt_push_mpls,
    PopMpls: _fmt_pop_mpls,
    AddMpls: _fmt_add_mpls,
    Ct: _fmt_ct,
    CtClear: _fmt_ct_clear,
    Trunc: _fmt_trunc,
    PushEth: _fmt_push_eth,
    PopEth: _fmt_pop_eth,
    PushNsh: _fmt_push_nsh,
    PopNsh: _fmt_pop_nsh,
    Meter: _fmt_meter,
    Clone: _fmt_clone,
    CheckPktLen: _fmt_check_pkt_len,
    DecTtl: _fmt_dec_ttl,
    Drop: _fmt_drop,
    Psample: _fmt_psample,
    TunnelPush: _fmt_tunnel_push,
    TunnelPop: _fmt_tunnel_pop,
    LbOutput: _fmt_lb_output,
    UnknownAction: _fmt_unknown,
}

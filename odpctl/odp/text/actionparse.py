"""Flow actions in Open vSwitch's ODP text syntax.

`format_actions` prints a list of `odpctl.odp.actions.Action` exactly as
``ovs-dpctl dump-flows`` does (``lib/odp-util.c``, ``format_odp_actions``):
``drop`` for an empty list, bare port numbers for outputs, userdata shown
through Open vSwitch's cookie layouts, and so on.

`parse_actions` reads what Open vSwitch's parser (``odp_actions_from_string``)
accepts, and also everything `format_actions` prints that Open vSwitch's own
parser cannot read back (``push_mpls``, ``pop_mpls``, ``hash``, ``push_eth``,
``pop_eth``, ``dec_ttl``, ``recirc(0x..)``, unknown ``actionN(..)``, a
``drop`` inside a list...), so that text round-trips.  Errors are
`ParseError` with the column of the offending text.

Key attributes inside ``set(...)`` are read and printed by the key syntax,
`odpctl.odp.text.keys` (``parse_key_attr`` / ``format_key_attr``).
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from odpctl.errors import ParseError
from odpctl.odp.actions import (
    MAX_NESTING,
    ODPP_NONE,
    PSAMPLE_COOKIE_MAX_SIZE,
    SLOW_PATH_REASONS,
    TNL_PUSH_HEADER_MAX,
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
    encode_user_action_cookie,
)
from odpctl.odp.keys import Nsh, NshBase, Tunnel
from odpctl.odp.text.keys import format_key_attr, parse_key_attr
from odpctl.odp.text.memo import TextMemo, tunnel_fields
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.values import (
    format_ipv4,
    format_ipv6,
    format_mac,
    format_min_hex,
    hex0,
    parse_cint,
    parse_int_bytes,
    parse_ipv4,
    parse_ipv6_strict,
    parse_mac,
)
from odpctl.odp.uapi import (
    ETH_P_8021Q,
    ETH_P_IP,
    NEXTHDR_ROUTING,
    VLAN_CFI,
    HashAlg,
    KeyAttr,
    VportType,
)

UINT32_MAX = 0xFFFFFFFF
_DELIMITERS = ", \t\r\n"
_PortNames = Mapping[int, str] | None
_PortNumbers = Mapping[str, int] | None


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
_SLOW_PATH_BITS = {name: bit for bit, name in SLOW_PATH_REASONS}


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


def _fmt_set(out: _Out, a: Set, names: _PortNames) -> None:
    out.append("set(")
    out.append(format_key_attr(a.kind, a.value, None))
    out.append(")")


def _fmt_set_masked(out: _Out, a: SetMasked, names: _PortNames) -> None:
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


def _fmt_push_vlan(out: _Out, a: PushVlan, names: _PortNames) -> None:
    out.append("push_vlan(")
    if a.tpid != ETH_P_8021Q:
        out.append(f"tpid=0x{a.tpid:04x},")
    out.append(_vlan_tci(a.tci))
    out.append(")")


def _fmt_pop_vlan(out: _Out, a: PopVlan, names: _PortNames) -> None:
    out.append("pop_vlan")


def _fmt_sample(out: _Out, a: Sample, names: _PortNames) -> None:
    percentage = (100.0 * a.probability) / UINT32_MAX
    out.append(f"sample(sample={percentage:.1f}%,actions(")
    _format_list(out, a.actions, names)
    out.append("))")


def _fmt_recirc(out: _Out, a: Recirc, names: _PortNames) -> None:
    out.append(f"recirc({hex0(a.id)})")


def _fmt_hash(out: _Out, a: Hash, names: _PortNames) -> None:
    if a.alg == HashAlg.L4:
        out.append(f"hash(l4({a.basis}))")
    elif a.alg == HashAlg.SYM_L4:
        out.append(f"hash(sym_l4({a.basis}))")
    else:
        out.append(f"hash(Unknown hash algorithm({a.alg}))")


def _fmt_push_mpls(out: _Out, a: PushMpls, names: _PortNames) -> None:
    out.append(f"push_mpls({_mpls_lse(a.lse)},eth_type=0x{a.ethertype:x})")


def _fmt_pop_mpls(out: _Out, a: PopMpls, names: _PortNames) -> None:
    out.append(f"pop_mpls(eth_type=0x{a.ethertype:x})")


def _fmt_add_mpls(out: _Out, a: AddMpls, names: _PortNames) -> None:
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


def _fmt_ct(out: _Out, a: Ct, names: _PortNames) -> None:
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


def _fmt_ct_clear(out: _Out, a: CtClear, names: _PortNames) -> None:
    out.append("ct_clear")


def _fmt_trunc(out: _Out, a: Trunc, names: _PortNames) -> None:
    out.append(f"trunc({a.max_len})")


def _fmt_push_eth(out: _Out, a: PushEth, names: _PortNames) -> None:
    out.append(f"push_eth(src={format_mac(a.src)},dst={format_mac(a.dst)})")


def _fmt_pop_eth(out: _Out, a: PopEth, names: _PortNames) -> None:
    out.append("pop_eth")


def _fmt_push_nsh(out: _Out, a: PushNsh, names: _PortNames) -> None:
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


def _fmt_pop_nsh(out: _Out, a: PopNsh, names: _PortNames) -> None:
    out.append("pop_nsh()")


def _fmt_meter(out: _Out, a: Meter, names: _PortNames) -> None:
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


def _fmt_drop(out: _Out, a: Drop, names: _PortNames) -> None:
    out.append("drop")


def _fmt_psample(out: _Out, a: Psample, names: _PortNames) -> None:
    out.append(f"psample(group={a.group}")
    if a.cookie is not None:
        out.append(",cookie=" + format_min_hex(a.cookie))
    out.append(")")


def _fmt_tunnel_push(out: _Out, a: TunnelPush, names: _PortNames) -> None:
    out.append(f"tnl_push(tnl_port({_port(a.tnl_port, names)}),")
    out.append(_tnl_header_text(a.tnl_type, a.header))
    out.append(f",out_port({_port(a.out_port, names)}))")


def _fmt_tunnel_pop(out: _Out, a: TunnelPop, names: _PortNames) -> None:
    out.append(f"tnl_pop({_port(a.port, names)})")


def _fmt_lb_output(out: _Out, a: LbOutput, names: _PortNames) -> None:
    out.append(f"lb_output({a.bond_id})")


def _fmt_unknown(out: _Out, a: UnknownAction, names: _PortNames) -> None:
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


# --- tunnel push headers ----------------------------------------------------------
#
# struct ovs_action_push_tnl carries a ready-made encapsulation header:
# Ethernet, IPv4 or IPv6, then UDP + VXLAN/Geneve/GTP-U, GRE, ERSPAN (over
# GRE) or an SRv6 routing header.  The text shows a few of its fields.

_GRE_CSUM = 0x8000
_GRE_KEY = 0x2000
_GRE_SEQ = 0x1000
_ETH_TYPE_TEB = 0x6558
_ETH_TYPE_ERSPAN1 = 0x88BE
_ETH_TYPE_ERSPAN2 = 0x22EB
_SRV6_MAX_SEGS = 6
_ETH_LEN, _IP_LEN, _IP6_LEN, _UDP_LEN = 14, 20, 40, 8


def _be(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "big")


def _tnl_header_text(tnl_type: int, h: bytes) -> str:
    """format_odp_tnl_push_header."""
    size = len(h)
    if size < _ETH_LEN:
        return f"header(size={size},type={tnl_type}, eth(truncated header))"
    eth_type = _be(h, 12, 2)
    text = [
        f"header(size={size},type={tnl_type},eth(dst={format_mac(h[0:6])},"
        f"src={format_mac(h[6:12])},dl_type=0x{eth_type:04x}),"
    ]
    left = size - _ETH_LEN
    l3 = _ETH_LEN
    if eth_type == ETH_P_IP:
        if left < _IP_LEN:
            text.append("ipv4(truncated header))")
            return "".join(text)
        text.append(
            f"ipv4(src={format_ipv4(_be(h, l3 + 12, 4))},dst={format_ipv4(_be(h, l3 + 16, 4))}"
            f",proto={h[l3 + 9]},tos={hex0(h[l3 + 1])},ttl={h[l3 + 8]}"
            f",frag=0x{_be(h, l3 + 6, 2):x}),"
        )
        l4 = l3 + _IP_LEN
        left -= _IP_LEN
    else:
        if left < _IP6_LEN:
            text.append("ipv6(truncated header))")
            return "".join(text)
        flow = _be(h, l3, 4)
        text.append(
            f"ipv6(src={format_ipv6(h[l3 + 8 : l3 + 24])},dst={format_ipv6(h[l3 + 24 : l3 + 40])}"
            f",label={flow & 0xFFFFF},proto={h[l3 + 6]},tclass=0x{(flow >> 20) & 0xFF:x}"
            f",hlimit={h[l3 + 7]}),"
        )
        l4 = l3 + _IP6_LEN
        left -= _IP6_LEN

    def udp() -> bool:
        if left < _UDP_LEN:
            text.append("udp(truncated header))")
            return False
        text.append(
            f"udp(src={_be(h, l4, 2)},dst={_be(h, l4 + 2, 2)},csum=0x{_be(h, l4 + 6, 2):x}),"
        )
        return True

    if tnl_type == VportType.VXLAN:
        if not udp():
            return "".join(text)
        left -= _UDP_LEN
        if left < 8:
            text.append("vxlan(truncated header))")
            return "".join(text)
        vx = l4 + _UDP_LEN
        text.append(f"vxlan(flags=0x{_be(h, vx, 4):x},vni=0x{_be(h, vx + 4, 4) >> 8:x})")
    elif tnl_type == VportType.GENEVE:
        if not udp():
            return "".join(text)
        left -= _UDP_LEN
        if left < 8:
            text.append("geneve(truncated header))")
            return "".join(text)
        g = l4 + _UDP_LEN
        opt_len = h[g] & 0x3F
        oam = "oam," if h[g + 1] & 0x80 else ""
        crit = "crit," if h[g + 1] & 0x40 else ""
        text.append(f"geneve({oam}{crit}vni=0x{_be(h, g + 4, 4) >> 8:x}")
        left -= 8
        if opt_len:
            if left < opt_len * 4:
                text.append(",options(invalid length)))")
                return "".join(text)
            text.append(",options(" + _geneve_opts_text(h[g + 8 : g + 8 + opt_len * 4]) + ")")
        text.append(")")
    elif tnl_type == VportType.SRV6:
        if left < 8:
            text.append("srv6(truncated header))")
            return "".join(text)
        nr_segs = h[l4 + 4] + 1
        left -= 8
        text.append(f"srv6(segments_left={h[l4 + 3]},segs(")
        if left < nr_segs * 16:
            text.append("truncated segs)))")
            return "".join(text)
        segs = l4 + 8
        text.append(
            ",".join(
                format_ipv6(h[segs + 16 * i : segs + 16 * i + 16]) for i in reversed(range(nr_segs))
            )
        )
        text.append("))")
    elif tnl_type in (VportType.GRE, VportType.IP6GRE):
        if left < 4:
            text.append("gre(truncated header))")
            return "".join(text)
        flags = _be(h, l4, 2)
        text.append(f"gre((flags=0x{flags:x},proto=0x{_be(h, l4 + 2, 2):x})")
        left -= 4
        opt = l4 + 4
        if flags & _GRE_CSUM:
            if left < 2:
                text.append(",csum=<truncated>))")
                return "".join(text)
            left -= 2
            text.append(f",csum=0x{_be(h, opt, 2):x}")
            opt += 4
        if flags & _GRE_KEY:
            if left < 4:
                text.append(",key=<truncated>))")
                return "".join(text)
            left -= 4
            text.append(f",key=0x{_be(h, opt, 4):x}")
            opt += 4
        if flags & _GRE_SEQ:
            if left < 4:
                text.append(",seq=<truncated>))")
                return "".join(text)
            text.append(f",seq=0x{_be(h, opt, 4):x}")
        text.append(")")
    elif tnl_type in (VportType.ERSPAN, VportType.IP6ERSPAN):
        if left < 8 + 4:
            text.append("erspan(truncated header))")
            return "".join(text)
        ers = l4 + 8
        left -= 12
        version = h[ers] >> 4
        sid = (h[ers + 2] & 3) << 8 | h[ers + 3]
        if version == 1:
            if left < 4:
                text.append("erspan(ver=1,truncated header))")
                return "".join(text)
            text.append(f"erspan(ver=1,sid=0x{sid:x},idx=0x{_be(h, ers + 4, 4):x})")
        elif version == 2:
            if left < 8:
                text.append("erspan(ver=2, truncated header))")
                return "".join(text)
            b6, b7 = h[ers + 10], h[ers + 11]
            hwid = (b6 & 3) << 4 | b7 >> 4
            text.append(f"erspan(ver=2,sid=0x{sid:x},dir={(b7 >> 3) & 1},hwid=0x{hwid:x})")
    elif tnl_type == VportType.GTPU:
        if not udp():
            return "".join(text)
        left -= _UDP_LEN
        if left < 8:
            text.append("gtpu(truncated header))")
            return "".join(text)
        gt = l4 + _UDP_LEN
        text.append(f"gtpu(flags=0x{h[gt]:x},msgtype={h[gt + 1]},teid=0x{_be(h, gt + 4, 4):x})")
    text.append(")")
    return "".join(text)


def _geneve_opts_text(opts: bytes) -> str:
    """format_geneve_opts without a mask."""
    parts: list[str] = []
    left = len(opts)
    at = 0
    while left > 0:
        if left < 4:
            parts.append(f"opt len {left} less than minimum 4")
            break
        data_len = (opts[at + 3] & 0x1F) * 4
        size = 4 + data_len
        if size > left:
            parts.append(f"opt len {size} greater than remaining {left}")
            break
        text = f"{{class={hex0(_be(opts, at, 2))},type={hex0(opts[at + 2])},len={data_len}"
        if data_len:
            text += "," + format_min_hex(opts[at + 4 : at + size])
        parts.append(text + "}")
        at += size
        left -= size
    return "".join(parts)


def _ip_checksum(header: bytes) -> int:
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# --- parsing ----------------------------------------------------------------------


def parse_actions(text: str, port_names: _PortNumbers = None) -> list[Action]:
    """Parse actions in Open vSwitch's syntax (what ``ovs-dpctl add-flow`` takes).

    ``drop`` alone is no actions at all, which every kernel drops, rather
    than the explicit drop action Open vSwitch reads there: kernels before
    6.4 refuse that action (ovs-dpctl's own ``add-flow ... drop`` fails on
    them), and both print as ``drop``.  An empty text is no actions too.
    ``port_names`` lets output actions name ports.  Raises `ParseError` with
    the column of the problem.
    """
    if text.strip().lower() == "drop":
        return []
    parser = _Parser(Scanner(text), port_names)
    return parser.action_list(0, nested=False)


_INT_STOPS = ",) \t\r\n"  # a number ends at a delimiter or a closing parenthesis
_C_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IPV4_AT = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_IPV6_CHARS = _HEX_DIGITS | frozenset(":.")
_ACTION_N = re.compile(r"action(\d+)")


class _Parser:
    __slots__ = ("names", "sc")

    def __init__(self, sc: Scanner, names: _PortNumbers) -> None:
        self.sc = sc
        self.names = names

    # --- small readers -----------------------------------------------------------

    def error(self, message: str, pos: int | None = None) -> ParseError:
        return self.sc.error(message, pos)

    def uint(self, what: str, bits: int = 32, stops: str = _INT_STOPS) -> int:
        return self.sc.value(lambda t: parse_cint(t, bits), what, stops)

    def hex(self, what: str, bits: int = 32, stops: str = _INT_STOPS) -> int:
        """A number scanf's %x reads: hexadecimal, with or without 0x."""

        def parse(token: str) -> int:
            digits = token[2:] if token[:2].lower() == "0x" else token
            if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("not a hexadecimal number")
            value = int(digits, 16)
            if value >> bits:
                raise ValueError(f"out of range for {bits} bits")
            return value

        return self.sc.value(parse, what, stops)

    def port(self, what: str, stops: str = _INT_STOPS) -> int:
        """A port number, or a name from the port map."""
        token, start = self.sc.token(stops)
        if self.names and token in self.names:
            return self.names[token]
        self.sc.pos = start
        return self.uint(what, 32, stops)

    def field(self, name: str, context: str) -> None:
        """``name=`` (the literal, including the equals sign)."""
        self.sc.expect(name, context)

    def item_name(self, what: str) -> str:
        return self.sc.name(what)

    def end_of_item(self, context: str) -> bool:
        """After one item of a parenthesised list: True at its ')', which is read."""
        sc = self.sc
        if sc.accept(")"):
            return True
        ch = sc.peek()
        if not ch or ch not in _DELIMITERS:
            found = f"'{ch}'" if ch else "end of text"
            raise self.error(f"expected ',' or ')' in {context}, found {found}")
        return False

    def skip_delimiters(self) -> None:
        sc = self.sc
        text, pos = sc.text, sc.pos
        while pos < len(text) and text[pos] in _DELIMITERS:
            pos += 1
        sc.pos = pos

    # --- action lists --------------------------------------------------------------

    def action_list(self, depth: int, nested: bool = True) -> list[Action]:
        """Actions up to the end (top level) or up to a ``)`` (left unread)."""
        sc = self.sc
        if nested:
            if depth >= MAX_NESTING:
                raise self.error(f"actions nested more than {MAX_NESTING} deep")
            # Open vSwitch prints an empty nested list as "drop".
            if (
                sc.text[sc.pos : sc.pos + 4].lower() == "drop"
                and sc.text[sc.pos + 4 : sc.pos + 5] == ")"
            ):
                sc.pos += 4
                return []
        actions: list[Action] = []
        while True:
            self.skip_delimiters()
            if sc.at_end():
                if nested:
                    raise self.error("expected ')' to close the action list")
                return actions
            if nested and sc.peek() == ")":
                return actions
            actions.append(self.action(depth))
            ch = sc.peek()
            if ch and ch not in _DELIMITERS and not (nested and ch == ")"):
                raise self.error(f"unexpected '{ch}' after an action")

    def nested_list(self, depth: int, context: str) -> tuple[Action, ...]:
        actions = self.action_list(depth + 1)
        self.sc.expect(")", context)
        return tuple(actions)

    def action(self, depth: int) -> Action:
        sc = self.sc
        start = sc.pos
        if sc.peek().isdigit():
            return Output(self.uint("port number", 32, _DELIMITERS + ")"))
        if self.names:
            token, _ = sc.token(_DELIMITERS + ")")
            if token in self.names:
                return Output(self.names[token])
            sc.pos = start
        name = sc.name("an action")
        parse = _ACTION_PARSERS.get(name)
        if parse is not None:
            return parse(self, depth)
        match = _ACTION_N.fullmatch(name)
        if match:
            return self.unknown_action(int(match.group(1)), start)
        raise self.error(f"unknown action '{name}'", start)

    # --- one parser per action -----------------------------------------------------

    def p_userspace(self, depth: int) -> Action:
        sc = self.sc
        ctx = "userspace action"
        sc.expect("(", ctx)
        self.field("pid=", ctx)
        pid = self.uint("pid", 32)
        userdata: bytes | None = None
        if sc.accept(",sFlow("):
            self.field("vid=", "sFlow")
            vid = self.uint("VLAN id", 12)
            self.field(",pcp=", "sFlow")
            pcp = self.uint("VLAN priority", 3)
            self.field(",output=", "sFlow")
            output = self.uint("sFlow output", 32)
            sc.expect(")", "sFlow")
            tci = vid | pcp << 13
            if tci:
                tci |= VLAN_CFI
            userdata = encode_user_action_cookie(SflowCookie(tci, output))
        elif sc.accept(",slow_path("):
            userdata = encode_user_action_cookie(SlowPathCookie(self.slow_path_reasons()))
        elif sc.accept(",flow_sample("):
            ctx = "flow_sample"
            self.field("probability=", ctx)
            probability = self.uint("probability", 16)
            self.field(",collector_set_id=", ctx)
            collector = self.uint("collector_set_id", 32)
            self.field(",obs_domain_id=", ctx)
            domain = self.uint("obs_domain_id", 32)
            self.field(",obs_point_id=", ctx)
            point = self.uint("obs_point_id", 32)
            self.field(",output_port=", ctx)
            output = self.port("output_port")
            direction = SampleDirection.DEFAULT
            if sc.accept(",ingress"):
                direction = SampleDirection.INGRESS
            elif sc.accept(",egress"):
                direction = SampleDirection.EGRESS
            sc.expect(")", ctx)
            userdata = encode_user_action_cookie(
                FlowSampleCookie(probability, collector, domain, point, output, direction)
            )
        elif sc.accept(",ipfix("):
            self.field("output_port=", "ipfix")
            output = self.port("output_port")
            sc.expect(")", "ipfix")
            userdata = encode_user_action_cookie(IpfixCookie(output))
        elif sc.accept(",controller("):
            ctx = "controller"
            self.field("reason=", ctx)
            reason = self.uint("reason", 16)
            self.field(",dont_send=", ctx)
            dont_send = self.uint("dont_send", 8)
            self.field(",continuation=", ctx)
            continuation = self.uint("continuation", 8)
            self.field(",recirc_id=", ctx)
            recirc_id = self.uint("recirc_id", 32)
            self.field(",rule_cookie=", ctx)
            rule_cookie = self.hex("rule_cookie", 64)
            self.field(",controller_id=", ctx)
            controller_id = self.uint("controller_id", 16)
            self.field(",max_len=", ctx)
            max_len = self.uint("max_len", 16)
            sc.expect(")", ctx)
            userdata = encode_user_action_cookie(
                ControllerCookie(
                    int(bool(dont_send)),
                    int(bool(continuation)),
                    reason,
                    recirc_id,
                    rule_cookie,
                    controller_id,
                    max_len,
                )
            )
        elif sc.accept(",userdata("):
            userdata = self.hex_pairs("userdata")
            sc.expect(")", "userdata")
            # Open vSwitch always sends at least 8 bytes (odp_put_userspace_action).
            userdata = userdata.ljust(8, b"\0")
        actions = sc.accept(",actions")
        tun_port: int | None = None
        if sc.accept(",tunnel_out_port="):
            tun_port = self.port("tunnel_out_port")
            if tun_port == ODPP_NONE:
                tun_port = None
        sc.expect(")", "userspace action")
        return Userspace(pid, userdata, tun_port, actions)

    def slow_path_reasons(self) -> int:
        """Reasons by name or number, separated by '|' (or ',', as printed)."""
        sc = self.sc
        reason = 0
        while True:
            start = sc.pos
            if sc.peek().isdigit():
                reason |= self.uint("slow path reason", 32, ",|)")
            else:
                name = sc.name("a slow path reason")
                bit = _SLOW_PATH_BITS.get(name)
                if bit is None:
                    raise self.error(f"unknown slow path reason '{name}'", start)
                reason |= bit
            if sc.accept(")"):
                return reason
            if not (sc.accept("|") or sc.accept(",")):
                sc.expect(")", "slow_path")

    def hex_pairs(self, what: str) -> bytes:
        """Pairs of hex digits, blanks allowed between them (ofpbuf_put_hex)."""
        sc = self.sc
        text = sc.text
        out = bytearray()
        while True:
            while sc.peek() in (" ", "\t", "\r", "\n"):
                sc.pos += 1
            pair = text[sc.pos : sc.pos + 2]
            if len(pair) < 2 or not all(c in _HEX_DIGITS for c in pair):
                break
            out.append(int(pair, 16))
            sc.pos += 2
        if sc.peek() and sc.peek() in _HEX_DIGITS:
            raise self.error(f"odd number of hex digits in {what}")
        return bytes(out)

    def p_set(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "set action")
        kind, value, mask = parse_key_attr(sc)
        sc.expect(")", "set action")
        return _set_action(kind, value, mask)

    def p_push_vlan(self, depth: int) -> Action:
        sc = self.sc
        ctx = "push_vlan"
        sc.expect("(", ctx)
        tpid = ETH_P_8021Q
        if sc.accept("tpid="):
            tpid = self.uint("TPID", 16)
            sc.expect(",", ctx)
        self.field("vid=", ctx)
        vid = self.uint("VLAN id", 12)
        self.field(",pcp=", ctx)
        pcp = self.uint("VLAN priority", 3)
        cfi = 1
        if sc.accept(",cfi="):
            cfi = self.uint("CFI", 32)
        sc.expect(")", ctx)
        return PushVlan(tpid, vid | pcp << 13 | (VLAN_CFI if cfi else 0))

    def p_pop_vlan(self, depth: int) -> Action:
        return PopVlan()

    def p_sample(self, depth: int) -> Action:
        sc = self.sc
        ctx = "sample action"
        sc.expect("(", ctx)
        self.field("sample=", ctx)
        token, start = sc.token("%,)")
        if not _C_FLOAT.fullmatch(token):
            raise self.error(f"invalid percentage '{token}'", start)
        percentage = float(token)
        if not 0.0 <= percentage <= 100.0:
            raise self.error(f"percentage {token} is not between 0 and 100", start)
        sc.expect("%", ctx)
        self.field(",actions(", ctx)
        actions = self.nested_list(depth, ctx)
        sc.expect(")", ctx)
        # Open vSwitch's rounding (parse_odp_action__).
        probability = math.floor(UINT32_MAX * (percentage / 100.0) + 0.5)
        probability = min(max(probability, 0), UINT32_MAX)
        return Sample(probability, actions)

    def p_recirc(self, depth: int) -> Action:
        return Recirc(self.parenthesised_uint("recirc", "recirc_id", 32))

    def parenthesised_uint(self, ctx: str, what: str, bits: int) -> int:
        self.sc.expect("(", ctx)
        value = self.uint(what, bits)
        self.sc.expect(")", ctx)
        return value

    def p_hash(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "hash action")
        start = sc.pos
        name = sc.name("a hash algorithm")
        algs = {"l4": HashAlg.L4, "sym_l4": HashAlg.SYM_L4}
        if name not in algs:
            raise self.error(f"unknown hash algorithm '{name}'", start)
        basis = self.parenthesised_uint("hash action", "hash basis", 32)
        sc.expect(")", "hash action")
        return Hash(algs[name], basis)

    def mpls_lse(self, ctx: str) -> tuple[int, int]:
        sc = self.sc
        sc.expect("(", ctx)
        self.field("label=", ctx)
        label = self.uint("MPLS label", 20)
        self.field(",tc=", ctx)
        tc = self.uint("MPLS traffic class", 3)
        self.field(",ttl=", ctx)
        ttl = self.uint("MPLS TTL", 8)
        self.field(",bos=", ctx)
        bos = self.uint("MPLS bottom of stack", 1)
        self.field(",eth_type=", ctx)
        eth_type = self.uint("ethertype", 16)
        sc.expect(")", ctx)
        return label << 12 | tc << 9 | bos << 8 | ttl, eth_type

    def p_push_mpls(self, depth: int) -> Action:
        return PushMpls(*self.mpls_lse("push_mpls"))

    def p_add_mpls(self, depth: int) -> Action:
        lse, eth_type = self.mpls_lse("add_mpls")
        return AddMpls(lse, eth_type, 0)

    def p_pop_mpls(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "pop_mpls")
        self.field("eth_type=", "pop_mpls")
        eth_type = self.uint("ethertype", 16)
        sc.expect(")", "pop_mpls")
        return PopMpls(eth_type)

    def p_ct(self, depth: int) -> Action:
        sc = self.sc
        commit = force = False
        zone: int | None = None
        mark: tuple[int, int] | None = None
        labels: tuple[bytes, bytes] | None = None
        helper = timeout = None
        nat: Nat | None = None
        if sc.accept("(") and not sc.accept(")"):
            while True:
                self.skip_delimiters()
                start = sc.pos
                item = self.item_name("a ct option")
                if item == "commit":
                    commit = True
                elif item == "force_commit":
                    force = True
                elif item == "zone":
                    self.field("=", "ct zone")
                    zone = self.uint("ct zone", 16) or None
                elif item == "mark":
                    self.field("=", "ct mark")
                    value = self.hex("ct mark", 32, _INT_STOPS + "/")
                    mask = UINT32_MAX
                    if sc.accept("/"):
                        mask = self.hex("ct mark mask", 32)
                    mark = (value, mask) if mask else None
                elif item == "label":
                    self.field("=", "ct label")
                    value_b = self.u128("ct label", _INT_STOPS + "/")
                    mask_b = b"\xff" * 16
                    if sc.accept("/"):
                        mask_b = self.u128("ct label mask", _INT_STOPS)
                    labels = (value_b, mask_b) if any(mask_b) else None
                elif item in ("helper", "timeout"):
                    self.field("=", f"ct {item}")
                    token, tstart = sc.token(_DELIMITERS + ")")
                    limit = 15 if item == "helper" else 31
                    if not token or len(token) > limit:
                        raise self.error(
                            f"ct {item} must be 1 to {limit} characters, not '{token}'", tstart
                        )
                    if item == "helper":
                        helper = token
                    else:
                        timeout = token
                elif item == "nat":
                    nat = self.nat(start)
                else:
                    raise self.error(f"unknown ct option '{item}'", start)
                if self.end_of_item("ct action"):
                    break
        if commit and force:
            raise self.error("ct action cannot both commit and force_commit")
        return Ct(commit, force, zone, mark, labels, helper, timeout, None, nat)

    def u128(self, what: str, stops: str) -> bytes:
        """parse_int_string into 16 bytes, kept as Open vSwitch's host-order u128."""
        value = self.sc.value(lambda t: parse_int_bytes(t, 16), what, stops)
        return int.from_bytes(value, "big").to_bytes(16, sys.byteorder)

    def nat(self, open_at: int) -> Nat:
        """``nat`` or ``nat(...)``; ``open_at`` is where the word starts."""
        sc = self.sc
        if not sc.accept("("):
            return Nat()
        src = dst = persistent = proto_hash = proto_random = False
        ip_min: bytes | None = None
        ip_max: bytes | None = None
        proto_min = proto_max = 0
        if not sc.accept(")"):
            while True:
                self.skip_delimiters()
                start = sc.pos
                item = self.item_name("a nat option")
                if item in ("src", "dst"):
                    if item == "src":
                        src = True
                    else:
                        dst = True
                    if sc.accept("="):
                        ip_min, ip_max, proto_min, proto_max = self.nat_range()
                elif item == "persistent":
                    persistent = True
                elif item == "hash":
                    proto_hash = True
                elif item == "random":
                    proto_random = True
                else:
                    raise self.error(f"unknown nat option '{item}'", start)
                if self.end_of_item("nat"):
                    break
        if src and dst:
            raise self.error("nat cannot be both src and dst", open_at)
        if ip_min is not None and ip_max is not None and any(ip_max) and ip_max < ip_min:
            raise self.error("nat address range ends before it starts", open_at)
        if proto_max and proto_max < proto_min:
            raise self.error("nat port range ends before it starts", open_at)
        if proto_hash and proto_random:
            raise self.error("nat cannot be both hash and random", open_at)
        if not (src or dst):
            return Nat()
        # nl_msg_put_ct_nat: the range and its flags only go with an address.
        if ip_min is None:
            return Nat(src=src, dst=dst)
        return Nat(
            src=src,
            dst=dst,
            ip_min=ip_min,
            ip_max=ip_max if ip_max is not None and ip_max > ip_min else None,
            proto_min=proto_min or None,
            proto_max=proto_max if proto_min and proto_max > proto_min else None,
            persistent=persistent,
            proto_hash=proto_hash,
            proto_random=proto_random,
        )

    def nat_range(self) -> tuple[bytes, bytes | None, int, int]:
        sc = self.sc
        ip_max: bytes | None = None
        match = _IPV4_AT.match(sc.text, sc.pos)
        if match:
            ip_min = self.nat_ipv4()
            if sc.accept("-"):
                ip_max = self.nat_ipv4()
        else:
            ip_min = self.nat_ipv6()
            if sc.accept("-"):
                ip_max = self.nat_ipv6()
        proto_min = proto_max = 0
        if sc.accept(":"):
            proto_min = self.uint("port", 16, ",)-")
            if sc.accept("-"):
                proto_max = self.uint("port", 16, ",)")
        return ip_min, ip_max, proto_min, proto_max

    def nat_ipv4(self) -> bytes:
        sc = self.sc
        match = _IPV4_AT.match(sc.text, sc.pos)
        if not match:
            raise self.error("expected an IPv4 address")
        try:
            value = parse_ipv4(match.group())
        except ValueError:
            raise self.error(f"invalid IPv4 address '{match.group()}'") from None
        sc.pos = match.end()
        return value.to_bytes(4, "big")

    def nat_ipv6(self) -> bytes:
        sc = self.sc
        text = sc.text
        bracketed = sc.accept("[")
        start = pos = sc.pos
        while pos < len(text) and text[pos] in _IPV6_CHARS:
            pos += 1
        token = text[start:pos]
        sc.pos = pos
        if bracketed:
            sc.expect("]", "IPv6 address")
        try:
            return parse_ipv6_strict(token)
        except ValueError:
            raise self.error(f"invalid IP address '{token}'", start) from None

    def p_ct_clear(self, depth: int) -> Action:
        return CtClear()

    def p_trunc(self, depth: int) -> Action:
        return Trunc(self.parenthesised_uint("trunc", "length", 32))

    def p_push_eth(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "push_eth")
        self.field("src=", "push_eth")
        src = sc.value(parse_mac, "MAC address")
        self.field(",dst=", "push_eth")
        dst = sc.value(parse_mac, "MAC address")
        sc.expect(")", "push_eth")
        return PushEth(src, dst)

    def p_pop_eth(self, depth: int) -> Action:
        return PopEth()

    def p_push_nsh(self, depth: int) -> Action:
        sc = self.sc
        ctx = "push_nsh"
        sc.expect("(", ctx)
        flags, ttl, mdtype, np = 0, 63, 1, 3
        spi, si = 0, 255
        context = [0, 0, 0, 0]
        md2 = b""
        while True:
            self.skip_delimiters()
            if sc.accept(")"):
                break
            start = sc.pos
            item = sc.name("a push_nsh field") if not sc.at_end() else ""
            if not sc.accept("="):
                raise self.error(f"unknown push_nsh field '{item}'", start)
            if item == "flags":
                flags = self.uint("NSH flags", 8)
            elif item == "ttl":
                ttl = self.uint("NSH TTL", 8)
            elif item == "mdtype":
                mdtype = self.uint("NSH metadata type", 8)
                if mdtype not in (1, 2):
                    raise self.error(f"NSH metadata type {mdtype} is not 1 or 2", start)
                if mdtype == 2:
                    md2 = b""
            elif item == "np":
                np = self.uint("NSH next protocol", 8)
            elif item == "spi":
                spi = self.uint("NSH service path id", 24)
            elif item == "si":
                si = self.uint("NSH service index", 8)
            elif mdtype == 1 and item in ("c1", "c2", "c3", "c4"):
                context[int(item[1]) - 1] = self.uint(f"NSH context {item}", 32)
            elif mdtype == 2 and item == "md2":
                # "md2=0" is how an empty MD2 prints.
                raw = self.sc.value(
                    lambda t: b"" if t == "0" else _hex_number_bytes(t, 248),
                    "NSH md2",
                    _INT_STOPS,
                )
                md2 = raw + bytes(-len(raw) % 4)
            else:
                raise self.error(f"unknown push_nsh field '{item}'", start)
        base = NshBase(flags, ttl, mdtype, np, spi << 8 | si)
        if mdtype == 1:
            return PushNsh(Nsh(base=base, md1=(context[0], context[1], context[2], context[3])))
        return PushNsh(Nsh(base=base, md2=md2 or None))

    def p_pop_nsh(self, depth: int) -> Action:
        self.sc.expect("()", "pop_nsh")
        return PopNsh()

    def p_meter(self, depth: int) -> Action:
        return Meter(self.parenthesised_uint("meter", "meter id", 32))

    def p_clone(self, depth: int) -> Action:
        self.sc.expect("(", "clone")
        return Clone(self.nested_list(depth, "clone"))

    def p_check_pkt_len(self, depth: int) -> Action:
        sc = self.sc
        ctx = "check_pkt_len"
        sc.expect("(", ctx)
        self.field("size=", ctx)
        size = self.uint("packet length", 16)
        self.field(",gt(", ctx)
        gt = self.nested_list(depth, ctx)
        self.field(",le(", ctx)
        le = self.nested_list(depth, ctx)
        sc.expect(")", ctx)
        return CheckPktLen(size, gt, le)

    def p_dec_ttl(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "dec_ttl")
        self.field("le_1(", "dec_ttl")
        actions = self.nested_list(depth, "dec_ttl")
        sc.expect(")", "dec_ttl")
        return DecTtl(actions)

    def p_drop(self, depth: int) -> Action:
        return Drop()

    def p_psample(self, depth: int) -> Action:
        sc = self.sc
        ctx = "psample"
        sc.expect("(", ctx)
        group: int | None = None
        cookie: bytes | None = None
        while True:
            self.skip_delimiters()
            if sc.accept(")"):
                break
            start = sc.pos
            if group is None and sc.accept("group="):
                group = self.uint("psample group", 32)
            elif cookie is None and sc.accept("cookie="):
                cookie = sc.value(
                    lambda t: _hex_number_bytes(t, PSAMPLE_COOKIE_MAX_SIZE),
                    "psample cookie",
                    _INT_STOPS,
                )
            else:
                item = sc.name("a psample field") if not sc.at_end() else ""
                what = f"'{item}'" if item else "end of text"
                raise self.error(f"unexpected psample field {what}", start)
            ch = sc.peek()
            if ch != ")" and (not ch or ch not in _DELIMITERS):
                found = f"'{ch}'" if ch else "end of text"
                raise self.error(f"expected ',' or ')' in psample, found {found}")
        if group is None:
            raise self.error("psample needs a group")
        return Psample(group, cookie or None)

    def p_tnl_pop(self, depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "tnl_pop")
        port = self.port("port", ")")
        sc.expect(")", "tnl_pop")
        return TunnelPop(port)

    def p_lb_output(self, depth: int) -> Action:
        return LbOutput(self.parenthesised_uint("lb_output", "bond id", 32))

    def unknown_action(self, kind: int, start: int) -> Action:
        if kind > 0x3FFF:
            raise self.error(f"action type {kind} is out of range", start)
        data = b""
        if self.sc.accept("("):
            data = self.hex_pairs("action data")
            self.sc.expect(")", f"action{kind}")
        return UnknownAction(kind, data)

    # --- tnl_push ------------------------------------------------------------------

    def p_tnl_push(self, depth: int) -> Action:
        sc = self.sc
        ctx = "tnl_push"
        self.field("(tnl_port(", ctx)
        tnl_port = self.port("tunnel port", ")")
        self.field("),header(size=", ctx)
        size_at = sc.pos
        size = self.uint("header size", 32)
        self.field(",type=", ctx)
        type_at = sc.pos
        tnl_type = self.uint("tunnel type", 32)
        self.field(",eth(dst=", ctx)
        eth_dst = sc.value(parse_mac, "MAC address")
        self.field(",src=", ctx)
        eth_src = sc.value(parse_mac, "MAC address")
        self.field(",dl_type=", ctx)
        dl_type = self.uint("ethertype", 16)
        self.field("),", ctx)
        eth = eth_dst + eth_src + dl_type.to_bytes(2, "big")

        ipv6 = dl_type != ETH_P_IP
        ip = self.tnl_ipv6() if ipv6 else self.tnl_ipv4()
        if sc.accept("udp(src="):
            l4, want_type = self.tnl_udp()
        elif sc.accept("gre((flags="):
            l4 = self.tnl_gre()
            want_type = VportType.IP6GRE if ipv6 else VportType.GRE
        elif sc.accept("erspan(ver="):
            l4 = self.tnl_erspan()
            want_type = VportType.IP6ERSPAN if ipv6 else VportType.ERSPAN
        elif sc.accept("srv6(segments_left="):
            if not ipv6:
                raise self.error("srv6 needs an IPv6 header")
            l4 = self.tnl_srv6()
            ip = ip[:6] + bytes([NEXTHDR_ROUTING]) + ip[7:]
            want_type = VportType.SRV6
        else:
            raise self.error("expected udp(, gre(, erspan( or srv6( in tunnel header")
        if tnl_type != want_type:
            raise self.error(f"tunnel type {tnl_type} does not match the header", type_at)
        header = eth + ip + l4
        if size != len(header):
            raise self.error(f"header size {size} but the header has {len(header)} bytes", size_at)
        if size > TNL_PUSH_HEADER_MAX:
            raise self.error(f"tunnel header larger than {TNL_PUSH_HEADER_MAX} bytes", size_at)
        self.field(",out_port(", ctx)
        out_port = self.port("output port", ")")
        self.field("))", ctx)
        return TunnelPush(tnl_port, out_port, tnl_type, header)

    def tnl_ipv4(self) -> bytes:
        sc = self.sc
        ctx = "tunnel IPv4 header"
        self.field("ipv4(src=", ctx)
        src = sc.value(parse_ipv4, "IPv4 address")
        self.field(",dst=", ctx)
        dst = sc.value(parse_ipv4, "IPv4 address")
        self.field(",proto=", ctx)
        proto = self.uint("IP protocol", 8)
        self.field(",tos=", ctx)
        tos = self.uint("IP TOS", 8)
        self.field(",ttl=", ctx)
        ttl = self.uint("IP TTL", 8)
        self.field(",frag=", ctx)
        frag = self.uint("IP fragment offset", 16)
        self.field("),", ctx)
        header = bytearray(_IP_LEN)
        header[0] = 0x45
        header[1] = tos
        header[6:8] = frag.to_bytes(2, "big")
        header[8] = ttl
        header[9] = proto
        header[12:16] = src.to_bytes(4, "big")
        header[16:20] = dst.to_bytes(4, "big")
        header[10:12] = _ip_checksum(bytes(header)).to_bytes(2, "big")
        return bytes(header)

    def tnl_ipv6(self) -> bytes:
        sc = self.sc
        ctx = "tunnel IPv6 header"
        self.field("ipv6(src=", ctx)
        src = sc.value(parse_ipv6_strict, "IPv6 address")
        self.field(",dst=", ctx)
        dst = sc.value(parse_ipv6_strict, "IPv6 address")
        self.field(",label=", ctx)
        label = self.uint("IPv6 flow label", 20)
        self.field(",proto=", ctx)
        proto = self.uint("IP protocol", 8)
        self.field(",tclass=", ctx)
        tclass = self.uint("IPv6 traffic class", 8)
        self.field(",hlimit=", ctx)
        hlimit = self.uint("IPv6 hop limit", 8)
        self.field("),", ctx)
        flow = 6 << 28 | tclass << 20 | label
        return flow.to_bytes(4, "big") + bytes([0, 0, proto, hlimit]) + src + dst

    def tnl_udp(self) -> tuple[bytes, int]:
        sc = self.sc
        ctx = "tunnel UDP header"
        src = self.uint("UDP port", 16)
        self.field(",dst=", ctx)
        dst = self.uint("UDP port", 16)
        self.field(",csum=", ctx)
        csum = self.uint("UDP checksum", 16)
        self.field("),", ctx)
        udp = src.to_bytes(2, "big") + dst.to_bytes(2, "big") + b"\0\0" + csum.to_bytes(2, "big")
        if sc.accept("vxlan(flags="):
            flags = self.uint("VXLAN flags", 32)
            self.field(",vni=", "vxlan")
            vni = self.uint("VNI", 24)
            self.field("))", "vxlan")
            return udp + flags.to_bytes(4, "big") + (vni << 8).to_bytes(4, "big"), VportType.VXLAN
        if sc.accept("geneve("):
            oam = sc.accept("oam,")
            crit = sc.accept("crit,")
            self.field("vni=", "geneve")
            vni = self.uint("VNI", 24)
            options = b""
            if sc.accept(",options("):
                options = self.geneve_options()
            self.field("))", "geneve")
            geneve = (
                bytes([len(options) // 4, (0x80 if oam else 0) | (0x40 if crit else 0)])
                + _ETH_TYPE_TEB.to_bytes(2, "big")
                + (vni << 8).to_bytes(4, "big")
            )
            return udp + geneve + options, VportType.GENEVE
        if sc.accept("gtpu(flags="):
            flags = self.uint("GTP-U flags", 8)
            self.field(",msgtype=", "gtpu")
            msgtype = self.uint("GTP-U message type", 8)
            self.field(",teid=", "gtpu")
            teid = self.uint("GTP-U TEID", 32)
            self.field("))", "gtpu")
            return udp + bytes([flags, msgtype, 0, 0]) + teid.to_bytes(4, "big"), VportType.GTPU
        raise self.error("expected vxlan(, geneve( or gtpu( after the UDP header")

    def geneve_options(self) -> bytes:
        """scan_geneve: ``{class=..,type=..,len=..,0x..}`` options, then ``)``."""
        sc = self.sc
        out = bytearray()
        while sc.accept("{"):
            opt_class = opt_type = data_len = 0
            data = b""
            if sc.accept("class="):
                opt_class = self.uint("option class", 16, ",}")
            sc.accept(",")
            if sc.accept("type="):
                opt_type = self.uint("option type", 8, ",}")
            sc.accept(",")
            if sc.accept("len="):
                at = sc.pos
                data_len = self.uint("option length", 8, ",}")
                if data_len > 124 or data_len % 4:
                    raise self.error("option length must be a multiple of 4 up to 124", at)
            if sc.accept(","):
                data = sc.value(
                    functools.partial(parse_int_bytes, width=data_len), "option data", "}"
                )
            data = data.rjust(data_len, b"\0")
            sc.expect("}", "geneve option")
            out += opt_class.to_bytes(2, "big") + bytes([opt_type, data_len // 4]) + data
            if len(out) > 252:
                raise self.error("geneve options longer than 252 bytes")
        sc.expect(")", "geneve options")
        return bytes(out)

    def tnl_gre(self) -> bytes:
        sc = self.sc
        ctx = "tunnel GRE header"
        flags = self.uint("GRE flags", 16)
        self.field(",proto=", ctx)
        proto = self.uint("GRE protocol", 16)
        sc.expect(")", ctx)
        gre = flags.to_bytes(2, "big") + proto.to_bytes(2, "big")
        if flags & _GRE_CSUM:
            self.field(",csum=", ctx)
            gre += self.uint("GRE checksum", 16).to_bytes(2, "big") + b"\0\0"
        if flags & _GRE_KEY:
            self.field(",key=", ctx)
            gre += self.uint("GRE key", 32).to_bytes(4, "big")
        if flags & _GRE_SEQ:
            self.field(",seq=", ctx)
            gre += self.uint("GRE sequence number", 32).to_bytes(4, "big")
        self.field("))", ctx)
        return gre

    def tnl_erspan(self) -> bytes:
        sc = self.sc
        ctx = "tunnel ERSPAN header"
        at = sc.pos
        version = self.uint("ERSPAN version", 8)
        self.field(",sid=", ctx)
        sid = self.uint("ERSPAN session id", 10)
        base = bytes([version << 4, 0, sid >> 8, sid & 0xFF])
        if version == 1:
            self.field(",idx=", ctx)
            index = self.uint("ERSPAN index", 32)
            gre = _GRE_SEQ.to_bytes(2, "big") + _ETH_TYPE_ERSPAN1.to_bytes(2, "big") + bytes(4)
            erspan = base + index.to_bytes(4, "big")
        elif version == 2:
            self.field(",dir=", ctx)
            direction = self.uint("ERSPAN direction", 1)
            self.field(",hwid=", ctx)
            hwid = self.uint("ERSPAN hardware id", 6)
            gre = _GRE_SEQ.to_bytes(2, "big") + _ETH_TYPE_ERSPAN2.to_bytes(2, "big") + bytes(4)
            erspan = base + bytes(6) + bytes([hwid >> 4, (hwid & 0xF) << 4 | direction << 3])
        else:
            raise self.error(f"ERSPAN version {version} is not 1 or 2", at)
        self.field("))", ctx)
        return gre + erspan

    def tnl_srv6(self) -> bytes:
        sc = self.sc
        ctx = "tunnel SRv6 header"
        at = sc.pos
        segments_left = self.uint("segments left", 8)
        if segments_left + 1 > _SRV6_MAX_SEGS:
            raise self.error(f"more than {_SRV6_MAX_SEGS} SRv6 segments", at)
        self.field(",segs(", ctx)
        segs: list[bytes] = []
        while True:
            start = sc.pos
            token, _ = sc.token(",)")
            if not token:
                break
            try:
                segs.append(parse_ipv6_strict(token))
            except ValueError:
                raise self.error(f"invalid IPv6 address '{token}'", start) from None
            if len(segs) > segments_left + 1:
                raise self.error(
                    f"more than segments_left + 1 = {segments_left + 1} segments", start
                )
            sc.accept(",")
        if len(segs) != segments_left + 1:
            raise self.error(f"{len(segs)} segments but segments_left={segments_left}")
        self.field(")))", ctx)
        hdrlen = 2 * (segments_left + 1)
        srh = bytes([0, hdrlen, 4, segments_left, segments_left, 0, 0, 0])
        return srh + b"".join(reversed(segs))


def _set_action(kind: int, value: Any, mask: Any) -> Action:
    """``set(...)`` is a plain set unless the mask leaves some bits alone, as in OVS.

    The key syntax gives a mask of None when it is full.  A tunnel is always
    a plain set: the kernel refuses a masked one.
    """
    if mask is None or kind in (KeyAttr.TUNNEL, KeyAttr.ENCAP):
        return Set(kind, value)
    return SetMasked(kind, value, mask)


def _hex_number_bytes(token: str, max_len: int) -> bytes:
    """A ``0x`` hex string as Open vSwitch prints bytes (ds_put_hex).

    Pairs of digits are bytes; an odd count means the first byte lost its
    leading zero when printed.
    """
    if token[:2].lower() != "0x":
        raise ValueError("expected 0x followed by hex digits")
    digits = token[2:]
    if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError("not a hexadecimal number")
    if len(digits) > 2 * max_len:
        raise ValueError(f"longer than {max_len} bytes")
    if len(digits) % 2:
        digits = "0" + digits
    return bytes.fromhex(digits)


_ACTION_PARSERS: dict[str, Callable[[_Parser, int], Action]] = {
    "userspace": _Parser.p_userspace,
    "set": _Parser.p_set,
    "push_vlan": _Parser.p_push_vlan,
    "pop_vlan": _Parser.p_pop_vlan,
    "sample": _Parser.p_sample,
    "recirc": _Parser.p_recirc,
    "hash": _Parser.p_hash,
    "push_mpls": _Parser.p_push_mpls,
    "pop_mpls": _Parser.p_pop_mpls,
    "ct": _Parser.p_ct,
    "ct_clear": _Parser.p_ct_clear,
    "trunc": _Parser.p_trunc,
    "push_eth": _Parser.p_push_eth,
    "pop_eth": _Parser.p_pop_eth,
    "push_nsh": _Parser.p_push_nsh,
    "pop_nsh": _Parser.p_pop_nsh,
    "meter": _Parser.p_meter,
    "clone": _Parser.p_clone,
    "check_pkt_len": _Parser.p_check_pkt_len,
    "add_mpls": _Parser.p_add_mpls,
    "dec_ttl": _Parser.p_dec_ttl,
    "drop": _Parser.p_drop,
    "psample": _Parser.p_psample,
    "tnl_push": _Parser.p_tnl_push,
    "tnl_pop": _Parser.p_tnl_pop,
    "lb_output": _Parser.p_lb_output,
}

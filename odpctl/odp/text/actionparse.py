"""Flow actions in Open vSwitch's ODP text syntax: parsing.

`parse_actions` reads what Open vSwitch's parser (``odp_actions_from_string``)
accepts, and also everything `format_actions` prints that Open vSwitch's own
parser cannot read back (``push_mpls``, ``pop_mpls``, ``hash``, ``push_eth``,
``pop_eth``, ``dec_ttl``, ``recirc(0x..)``, unknown ``actionN(..)``, a
``drop`` inside a list...), so that text round-trips.  Errors are
`ParseError` with the column of the offending text.

Key attributes inside ``set(...)`` are read by the key syntax,
`odpctl.odp.text.keys` (``parse_key_attr``); tunnel headers by
`odpctl.odp.text.tnlheader`.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from odpctl.errors import ParseError
from odpctl.odp.actions import (
    MAX_NESTING,
    ODPP_NONE,
    PSAMPLE_COOKIE_MAX_SIZE,
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
    UnknownAction,
    Userspace,
    encode_user_action_cookie,
)
from odpctl.odp.keys import Nsh, NshBase
from odpctl.odp.text.keys import parse_key_attr
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.tnlheader import read_tnl_push
from odpctl.odp.text.values import (
    parse_cint,
    parse_int_bytes,
    parse_ipv4,
    parse_ipv6_strict,
    parse_mac,
)
from odpctl.odp.uapi import (
    ETH_P_8021Q,
    VLAN_CFI,
    HashAlg,
    KeyAttr,
)

UINT32_MAX = 0xFFFFFFFF
_DELIMITERS = ", \t\r\n"
_PortNumbers = Mapping[str, int] | None


_SLOW_PATH_BITS = {name: bit for bit, name in SLOW_PATH_REASONS}


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

    def p_userspace(self, _depth: int) -> Action:
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

    def p_set(self, _depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "set action")
        kind, value, mask = parse_key_attr(sc)
        sc.expect(")", "set action")
        return _set_action(kind, value, mask)

    def p_push_vlan(self, _depth: int) -> Action:
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

    def p_pop_vlan(self, _depth: int) -> Action:
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

    def p_recirc(self, _depth: int) -> Action:
        return Recirc(self.parenthesised_uint("recirc", "recirc_id", 32))

    def parenthesised_uint(self, ctx: str, what: str, bits: int) -> int:
        self.sc.expect("(", ctx)
        value = self.uint(what, bits)
        self.sc.expect(")", ctx)
        return value

    def p_hash(self, _depth: int) -> Action:
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

    def p_push_mpls(self, _depth: int) -> Action:
        return PushMpls(*self.mpls_lse("push_mpls"))

    def p_add_mpls(self, _depth: int) -> Action:
        lse, eth_type = self.mpls_lse("add_mpls")
        return AddMpls(lse, eth_type, 0)

    def p_pop_mpls(self, _depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "pop_mpls")
        self.field("eth_type=", "pop_mpls")
        eth_type = self.uint("ethertype", 16)
        sc.expect(")", "pop_mpls")
        return PopMpls(eth_type)

    def p_ct(self, _depth: int) -> Action:
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

    def p_ct_clear(self, _depth: int) -> Action:
        return CtClear()

    def p_trunc(self, _depth: int) -> Action:
        return Trunc(self.parenthesised_uint("trunc", "length", 32))

    def p_push_eth(self, _depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "push_eth")
        self.field("src=", "push_eth")
        src = sc.value(parse_mac, "MAC address")
        self.field(",dst=", "push_eth")
        dst = sc.value(parse_mac, "MAC address")
        sc.expect(")", "push_eth")
        return PushEth(src, dst)

    def p_pop_eth(self, _depth: int) -> Action:
        return PopEth()

    def p_push_nsh(self, _depth: int) -> Action:
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

    def p_pop_nsh(self, _depth: int) -> Action:
        self.sc.expect("()", "pop_nsh")
        return PopNsh()

    def p_meter(self, _depth: int) -> Action:
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

    def p_drop(self, _depth: int) -> Action:
        return Drop()

    def p_psample(self, _depth: int) -> Action:
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

    def p_tnl_pop(self, _depth: int) -> Action:
        sc = self.sc
        sc.expect("(", "tnl_pop")
        port = self.port("port", ")")
        sc.expect(")", "tnl_pop")
        return TunnelPop(port)

    def p_lb_output(self, _depth: int) -> Action:
        return LbOutput(self.parenthesised_uint("lb_output", "bond id", 32))

    def unknown_action(self, kind: int, start: int) -> Action:
        if kind > 0x3FFF:
            raise self.error(f"action type {kind} is out of range", start)
        data = b""
        if self.sc.accept("("):
            data = self.hex_pairs("action data")
            self.sc.expect(")", f"action{kind}")
        return UnknownAction(kind, data)

    def p_tnl_push(self, _depth: int) -> Action:
        return read_tnl_push(self)


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

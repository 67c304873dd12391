"""The tunnel headers of ``tnl_push(...)`` actions, in Open vSwitch's text.

struct ovs_action_push_tnl carries a ready-made encapsulation header:
Ethernet, IPv4 or IPv6, then UDP + VXLAN/Geneve/GTP-U, GRE, ERSPAN (over
GRE) or an SRv6 routing header.  `tnl_header_text` shows it as
``format_odp_tnl_push_header`` does; `read_tnl_push` builds it back from
that text, with its checksums, for the action parser (`odpctl.odp.text.actionparse`).
"""

from __future__ import annotations

import functools
from typing import Protocol

from odpctl.errors import ParseError
from odpctl.odp.actions import TNL_PUSH_HEADER_MAX, TunnelPush
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.values import (
    format_ipv4,
    format_ipv6,
    format_mac,
    format_min_hex,
    hex0,
    parse_int_bytes,
    parse_ipv4,
    parse_ipv6_strict,
    parse_mac,
)
from odpctl.odp.uapi import ETH_P_IP, NEXTHDR_ROUTING, VportType


class Reader(Protocol):
    """What the header reader needs of the action parser it reads for."""

    sc: Scanner

    def error(self, message: str, pos: int | None = None) -> ParseError: ...
    def field(self, name: str, context: str) -> None: ...
    def uint(self, what: str, bits: int = 32, stops: str = ...) -> int: ...
    def port(self, what: str, stops: str = ...) -> int: ...


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


def tnl_header_text(tnl_type: int, h: bytes) -> str:
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


# --- reading ---


def read_tnl_push(p: Reader) -> TunnelPush:
    """The inside of ``tnl_push(`` through its ``)``."""
    sc = p.sc
    ctx = "tnl_push"
    p.field("(tnl_port(", ctx)
    tnl_port = p.port("tunnel port", ")")
    p.field("),header(size=", ctx)
    size_at = sc.pos
    size = p.uint("header size", 32)
    p.field(",type=", ctx)
    type_at = sc.pos
    tnl_type = p.uint("tunnel type", 32)
    p.field(",eth(dst=", ctx)
    eth_dst = sc.value(parse_mac, "MAC address")
    p.field(",src=", ctx)
    eth_src = sc.value(parse_mac, "MAC address")
    p.field(",dl_type=", ctx)
    dl_type = p.uint("ethertype", 16)
    p.field("),", ctx)
    eth = eth_dst + eth_src + dl_type.to_bytes(2, "big")

    ipv6 = dl_type != ETH_P_IP
    ip = _tnl_ipv6(p) if ipv6 else _tnl_ipv4(p)
    if sc.accept("udp(src="):
        l4, want_type = _tnl_udp(p)
    elif sc.accept("gre((flags="):
        l4 = _tnl_gre(p)
        want_type = VportType.IP6GRE if ipv6 else VportType.GRE
    elif sc.accept("erspan(ver="):
        l4 = _tnl_erspan(p)
        want_type = VportType.IP6ERSPAN if ipv6 else VportType.ERSPAN
    elif sc.accept("srv6(segments_left="):
        if not ipv6:
            raise p.error("srv6 needs an IPv6 header")
        l4 = _tnl_srv6(p)
        ip = ip[:6] + bytes([NEXTHDR_ROUTING]) + ip[7:]
        want_type = VportType.SRV6
    else:
        raise p.error("expected udp(, gre(, erspan( or srv6( in tunnel header")
    if tnl_type != want_type:
        raise p.error(f"tunnel type {tnl_type} does not match the header", type_at)
    header = eth + ip + l4
    if size != len(header):
        raise p.error(f"header size {size} but the header has {len(header)} bytes", size_at)
    if size > TNL_PUSH_HEADER_MAX:
        raise p.error(f"tunnel header larger than {TNL_PUSH_HEADER_MAX} bytes", size_at)
    p.field(",out_port(", ctx)
    out_port = p.port("output port", ")")
    p.field("))", ctx)
    return TunnelPush(tnl_port, out_port, tnl_type, header)


def _tnl_ipv4(p: Reader) -> bytes:
    sc = p.sc
    ctx = "tunnel IPv4 header"
    p.field("ipv4(src=", ctx)
    src = sc.value(parse_ipv4, "IPv4 address")
    p.field(",dst=", ctx)
    dst = sc.value(parse_ipv4, "IPv4 address")
    p.field(",proto=", ctx)
    proto = p.uint("IP protocol", 8)
    p.field(",tos=", ctx)
    tos = p.uint("IP TOS", 8)
    p.field(",ttl=", ctx)
    ttl = p.uint("IP TTL", 8)
    p.field(",frag=", ctx)
    frag = p.uint("IP fragment offset", 16)
    p.field("),", ctx)
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


def _tnl_ipv6(p: Reader) -> bytes:
    sc = p.sc
    ctx = "tunnel IPv6 header"
    p.field("ipv6(src=", ctx)
    src = sc.value(parse_ipv6_strict, "IPv6 address")
    p.field(",dst=", ctx)
    dst = sc.value(parse_ipv6_strict, "IPv6 address")
    p.field(",label=", ctx)
    label = p.uint("IPv6 flow label", 20)
    p.field(",proto=", ctx)
    proto = p.uint("IP protocol", 8)
    p.field(",tclass=", ctx)
    tclass = p.uint("IPv6 traffic class", 8)
    p.field(",hlimit=", ctx)
    hlimit = p.uint("IPv6 hop limit", 8)
    p.field("),", ctx)
    flow = 6 << 28 | tclass << 20 | label
    return flow.to_bytes(4, "big") + bytes([0, 0, proto, hlimit]) + src + dst


def _tnl_udp(p: Reader) -> tuple[bytes, int]:
    sc = p.sc
    ctx = "tunnel UDP header"
    src = p.uint("UDP port", 16)
    p.field(",dst=", ctx)
    dst = p.uint("UDP port", 16)
    p.field(",csum=", ctx)
    csum = p.uint("UDP checksum", 16)
    p.field("),", ctx)
    udp = src.to_bytes(2, "big") + dst.to_bytes(2, "big") + b"\0\0" + csum.to_bytes(2, "big")
    if sc.accept("vxlan(flags="):
        flags = p.uint("VXLAN flags", 32)
        p.field(",vni=", "vxlan")
        vni = p.uint("VNI", 24)
        p.field("))", "vxlan")
        return udp + flags.to_bytes(4, "big") + (vni << 8).to_bytes(4, "big"), VportType.VXLAN
    if sc.accept("geneve("):
        oam = sc.accept("oam,")
        crit = sc.accept("crit,")
        p.field("vni=", "geneve")
        vni = p.uint("VNI", 24)
        options = b""
        if sc.accept(",options("):
            options = _geneve_options(p)
        p.field("))", "geneve")
        geneve = (
            bytes([len(options) // 4, (0x80 if oam else 0) | (0x40 if crit else 0)])
            + _ETH_TYPE_TEB.to_bytes(2, "big")
            + (vni << 8).to_bytes(4, "big")
        )
        return udp + geneve + options, VportType.GENEVE
    if sc.accept("gtpu(flags="):
        flags = p.uint("GTP-U flags", 8)
        p.field(",msgtype=", "gtpu")
        msgtype = p.uint("GTP-U message type", 8)
        p.field(",teid=", "gtpu")
        teid = p.uint("GTP-U TEID", 32)
        p.field("))", "gtpu")
        return udp + bytes([flags, msgtype, 0, 0]) + teid.to_bytes(4, "big"), VportType.GTPU
    raise p.error("expected vxlan(, geneve( or gtpu( after the UDP header")


def _geneve_options(p: Reader) -> bytes:
    """scan_geneve: ``{class=..,type=..,len=..,0x..}`` options, then ``)``."""
    sc = p.sc
    out = bytearray()
    while sc.accept("{"):
        opt_class = opt_type = data_len = 0
        data = b""
        if sc.accept("class="):
            opt_class = p.uint("option class", 16, ",}")
        sc.accept(",")
        if sc.accept("type="):
            opt_type = p.uint("option type", 8, ",}")
        sc.accept(",")
        if sc.accept("len="):
            at = sc.pos
            data_len = p.uint("option length", 8, ",}")
            if data_len > 124 or data_len % 4:
                raise p.error("option length must be a multiple of 4 up to 124", at)
        if sc.accept(","):
            data = sc.value(functools.partial(parse_int_bytes, width=data_len), "option data", "}")
        data = data.rjust(data_len, b"\0")
        sc.expect("}", "geneve option")
        out += opt_class.to_bytes(2, "big") + bytes([opt_type, data_len // 4]) + data
        if len(out) > 252:
            raise p.error("geneve options longer than 252 bytes")
    sc.expect(")", "geneve options")
    return bytes(out)


def _tnl_gre(p: Reader) -> bytes:
    sc = p.sc
    ctx = "tunnel GRE header"
    flags = p.uint("GRE flags", 16)
    p.field(",proto=", ctx)
    proto = p.uint("GRE protocol", 16)
    sc.expect(")", ctx)
    gre = flags.to_bytes(2, "big") + proto.to_bytes(2, "big")
    if flags & _GRE_CSUM:
        p.field(",csum=", ctx)
        gre += p.uint("GRE checksum", 16).to_bytes(2, "big") + b"\0\0"
    if flags & _GRE_KEY:
        p.field(",key=", ctx)
        gre += p.uint("GRE key", 32).to_bytes(4, "big")
    if flags & _GRE_SEQ:
        p.field(",seq=", ctx)
        gre += p.uint("GRE sequence number", 32).to_bytes(4, "big")
    p.field("))", ctx)
    return gre


def _tnl_erspan(p: Reader) -> bytes:
    sc = p.sc
    ctx = "tunnel ERSPAN header"
    at = sc.pos
    version = p.uint("ERSPAN version", 8)
    p.field(",sid=", ctx)
    sid = p.uint("ERSPAN session id", 10)
    base = bytes([version << 4, 0, sid >> 8, sid & 0xFF])
    if version == 1:
        p.field(",idx=", ctx)
        index = p.uint("ERSPAN index", 32)
        gre = _GRE_SEQ.to_bytes(2, "big") + _ETH_TYPE_ERSPAN1.to_bytes(2, "big") + bytes(4)
        erspan = base + index.to_bytes(4, "big")
    elif version == 2:
        p.field(",dir=", ctx)
        direction = p.uint("ERSPAN direction", 1)
        p.field(",hwid=", ctx)
        hwid = p.uint("ERSPAN hardware id", 6)
        gre = _GRE_SEQ.to_bytes(2, "big") + _ETH_TYPE_ERSPAN2.to_bytes(2, "big") + bytes(4)
        erspan = base + bytes(6) + bytes([hwid >> 4, (hwid & 0xF) << 4 | direction << 3])
    else:
        raise p.error(f"ERSPAN version {version} is not 1 or 2", at)
    p.field("))", ctx)
    return gre + erspan


def _tnl_srv6(p: Reader) -> bytes:
    sc = p.sc
    ctx = "tunnel SRv6 header"
    at = sc.pos
    segments_left = p.uint("segments left", 8)
    if segments_left + 1 > _SRV6_MAX_SEGS:
        raise p.error(f"more than {_SRV6_MAX_SEGS} SRv6 segments", at)
    p.field(",segs(", ctx)
    segs: list[bytes] = []
    while True:
        start = sc.pos
        token, _ = sc.token(",)")
        if not token:
            break
        try:
            segs.append(parse_ipv6_strict(token))
        except ValueError:
            raise p.error(f"invalid IPv6 address '{token}'", start) from None
        if len(segs) > segments_left + 1:
            raise p.error(f"more than segments_left + 1 = {segments_left + 1} segments", start)
        sc.accept(",")
    if len(segs) != segments_left + 1:
        raise p.error(f"{len(segs)} segments but segments_left={segments_left}")
    p.field(")))", ctx)
    hdrlen = 2 * (segments_left + 1)
    srh = bytes([0, hdrlen, 4, segments_left, segments_left, 0, 0, 0])
    return srh + b"".join(reversed(segs))

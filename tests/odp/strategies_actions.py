"""Hypothesis strategies for flow actions (`odpctl.odp.actions`).

Two families:

- ``binary_actions()``: any action tree the binary codec must carry
  exactly (``decode_actions(encode_actions(x)) == x``), including values the
  text syntax cannot show (a drop reason, an ``add_mpls`` tunnel flag, raw
  userdata of any length, odd NAT flags...).
- ``text_actions()``: action trees in the *canonical* form of the text
  syntax, for which ``parse_actions(format_actions(x)) == x``: values the
  text shows in full, in the form Open vSwitch's parser produces (userdata
  padded to 8 bytes, cookies as ovs builds them, probabilities that are a
  whole tenth of a percent, no lone ``drop`` inside a nested list...).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from odpctl.odp.actions import (
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
    Set,
    SetMasked,
    SflowCookie,
    SlowPathCookie,
    Trunc,
    TunnelPop,
    TunnelPush,
    UnknownAction,
    Userspace,
    encode_user_action_cookie,
)
from odpctl.odp.keys import Eth, Ipv4, Nsh, NshBase, Ports, Tunnel
from odpctl.odp.uapi import KeyAttr

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
U64 = st.integers(0, 2**64 - 1)
MAC = st.binary(min_size=6, max_size=6)
IN6 = st.binary(min_size=16, max_size=16)
UINT32_MAX = 0xFFFFFFFF


# --- key values for set() / set_masked() ------------------------------------------


def _tunnel() -> st.SearchStrategy[Tunnel]:
    return st.builds(
        Tunnel,
        tun_id=st.none() | U64,
        ipv4_src=st.none() | U32,
        ipv4_dst=st.none() | U32,
        tos=st.none() | U8,
        ttl=st.none() | U8,
        df=st.booleans(),
        csum=st.booleans(),
        tp_src=st.none() | U16,
        tp_dst=st.none() | U16,
        oam=st.booleans(),
    )


# (kind, value) pairs for a plain set(): values the key text prints in full
# and reads back as a full mask.
SET_VALUES: st.SearchStrategy[tuple[int, Any]] = st.one_of(
    st.tuples(st.just(KeyAttr.IN_PORT), U32),
    st.tuples(st.just(KeyAttr.PRIORITY), U32),
    st.tuples(st.just(KeyAttr.SKB_MARK), U32),
    st.tuples(st.just(KeyAttr.ETHERTYPE), U16),
    st.tuples(st.just(KeyAttr.ETHERNET), st.builds(Eth, MAC, MAC)),
    st.tuples(
        st.just(KeyAttr.IPV4),
        st.builds(Ipv4, U32, U32, U8, U8, U8, st.integers(0, 2)),
    ),
    st.tuples(st.just(KeyAttr.TCP), st.builds(Ports, U16, U16)),
    st.tuples(st.just(KeyAttr.UDP), st.builds(Ports, U16, U16)),
    st.tuples(st.just(KeyAttr.SCTP), st.builds(Ports, U16, U16)),
    st.tuples(st.just(KeyAttr.TUNNEL), _tunnel()),
)


@st.composite
def _masked(draw: st.DrawFn, kind: int, fields: list[tuple[str, int]]) -> tuple[int, Any, Any]:
    """A value with no bits outside its mask, for a struct of int fields."""
    values: list[int] = []
    masks: list[int] = []
    for _name, bits in fields:
        mask = draw(st.sampled_from([0, (1 << bits) - 1]) | st.integers(0, (1 << bits) - 1))
        values.append(draw(st.integers(0, (1 << bits) - 1)) & mask)
        masks.append(mask)
    return kind, values, masks


@st.composite
def masked_values(draw: st.DrawFn) -> tuple[int, Any, Any]:
    """(kind, value, mask) for set_masked(), mask not full."""
    choice = draw(st.sampled_from(["ipv4", "tcp", "udp", "sctp", "eth", "mark", "prio"]))
    kind: int
    value: Any
    mask: Any
    if choice == "ipv4":
        kind, v, m = draw(
            _masked(KeyAttr.IPV4, [("src", 32), ("dst", 32), ("proto", 0), ("tos", 8), ("ttl", 8)])
        )
        # proto and frag are not writable: the kernel wants them unmasked.
        value, mask = Ipv4(v[0], v[1], 0, v[3], v[4], 0), Ipv4(m[0], m[1], 0, m[3], m[4], 0)
    elif choice in ("tcp", "udp", "sctp"):
        kind = {"tcp": KeyAttr.TCP, "udp": KeyAttr.UDP, "sctp": KeyAttr.SCTP}[choice]
        _, v, m = draw(_masked(kind, [("src", 16), ("dst", 16)]))
        value, mask = Ports(*v), Ports(*m)
    elif choice == "eth":
        kind = KeyAttr.ETHERNET
        src_m, dst_m = draw(MAC), draw(MAC)
        src = bytes(a & b for a, b in zip(draw(MAC), src_m, strict=True))
        dst = bytes(a & b for a, b in zip(draw(MAC), dst_m, strict=True))
        value, mask = Eth(src, dst), Eth(src_m, dst_m)
    else:
        kind = KeyAttr.SKB_MARK if choice == "mark" else KeyAttr.PRIORITY
        mask = draw(U32.filter(lambda x: x != UINT32_MAX))
        value = draw(U32) & mask
    full_masks: dict[int, Any] = {
        KeyAttr.IPV4: Ipv4(UINT32_MAX, UINT32_MAX, 0xFF, 0xFF, 0xFF, 0xFF),
        KeyAttr.TCP: Ports(0xFFFF, 0xFFFF),
        KeyAttr.UDP: Ports(0xFFFF, 0xFFFF),
        KeyAttr.SCTP: Ports(0xFFFF, 0xFFFF),
        KeyAttr.ETHERNET: Eth(b"\xff" * 6, b"\xff" * 6),
    }
    full = full_masks.get(kind, UINT32_MAX)
    if mask == full:  # a full mask would read back as a plain set: clear one bit
        if isinstance(mask, Ports):
            mask, value = mask._replace(src=0x7FFF), value._replace(src=value.src & 0x7FFF)
        elif isinstance(mask, Eth):
            mask = mask._replace(src=b"\x7f" + mask.src[1:])
            value = value._replace(src=bytes([value.src[0] & 0x7F]) + value.src[1:])
    return kind, value, mask


# --- userspace ------------------------------------------------------------------------

_SFLOW = st.builds(
    lambda vid, pcp, out: SflowCookie(vid | pcp << 13 | (0x1000 if vid or pcp else 0), out),
    st.integers(0, 0xFFF),
    st.integers(0, 7),
    U32,
)
TEXT_COOKIES = st.one_of(
    _SFLOW,
    st.builds(SlowPathCookie, st.integers(0, 0x7F) | U32),
    st.builds(FlowSampleCookie, U16, U32, U32, U32, U32, st.integers(0, 2)),
    st.builds(IpfixCookie, U32),
    st.builds(
        ControllerCookie,
        st.integers(0, 1),
        st.integers(0, 1),
        U16,
        U32,
        U64,
        U16,
        U16,
    ),
).map(encode_user_action_cookie)

_TEXT_USERDATA = st.one_of(
    st.none(),
    TEXT_COOKIES,
    st.binary(min_size=8, max_size=64).filter(lambda b: len(b) != 48),
)
_TUN_PORT = st.none() | U32.filter(lambda p: p != UINT32_MAX)


def text_userspace() -> st.SearchStrategy[Userspace]:
    return st.builds(Userspace, U32, _TEXT_USERDATA, _TUN_PORT, st.booleans())


def binary_userspace() -> st.SearchStrategy[Userspace]:
    return st.builds(
        Userspace, U32, st.none() | st.binary(max_size=80), st.none() | U32, st.booleans()
    )


# --- conntrack --------------------------------------------------------------------------

_IP4 = st.binary(min_size=4, max_size=4)


@st.composite
def text_nat(draw: st.DrawFn) -> Nat:
    """A NAT in the form Open vSwitch's parser builds (nl_msg_put_ct_nat)."""
    kind = draw(st.sampled_from(["none", "src", "dst"]))
    if kind == "none":
        return Nat()
    src, dst = kind == "src", kind == "dst"
    if draw(st.booleans()):
        return Nat(src=src, dst=dst)
    addr = _IP4 if draw(st.booleans()) else IN6
    ip_min = draw(addr)
    ip_max = draw(st.none() | addr.filter(lambda a: a > ip_min))
    proto_min = draw(st.none() | st.integers(1, 0xFFFF))
    proto_max = None
    if proto_min is not None and proto_min < 0xFFFF:
        proto_max = draw(st.none() | st.integers(proto_min + 1, 0xFFFF))
    hash_random = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    return Nat(
        src=src,
        dst=dst,
        ip_min=ip_min,
        ip_max=ip_max,
        proto_min=proto_min,
        proto_max=proto_max,
        persistent=draw(st.booleans()),
        proto_hash=hash_random[0],
        proto_random=hash_random[1],
    )


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_NAME = st.text(_NAME_CHARS, min_size=1, max_size=15)


@st.composite
def text_ct(draw: st.DrawFn) -> Ct:
    commit, force = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    return Ct(
        commit=commit,
        force_commit=force,
        zone=draw(st.none() | st.integers(1, 0xFFFF)),
        mark=draw(st.none() | st.tuples(U32, st.integers(1, UINT32_MAX))),
        labels=draw(st.none() | st.tuples(IN6, IN6.filter(any))),
        helper=draw(st.none() | _NAME),
        timeout=draw(
            st.none() | st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=31)
        ),
        eventmask=None,
        nat=draw(st.none() | text_nat()),
    )


def binary_nat() -> st.SearchStrategy[Nat]:
    addr = st.binary(min_size=4, max_size=16)
    return st.builds(
        Nat,
        st.booleans(),
        st.booleans(),
        st.none() | addr,
        st.none() | addr,
        st.none() | U16,
        st.none() | U16,
        st.booleans(),
        st.booleans(),
        st.booleans(),
    )


def binary_ct() -> st.SearchStrategy[Ct]:
    printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), max_size=20)
    return st.builds(
        Ct,
        st.booleans(),
        st.booleans(),
        st.none() | U16,
        st.none() | st.tuples(U32, U32),
        st.none() | st.tuples(IN6, IN6),
        st.none() | printable,
        st.none() | printable,
        st.none() | U32,
        st.none() | binary_nat(),
    )


# --- NSH -------------------------------------------------------------------------------


@st.composite
def text_push_nsh(draw: st.DrawFn) -> PushNsh:
    mdtype = draw(st.sampled_from([1, 2]))
    base = NshBase(
        draw(st.integers(0, 3)),
        draw(st.integers(0, 63)),
        mdtype,
        draw(U8),
        draw(st.integers(0, 0xFFFFFF)) << 8 | draw(U8),
    )
    if mdtype == 1:
        return PushNsh(Nsh(base=base, md1=draw(st.tuples(U32, U32, U32, U32))))
    words = draw(st.integers(0, 8))
    md2 = None
    if words:
        md2 = draw(st.binary(min_size=4 * words, max_size=4 * words).filter(lambda b: b[0] != 0))
    return PushNsh(Nsh(base=base, md2=md2))


def _nsh_base() -> st.SearchStrategy[NshBase]:
    return st.builds(NshBase, U8, U8, U8, U8, U32)


@st.composite
def binary_push_nsh(draw: st.DrawFn) -> PushNsh:
    return PushNsh(
        Nsh(
            base=draw(st.none() | _nsh_base()),
            md1=draw(st.none() | st.tuples(U32, U32, U32, U32)),
            md2=draw(st.none() | st.binary(min_size=4, max_size=32)),
        )
    )


@st.composite
def nsh_set_masked(draw: st.DrawFn, text: bool = False) -> SetMasked:
    """set_masked(nsh(...)): base and MD1, value under mask.

    For text, the form the key syntax reads back: MD1 only when some context
    is masked, and never a mask so full that it reads back as a plain set.
    """
    mask_base = draw(_nsh_base())
    base = draw(_nsh_base())
    base = NshBase(*(v & m for v, m in zip(base, mask_base, strict=True)))
    md1: tuple[int, int, int, int] | None = None
    md1_mask: tuple[int, int, int, int] | None = None
    if draw(st.booleans()):
        md1_mask = draw(st.tuples(U32, U32, U32, U32))
        if text and not any(md1_mask):
            md1_mask = (1, 0, 0, 0)
        a, b, c, d = (draw(U32) & m for m in md1_mask)
        md1 = (a, b, c, d)
    if text and md1 is None and base.mdtype == 1:  # the key syntax adds MD1 for type 1
        md1 = md1_mask = (0, 0, 0, 0)
    if text and mask_base == NshBase(0xFF, 0xFF, 0xFF, 0xFF, UINT32_MAX):
        mask_base = mask_base._replace(ttl=0x7F)
        base = base._replace(ttl=base.ttl & 0x7F)
    return SetMasked(KeyAttr.NSH, Nsh(base=base, md1=md1), Nsh(base=mask_base, md1=md1_mask))


# --- the rest --------------------------------------------------------------------------

# Probabilities that are a whole tenth of a percent, rounded as OVS does.
TEXT_PROBABILITY = st.integers(0, 1000).map(
    lambda tenths: min(UINT32_MAX, math.floor(UINT32_MAX * (tenths / 10 / 100.0) + 0.5))
)

_LSE = U32
_TEXT_PSAMPLE_COOKIE = st.none() | st.binary(min_size=1, max_size=16).filter(lambda b: b[0] != 0)


@st.composite
def text_set(draw: st.DrawFn) -> Action:
    if draw(st.booleans()):
        kind, value = draw(SET_VALUES)
        return Set(kind, value)
    kind, value, mask = draw(masked_values())
    return SetMasked(kind, value, mask)


@st.composite
def text_tnl_push(draw: st.DrawFn) -> str:
    """The text of a tnl_push, in the forms Open vSwitch prints."""
    ipv6 = draw(st.booleans())
    mac = st.builds(lambda b: ":".join(f"{x:02x}" for x in b), MAC)
    port = st.integers(0, 1000)
    kind = draw(st.sampled_from(["vxlan", "geneve", "gre", "erspan1", "erspan2", "gtpu", "srv6"]))
    if kind == "srv6":
        ipv6 = True
    eth_len, ip_len = 14, 40 if ipv6 else 20
    if ipv6:
        a = draw(st.builds(_ip6, IN6))
        b = draw(st.builds(_ip6, IN6))
        proto = 43 if kind == "srv6" else draw(U8)
        ip = (
            f"ipv6(src={a},dst={b},label={draw(st.integers(0, 0xFFFFF))},proto={proto}"
            f",tclass=0x{draw(U8):x},hlimit={draw(U8)})"
        )
    else:
        a = ".".join(str(x) for x in draw(_IP4))
        b = ".".join(str(x) for x in draw(_IP4))
        tos = draw(U8)
        ip = (
            f"ipv4(src={a},dst={b},proto={draw(U8)},tos={f'{tos:#x}' if tos else '0'}"
            f",ttl={draw(U8)},frag=0x{draw(U16):x})"
        )
    udp = f"udp(src={draw(U16)},dst={draw(U16)},csum=0x{draw(U16):x})"
    vni = draw(st.integers(0, 0xFFFFFF))
    if kind == "vxlan":
        l4, size, tnl_type = f"{udp},vxlan(flags=0x{draw(U32):x},vni=0x{vni:x})", 16, 4
    elif kind == "geneve":
        opts = ""
        opt_bytes = 0
        for _ in range(draw(st.integers(0, 3))):
            data_len = 4 * draw(st.integers(0, 4))
            cls, typ = draw(U16), draw(U8)
            text = f"{{class={cls:#x}" if cls else "{class=0"
            text += f",type={typ:#x}" if typ else ",type=0"
            text += f",len={data_len}"
            if data_len:
                data = draw(st.integers(0, 2 ** (8 * data_len) - 1))
                text += f",{data:#x}" if data else ",0"
            opts += text + "}"
            opt_bytes += 4 + data_len
        bits = ("oam," if draw(st.booleans()) else "") + ("crit," if draw(st.booleans()) else "")
        options = f",options({opts})" if opts else ""
        l4 = f"{udp},geneve({bits}vni=0x{vni:x}{options})"
        size, tnl_type = 16 + opt_bytes, 5
    elif kind == "gre":
        flags = draw(st.sampled_from([0, 0x2000, 0x8000, 0x1000, 0xA000, 0xB000, 0x3000]))
        text = f"gre((flags=0x{flags:x},proto=0x{draw(U16):x})"
        size = 4
        if flags & 0x8000:
            text += f",csum=0x{draw(U16):x}"
            size += 4
        if flags & 0x2000:
            text += f",key=0x{draw(U32):x}"
            size += 4
        if flags & 0x1000:
            text += f",seq=0x{draw(U32):x}"
            size += 4
        l4, tnl_type = text + ")", 109 if ipv6 else 3
    elif kind == "erspan1":
        l4 = f"erspan(ver=1,sid=0x{draw(st.integers(0, 0x3FF)):x},idx=0x{draw(U32):x})"
        size, tnl_type = 16, 108 if ipv6 else 107
    elif kind == "erspan2":
        l4 = (
            f"erspan(ver=2,sid=0x{draw(st.integers(0, 0x3FF)):x},dir={draw(st.integers(0, 1))}"
            f",hwid=0x{draw(st.integers(0, 0x3F)):x})"
        )
        size, tnl_type = 20, 108 if ipv6 else 107
    elif kind == "gtpu":
        l4 = f"{udp},gtpu(flags=0x{draw(U8):x},msgtype={draw(U8)},teid=0x{draw(U32):x})"
        size, tnl_type = 16, 110
    else:
        left = draw(st.integers(0, 5))
        segs = ",".join(draw(st.builds(_ip6, IN6)) for _ in range(left + 1))
        l4 = f"srv6(segments_left={left},segs({segs}))"
        size, tnl_type = 8 + 16 * (left + 1), 112
    size += eth_len + ip_len
    dl_type = "0x86dd" if ipv6 else "0x0800"
    return (
        f"tnl_push(tnl_port({draw(port)}),header(size={size},type={tnl_type},"
        f"eth(dst={draw(mac)},src={draw(mac)},dl_type={dl_type}),{ip},{l4}),"
        f"out_port({draw(port)}))"
    )


def _ip6(raw: bytes) -> str:
    import socket

    return socket.inet_ntop(socket.AF_INET6, raw)


def _text_leaf() -> st.SearchStrategy[Action]:
    from odpctl.odp.text.actions import parse_actions

    return st.one_of(
        st.builds(Output, U32),
        text_userspace(),
        text_set(),
        nsh_set_masked(text=True),
        st.builds(PushVlan, U16, U16),
        st.just(PopVlan()),
        st.builds(Recirc, U32),
        st.builds(Hash, st.integers(0, 1), U32),
        st.builds(PushMpls, _LSE, U16),
        st.builds(PopMpls, U16),
        st.builds(AddMpls, _LSE, U16, st.just(0)),
        text_ct(),
        st.just(CtClear()),
        st.builds(Trunc, U32),
        st.builds(PushEth, MAC, MAC),
        st.just(PopEth()),
        text_push_nsh(),
        st.just(PopNsh()),
        st.builds(Meter, U32),
        st.just(Drop()),
        st.builds(Psample, U32, _TEXT_PSAMPLE_COOKIE),
        text_tnl_push().map(lambda t: parse_actions(t)[0]),
        st.builds(TunnelPop, U32),
        st.builds(LbOutput, U32),
        st.builds(UnknownAction, st.integers(29, 0x3FFF) | st.just(0), st.binary(max_size=12)),
    )


def _nested_text(children: st.SearchStrategy[list[Action]]) -> st.SearchStrategy[Action]:
    # A nested list that is exactly [Drop()] prints as "drop", which reads back
    # as an empty list (Open vSwitch's meaning inside check_pkt_len).
    lists = children.filter(lambda acts: acts != [Drop()]).map(tuple)
    return st.one_of(
        st.builds(Sample, TEXT_PROBABILITY, lists),
        st.builds(Clone, lists),
        st.builds(CheckPktLen, U16, lists, lists),
        st.builds(DecTtl, lists),
    )


def text_actions(max_leaves: int = 12) -> st.SearchStrategy[list[Action]]:
    """Action lists that print and read back to themselves."""
    tree = st.recursive(
        _text_leaf(),
        lambda children: _nested_text(st.lists(children, max_size=3)),
        max_leaves=max_leaves,
    )
    # At the top level "drop" alone is the drop action, and no action at all
    # also prints as "drop": leave out the empty list.
    return st.lists(tree, min_size=1, max_size=4)


def _binary_leaf() -> st.SearchStrategy[Action]:
    return st.one_of(
        st.builds(Output, U32),
        binary_userspace(),
        st.builds(lambda kv: Set(*kv), SET_VALUES),
        st.builds(lambda kvm: SetMasked(*kvm), masked_values()),
        nsh_set_masked(),
        st.builds(PushVlan, U16, U16),
        st.just(PopVlan()),
        st.builds(Recirc, U32),
        st.builds(Hash, U32, U32),
        st.builds(PushMpls, _LSE, U16),
        st.builds(PopMpls, U16),
        st.builds(AddMpls, _LSE, U16, U16),
        binary_ct(),
        st.just(CtClear()),
        st.builds(Trunc, U32),
        st.builds(PushEth, MAC, MAC),
        st.just(PopEth()),
        binary_push_nsh(),
        st.just(PopNsh()),
        st.builds(Meter, U32),
        st.builds(Drop, U32),
        st.builds(Psample, U32, st.none() | st.binary(max_size=16)),
        st.builds(TunnelPush, U32, U32, U32, st.binary(max_size=80)),
        st.builds(TunnelPop, U32),
        st.builds(LbOutput, U32),
        st.builds(UnknownAction, st.integers(29, 0x3FFF) | st.just(0), st.binary(max_size=12)),
    )


def binary_actions(max_leaves: int = 12) -> st.SearchStrategy[list[Action]]:
    """Action lists the binary codec must carry exactly."""
    tree = st.recursive(
        _binary_leaf(),
        lambda children: st.one_of(
            st.builds(Sample, U32, st.lists(children, max_size=3).map(tuple)),
            st.builds(Clone, st.lists(children, max_size=3).map(tuple)),
            st.builds(
                CheckPktLen,
                U16,
                st.lists(children, max_size=3).map(tuple),
                st.lists(children, max_size=3).map(tuple),
            ),
            st.builds(DecTtl, st.lists(children, max_size=3).map(tuple)),
        ),
        max_leaves=max_leaves,
    )
    return st.lists(tree, max_size=5)


__all__ = [
    "SET_VALUES",
    "TEXT_COOKIES",
    "TEXT_PROBABILITY",
    "binary_actions",
    "masked_values",
    "text_actions",
    "text_tnl_push",
]

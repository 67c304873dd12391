"""Flow actions: typed values of ``OVS_ACTION_ATTR_*`` and their binary codec.

Each action is a small frozen dataclass named for what it does (`Output`,
`Set`, `Ct`...); `Action` is their union.  Nested action lists (`Sample`,
`Clone`, `CheckPktLen`, `DecTtl`) hold tuples of actions.  An action type this
codec does not know is kept as `UnknownAction` raw bytes and encodes back
unchanged.

`decode_actions` reads the payload of ``OVS_FLOW_ATTR_ACTIONS`` (or of a
packet's ``OVS_PACKET_ATTR_ACTIONS``) in one pass, dispatching on the
attribute type; malformed input of any kind raises `DecodeError` and nothing
else.  `encode_actions` writes them back in the attribute order Open
vSwitch's userspace uses, so that bytes produced from text match what
``ovs-dpctl`` would send.

The ``user_action_cookie`` layouts Open vSwitch puts in a userspace action's
userdata (sFlow, slow path, flow sample, IPFIX, controller) are here too
(`encode_user_action_cookie`, `decode_user_action_cookie`): the text syntax
shows userdata through them.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeAlias, get_args

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import NLA_F_NESTED, attr, attrs_to_dict, iter_attrs
from odpctl.odp.keys import _CODECS as _KEY_CODECS
from odpctl.odp.keys import Nsh, decode_key, encode_key_attr, encode_masked_key_attr
from odpctl.odp.uapi import (
    ETH_P_8021Q,
    ActionAttr,
    CheckPktLenAttr,
    CtAttr,
    DecTtlAttr,
    KeyAttr,
    NatAttr,
    PsampleAttr,
    SampleAttr,
    UserspaceAttr,
)

# How deep nested action lists (sample, clone, check_pkt_len, dec_ttl) may go
# before decoding or parsing refuses them.  Open vSwitch's parser stops at the
# same depth; the kernel allows far less.
MAX_NESTING = 32

# xlate_error code of an explicit drop that is not an error (XLATE_OK).
DROP_REASON_OK = 0

# Largest psample cookie the kernel accepts (OVS_PSAMPLE_COOKIE_MAX_SIZE).
PSAMPLE_COOKIE_MAX_SIZE = 16

# Size of the fixed part of struct ovs_action_push_tnl, before the header.
TNL_PUSH_FIXED_SIZE = 16
# Largest header a tunnel push carries (TNL_PUSH_HEADER_SIZE).
TNL_PUSH_HEADER_MAX = 512


# --- the model ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Output:
    """OVS_ACTION_ATTR_OUTPUT: send a copy of the packet to a port (u32)."""

    port: int


@dataclass(frozen=True, slots=True)
class Userspace:
    """OVS_ACTION_ATTR_USERSPACE: send the packet to a netlink socket.

    ``userdata`` is carried back in the upcall verbatim (Open vSwitch puts a
    ``user_action_cookie`` there); ``actions`` asks for the flow's actions to
    be included in the upcall.
    """

    pid: int
    userdata: bytes | None = None
    egress_tun_port: int | None = None
    actions: bool = False


@dataclass(frozen=True, slots=True)
class Set:
    """OVS_ACTION_ATTR_SET: overwrite one key field, e.g. ``set(tunnel(...))``.

    ``kind`` is an `odpctl.odp.uapi.KeyAttr`; ``value`` has the type the key
    codec uses for it (`odpctl.odp.keys.KEY_TYPES`).
    """

    kind: int
    value: Any


@dataclass(frozen=True, slots=True)
class SetMasked:
    """OVS_ACTION_ATTR_SET_MASKED: overwrite the bits of a key field set in ``mask``."""

    kind: int
    value: Any
    mask: Any


@dataclass(frozen=True, slots=True)
class PushVlan:
    """OVS_ACTION_ATTR_PUSH_VLAN: struct ovs_action_push_vlan.

    ``tci`` must have the CFI bit (0x1000) set for the kernel to accept it.
    """

    tpid: int = ETH_P_8021Q
    tci: int = 0


@dataclass(frozen=True, slots=True)
class PopVlan:
    """OVS_ACTION_ATTR_POP_VLAN."""


@dataclass(frozen=True, slots=True)
class Sample:
    """OVS_ACTION_ATTR_SAMPLE: run ``actions`` with probability/UINT32_MAX."""

    probability: int
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Recirc:
    """OVS_ACTION_ATTR_RECIRC: recirculate with this recirc_id."""

    id: int


@dataclass(frozen=True, slots=True)
class Hash:
    """OVS_ACTION_ATTR_HASH: struct ovs_action_hash; ``alg`` is a `HashAlg`."""

    alg: int
    basis: int


@dataclass(frozen=True, slots=True)
class PushMpls:
    """OVS_ACTION_ATTR_PUSH_MPLS: struct ovs_action_push_mpls."""

    lse: int
    ethertype: int


@dataclass(frozen=True, slots=True)
class PopMpls:
    """OVS_ACTION_ATTR_POP_MPLS: the ethertype of what is left."""

    ethertype: int


@dataclass(frozen=True, slots=True)
class AddMpls:
    """OVS_ACTION_ATTR_ADD_MPLS: struct ovs_action_add_mpls."""

    lse: int
    ethertype: int
    tun_flags: int = 0


@dataclass(frozen=True, slots=True)
class Nat:
    """OVS_CT_ATTR_NAT: nested ``OVS_NAT_ATTR_*``.

    Addresses are raw (4 bytes for IPv4, 16 for IPv6); ``None`` or False
    means the attribute is absent.
    """

    src: bool = False
    dst: bool = False
    ip_min: bytes | None = None
    ip_max: bytes | None = None
    proto_min: int | None = None
    proto_max: int | None = None
    persistent: bool = False
    proto_hash: bool = False
    proto_random: bool = False


@dataclass(frozen=True, slots=True)
class Ct:
    """OVS_ACTION_ATTR_CT: send the packet through conntrack.

    ``mark`` is ``(value, mask)`` (u32s); ``labels`` is ``(value, mask)`` of
    16 raw bytes each, as struct ovs_key_ct_labels carries them.  ``None``
    means the attribute is absent.
    """

    commit: bool = False
    force_commit: bool = False
    zone: int | None = None
    mark: tuple[int, int] | None = None
    labels: tuple[bytes, bytes] | None = None
    helper: str | None = None
    timeout: str | None = None
    eventmask: int | None = None
    nat: Nat | None = None


@dataclass(frozen=True, slots=True)
class CtClear:
    """OVS_ACTION_ATTR_CT_CLEAR."""


@dataclass(frozen=True, slots=True)
class Trunc:
    """OVS_ACTION_ATTR_TRUNC: struct ovs_action_trunc."""

    max_len: int


@dataclass(frozen=True, slots=True)
class PushEth:
    """OVS_ACTION_ATTR_PUSH_ETH: struct ovs_action_push_eth (MACs as 6 bytes)."""

    src: bytes
    dst: bytes


@dataclass(frozen=True, slots=True)
class PopEth:
    """OVS_ACTION_ATTR_POP_ETH."""


@dataclass(frozen=True, slots=True)
class PushNsh:
    """OVS_ACTION_ATTR_PUSH_NSH: the header to push, as an NSH key."""

    nsh: Nsh


@dataclass(frozen=True, slots=True)
class PopNsh:
    """OVS_ACTION_ATTR_POP_NSH."""


@dataclass(frozen=True, slots=True)
class Meter:
    """OVS_ACTION_ATTR_METER: u32 meter id."""

    id: int


@dataclass(frozen=True, slots=True)
class Clone:
    """OVS_ACTION_ATTR_CLONE: run ``actions`` on a copy of the packet."""

    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckPktLen:
    """OVS_ACTION_ATTR_CHECK_PKT_LEN: branch on the packet's length."""

    size: int
    gt: tuple[Action, ...] = ()
    le: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class DecTtl:
    """OVS_ACTION_ATTR_DEC_TTL: decrement the TTL; ``actions`` run when it expires."""

    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Drop:
    """OVS_ACTION_ATTR_DROP: explicit drop with an xlate_error reason (u32)."""

    reason: int = DROP_REASON_OK


@dataclass(frozen=True, slots=True)
class Psample:
    """OVS_ACTION_ATTR_PSAMPLE: sample to a psample group."""

    group: int
    cookie: bytes | None = None


@dataclass(frozen=True, slots=True)
class TunnelPush:
    """OVS_ACTION_ATTR_TUNNEL_PUSH: struct ovs_action_push_tnl (userspace datapath).

    ``header`` is the raw encapsulation header (its length is the struct's
    ``header_len``); ``tnl_type`` is an `odpctl.odp.uapi.VportType`.
    """

    tnl_port: int
    out_port: int
    tnl_type: int
    header: bytes


@dataclass(frozen=True, slots=True)
class TunnelPop:
    """OVS_ACTION_ATTR_TUNNEL_POP: u32 port (userspace datapath)."""

    port: int


@dataclass(frozen=True, slots=True)
class LbOutput:
    """OVS_ACTION_ATTR_LB_OUTPUT: u32 bond id (userspace datapath)."""

    bond_id: int


@dataclass(frozen=True, slots=True)
class UnknownAction:
    """An action attribute this codec does not know, kept so that it round-trips."""

    kind: int
    data: bytes


Action: TypeAlias = (
    Output
    | Userspace
    | Set
    | SetMasked
    | PushVlan
    | PopVlan
    | Sample
    | Recirc
    | Hash
    | PushMpls
    | PopMpls
    | AddMpls
    | Ct
    | CtClear
    | Trunc
    | PushEth
    | PopEth
    | PushNsh
    | PopNsh
    | Meter
    | Clone
    | CheckPktLen
    | DecTtl
    | Drop
    | Psample
    | TunnelPush
    | TunnelPop
    | LbOutput
    | UnknownAction
)

ACTION_TYPES: tuple[type, ...] = get_args(Action)


# --- Open vSwitch's user_action_cookie -----------------------------------------


class CookieType(IntEnum):
    """enum user_action_cookie_type (lib/odp-util.h)."""

    UNSPEC = 0
    SFLOW = 1
    SLOW_PATH = 2
    FLOW_SAMPLE = 3
    IPFIX = 4
    CONTROLLER = 5


class SampleDirection(IntEnum):
    """enum nx_action_sample_direction."""

    DEFAULT = 0
    INGRESS = 1
    EGRESS = 2


# Slow-path reasons, bit by bit (SLOW_PATH_REASONS in lib/odp-util.h).
SLOW_PATH_REASONS: tuple[tuple[int, str], ...] = (
    (1 << 0, "cfm"),
    (1 << 1, "bfd"),
    (1 << 2, "lacp"),
    (1 << 3, "stp"),
    (1 << 4, "lldp"),
    (1 << 5, "action"),
    (1 << 6, "match"),
)

USER_ACTION_COOKIE_SIZE = 48
OFPP_NONE = 0xFFFF  # OpenFlow "no port", what ovs puts in ofp_in_port
ODPP_NONE = 0xFFFFFFFF  # datapath "no port"


@dataclass(frozen=True, slots=True)
class SflowCookie:
    vlan_tci: int
    output: int
    ofp_in_port: int = OFPP_NONE
    ofproto_uuid: bytes = bytes(16)


@dataclass(frozen=True, slots=True)
class SlowPathCookie:
    reason: int
    ofp_in_port: int = OFPP_NONE
    ofproto_uuid: bytes = bytes(16)


@dataclass(frozen=True, slots=True)
class FlowSampleCookie:
    probability: int
    collector_set_id: int
    obs_domain_id: int
    obs_point_id: int
    output_odp_port: int
    direction: int = SampleDirection.DEFAULT
    ofp_in_port: int = OFPP_NONE
    ofproto_uuid: bytes = bytes(16)


@dataclass(frozen=True, slots=True)
class IpfixCookie:
    output_odp_port: int
    ofp_in_port: int = OFPP_NONE
    ofproto_uuid: bytes = bytes(16)


@dataclass(frozen=True, slots=True)
class ControllerCookie:
    dont_send: int
    continuation: int
    reason: int
    recirc_id: int
    rule_cookie: int
    controller_id: int
    max_len: int
    ofp_in_port: int = OFPP_NONE
    ofproto_uuid: bytes = bytes(16)


UserActionCookie: TypeAlias = (
    SflowCookie | SlowPathCookie | FlowSampleCookie | IpfixCookie | ControllerCookie
)

# struct user_action_cookie { uint16_t type; ofp_port_t ofp_in_port (u32, so
# 2 bytes of padding before it); struct uuid ofproto_uuid; union {...}; },
# 48 bytes, host byte order except where the union says ovs_be*.
_COOKIE_HEAD = struct.Struct("=H2xI16s")
# sflow { ovs_be16 vlan_tci; uint32_t output; }
_COOKIE_SFLOW_TCI = struct.Struct(">H2x")
_COOKIE_SFLOW_OUT = struct.Struct("=I16x")
# slow_path { uint16_t unused; uint32_t reason; }
_COOKIE_SLOW_PATH = struct.Struct("=4xI16x")
# flow_sample { uint16_t probability; uint32_t collector_set_id, obs_domain_id,
# obs_point_id; odp_port_t output_odp_port; enum direction; }
_COOKIE_FLOW_SAMPLE = struct.Struct("=H2xIIIII")
# ipfix { odp_port_t output_odp_port; }
_COOKIE_IPFIX = struct.Struct("=I20x")
# controller { uint8_t dont_send, continuation; uint16_t reason; uint32_t
# recirc_id; ovs_32aligned_be64 rule_cookie; uint16_t controller_id, max_len; }
_COOKIE_CTRL_A = struct.Struct("=BBHI")
_COOKIE_CTRL_COOKIE = struct.Struct(">Q")
_COOKIE_CTRL_B = struct.Struct("=HH4x")


def encode_user_action_cookie(cookie: UserActionCookie) -> bytes:
    """The 48 bytes of a struct user_action_cookie, as Open vSwitch lays it out."""
    try:
        if isinstance(cookie, SflowCookie):
            head = _COOKIE_HEAD.pack(CookieType.SFLOW, cookie.ofp_in_port, cookie.ofproto_uuid)
            body = _COOKIE_SFLOW_TCI.pack(cookie.vlan_tci) + _COOKIE_SFLOW_OUT.pack(cookie.output)
        elif isinstance(cookie, SlowPathCookie):
            head = _COOKIE_HEAD.pack(CookieType.SLOW_PATH, cookie.ofp_in_port, cookie.ofproto_uuid)
            body = _COOKIE_SLOW_PATH.pack(cookie.reason)
        elif isinstance(cookie, FlowSampleCookie):
            head = _COOKIE_HEAD.pack(
                CookieType.FLOW_SAMPLE, cookie.ofp_in_port, cookie.ofproto_uuid
            )
            body = _COOKIE_FLOW_SAMPLE.pack(
                cookie.probability,
                cookie.collector_set_id,
                cookie.obs_domain_id,
                cookie.obs_point_id,
                cookie.output_odp_port,
                cookie.direction,
            )
        elif isinstance(cookie, IpfixCookie):
            head = _COOKIE_HEAD.pack(CookieType.IPFIX, cookie.ofp_in_port, cookie.ofproto_uuid)
            body = _COOKIE_IPFIX.pack(cookie.output_odp_port)
        elif isinstance(cookie, ControllerCookie):
            head = _COOKIE_HEAD.pack(CookieType.CONTROLLER, cookie.ofp_in_port, cookie.ofproto_uuid)
            body = (
                _COOKIE_CTRL_A.pack(
                    cookie.dont_send, cookie.continuation, cookie.reason, cookie.recirc_id
                )
                + _COOKIE_CTRL_COOKIE.pack(cookie.rule_cookie)
                + _COOKIE_CTRL_B.pack(cookie.controller_id, cookie.max_len)
            )
        else:
            raise ValueError(f"not a user action cookie: {cookie!r}")
    except struct.error as exc:
        raise ValueError(f"bad user action cookie {cookie!r}: {exc}") from None
    if len(cookie.ofproto_uuid) != 16:
        raise ValueError("ofproto_uuid must be 16 bytes")
    return head + body


def decode_user_action_cookie(data: bytes) -> UserActionCookie | None:
    """The cookie in a userspace action's userdata, or None if it holds none.

    Open vSwitch recognises a cookie by its size (exactly 48 bytes) and its
    type; anything else is opaque userdata.
    """
    if len(data) != USER_ACTION_COOKIE_SIZE:
        return None
    kind, in_port, uuid = _COOKIE_HEAD.unpack_from(data, 0)
    body = data[24:]
    if kind == CookieType.SFLOW:
        (tci,) = _COOKIE_SFLOW_TCI.unpack_from(body, 0)
        (output,) = _COOKIE_SFLOW_OUT.unpack_from(body, 4)
        return SflowCookie(tci, output, in_port, uuid)
    if kind == CookieType.SLOW_PATH:
        (reason,) = _COOKIE_SLOW_PATH.unpack(body)
        return SlowPathCookie(reason, in_port, uuid)
    if kind == CookieType.FLOW_SAMPLE:
        prob, cset, domain, point, out, direction = _COOKIE_FLOW_SAMPLE.unpack(body)
        return FlowSampleCookie(prob, cset, domain, point, out, direction, in_port, uuid)
    if kind == CookieType.IPFIX:
        (out,) = _COOKIE_IPFIX.unpack(body)
        return IpfixCookie(out, in_port, uuid)
    if kind == CookieType.CONTROLLER:
        dont_send, cont, reason, recirc = _COOKIE_CTRL_A.unpack_from(body, 0)
        (rule_cookie,) = _COOKIE_CTRL_COOKIE.unpack_from(body, 8)
        ctrl_id, max_len = _COOKIE_CTRL_B.unpack_from(body, 16)
        return ControllerCookie(
            dont_send, cont, reason, recirc, rule_cookie, ctrl_id, max_len, in_port, uuid
        )
    return None


# --- binary decoding --------------------------------------------------------------
#
# One decoder per action type, taking the attribute payload and the nesting
# depth.  Decoders may raise struct.error or ValueError on a wrong length;
# decode_actions turns that into DecodeError.

_HDR = struct.Struct("=HH")
_HDR_unpack_from = _HDR.unpack_from
_U16 = struct.Struct("=H")
_U16_unpack_from = _U16.unpack_from
_U32 = struct.Struct("=I")
_U32_unpack_from = _U32.unpack_from
_BE16 = struct.Struct("!H")
_U32_unpack = _U32.unpack
_PUSH_VLAN = struct.Struct("!HH")  # struct ovs_action_push_vlan
_HASH = struct.Struct("=II")  # struct ovs_action_hash
_PUSH_MPLS = struct.Struct("!IH2x")  # struct ovs_action_push_mpls (8 bytes, padded)
_ADD_MPLS_HEAD = struct.Struct("!IH")  # struct ovs_action_add_mpls: lse, ethertype...
_ADD_MPLS = struct.Struct("=6xH")  # ...then host-order tun_flags
_PUSH_ETH = struct.Struct("6s6s")  # struct ovs_action_push_eth { ovs_key_ethernet }
_CT_MARK = struct.Struct("=II")  # OVS_CT_ATTR_MARK: u32 value, u32 mask
_PUSH_TNL = struct.Struct("=IIII")  # struct ovs_action_push_tnl, fixed part
_NLA_TYPE_MASK = 0x3FFF
_OUTPUT = int(ActionAttr.OUTPUT)

_Decoder = Callable[[bytes, int], Action]

# Shared instances of the argument-less actions.
_POP_VLAN = PopVlan()
_CT_CLEAR = CtClear()
_POP_ETH = PopEth()
_POP_NSH = PopNsh()

_new = object.__new__
_set_output_port = Output.__dict__["port"].__set__


def _dec_output(p: bytes, _depth: int) -> Action:
    # The hottest action: skip the frozen dataclass __init__.
    (port,) = _U32_unpack(p)
    out = _new(Output)
    _set_output_port(out, port)
    return out


def _dec_u32(cls: Callable[[int], Action]) -> _Decoder:
    def decode(p: bytes, _depth: int) -> Action:
        return cls(_U32_unpack(p)[0])

    return decode


def _dec_empty(instance: Action, name: str) -> _Decoder:
    def decode(p: bytes, _depth: int) -> Action:
        if p:
            raise ValueError(f"{name} carries {len(p)} bytes, expected none")
        return instance

    return decode


_US_PID = int(UserspaceAttr.PID)
_US_USERDATA = int(UserspaceAttr.USERDATA)
_US_TUN_PORT = int(UserspaceAttr.EGRESS_TUN_PORT)
_US_ACTIONS = int(UserspaceAttr.ACTIONS)


def _dec_userspace(p: bytes, _depth: int) -> Action:
    attrs = attrs_to_dict(p)
    pid = attrs.get(_US_PID)
    if pid is None:
        raise ValueError("userspace action without a pid")
    tun_port = attrs.get(_US_TUN_PORT)
    return Userspace(
        _U32_unpack(pid)[0],
        attrs.get(_US_USERDATA),
        None if tun_port is None else _U32_unpack(tun_port)[0],
        _US_ACTIONS in attrs,
    )


def _one_key_attr(p: bytes) -> tuple[int, bytes]:
    """The single key attribute a set action holds: its type and payload."""
    if len(p) < 4:
        raise ValueError("set action without a key attribute")
    nla_len, nla_type = _HDR_unpack_from(p, 0)
    if nla_len < 4 or nla_len > len(p) or (nla_len + 3) & ~3 < len(p):
        raise ValueError("a set action must hold exactly one key attribute")
    return nla_type & _NLA_TYPE_MASK, p[4:nla_len]


def _decode_one_key(kind: int, payload: bytes) -> Any:
    """One key attribute's value from its payload (half of a masked set)."""
    codec = _KEY_CODECS.get(kind)
    if codec is not None:
        return codec[0](payload)
    key = decode_key(_HDR.pack(len(payload) + 4, kind) + payload)  # encap, unknown kinds
    return key[kind]


_set_set_kind = Set.__dict__["kind"].__set__
_set_set_value = Set.__dict__["value"].__set__


def new_set(kind: int, value: Any) -> Set:
    """``Set(kind, value)``, less the frozen dataclass __init__ (two
    object.__setattr__ calls): decoders and the flow memo make many."""
    out = _new(Set)
    _set_set_kind(out, kind)
    _set_set_value(out, value)
    return out


def _dec_set(p: bytes, _depth: int) -> Action:
    # Exactly one key attribute: its padded length is the whole payload.
    if len(p) < 4 or (_U16_unpack_from(p, 0)[0] + 3) & ~3 < len(p):
        raise ValueError("a set action must hold exactly one key attribute")
    key = decode_key(p)
    if len(key) != 1:
        raise ValueError("a set action must hold exactly one key attribute")
    for kind, value in key.items():
        return new_set(kind, value)
    raise ValueError("set action without a key attribute")  # pragma: no cover


def _dec_set_masked(p: bytes, _depth: int) -> Action:
    kind, payload = _one_key_attr(p)
    if kind == KeyAttr.NSH:
        value, mask = _split_nsh(payload)
        return SetMasked(kind, value, mask)
    if len(payload) & 1:
        raise ValueError(f"masked set of key attribute {kind}: odd length {len(payload)}")
    half = len(payload) >> 1
    return SetMasked(
        kind, _decode_one_key(kind, payload[:half]), _decode_one_key(kind, payload[half:])
    )


def _split_nsh(payload: bytes) -> tuple[Nsh, Nsh]:
    """A masked NSH key: every nested attribute holds its value then its mask."""
    values: list[bytes] = []
    masks: list[bytes] = []
    for sub, data in iter_attrs(payload):
        if len(data) & 1:
            raise ValueError(f"masked NSH attribute {sub}: odd length {len(data)}")
        half = len(data) >> 1
        values.append(attr(sub, data[:half]))
        masks.append(attr(sub, data[half:]))
    value = _decode_one_key(KeyAttr.NSH, b"".join(values))
    mask = _decode_one_key(KeyAttr.NSH, b"".join(masks))
    return value, mask


def _dec_push_vlan(p: bytes, _depth: int) -> Action:
    tpid, tci = _PUSH_VLAN.unpack(p)
    return PushVlan(tpid, tci)


def _dec_sample(p: bytes, depth: int) -> Action:
    probability: int | None = None
    actions: tuple[Action, ...] = ()
    for kind, payload in attrs_to_dict(p).items():
        if kind == SampleAttr.PROBABILITY:
            (probability,) = _U32_unpack(payload)
        elif kind == SampleAttr.ACTIONS:
            actions = _decode_nested(payload, depth)
    if probability is None:
        raise ValueError("sample action without a probability")
    return Sample(probability, actions)


def _dec_hash(p: bytes, _depth: int) -> Action:
    alg, basis = _HASH.unpack(p)
    return Hash(alg, basis)


def _dec_push_mpls(p: bytes, _depth: int) -> Action:
    lse, ethertype = _PUSH_MPLS.unpack(p)
    return PushMpls(lse, ethertype)


def _dec_pop_mpls(p: bytes, _depth: int) -> Action:
    return PopMpls(_BE16.unpack(p)[0])


def _dec_add_mpls(p: bytes, _depth: int) -> Action:
    (tun_flags,) = _ADD_MPLS.unpack(p)
    lse, ethertype = _ADD_MPLS_HEAD.unpack_from(p, 0)
    return AddMpls(lse, ethertype, tun_flags)


def _dec_string(payload: bytes, what: str) -> str:
    # NUL-terminated (NLA_NUL_STRING); surrogateescape keeps any byte exact.
    if not payload.endswith(b"\0") or b"\0" in payload[:-1]:
        raise ValueError(f"{what} is not a NUL-terminated string")
    return payload[:-1].decode("utf-8", "surrogateescape")


def _dec_nat(p: bytes) -> Nat:
    src = dst = persistent = proto_hash = proto_random = False
    ip_min = ip_max = None
    proto_min = proto_max = None
    for kind, payload in attrs_to_dict(p).items():
        if kind == NatAttr.SRC:
            src = True
        elif kind == NatAttr.DST:
            dst = True
        elif kind == NatAttr.IP_MIN:
            ip_min = _nat_addr(payload)
        elif kind == NatAttr.IP_MAX:
            ip_max = _nat_addr(payload)
        elif kind == NatAttr.PROTO_MIN:
            (proto_min,) = _U16.unpack(payload)
        elif kind == NatAttr.PROTO_MAX:
            (proto_max,) = _U16.unpack(payload)
        elif kind == NatAttr.PERSISTENT:
            persistent = True
        elif kind == NatAttr.PROTO_HASH:
            proto_hash = True
        elif kind == NatAttr.PROTO_RANDOM:
            proto_random = True
    return Nat(src, dst, ip_min, ip_max, proto_min, proto_max, persistent, proto_hash, proto_random)


def _nat_addr(payload: bytes) -> bytes:
    if not 4 <= len(payload) <= 16:
        raise ValueError(f"NAT address of {len(payload)} bytes")
    return payload


def _dec_ct(p: bytes, _depth: int) -> Action:
    commit = force = False
    zone = eventmask = None
    mark: tuple[int, int] | None = None
    labels: tuple[bytes, bytes] | None = None
    helper = timeout = None
    nat = None
    for kind, payload in attrs_to_dict(p).items():
        if kind == CtAttr.COMMIT:
            commit = True
        elif kind == CtAttr.FORCE_COMMIT:
            force = True
        elif kind == CtAttr.ZONE:
            (zone,) = _U16.unpack(payload)
        elif kind == CtAttr.MARK:
            value, mask = _CT_MARK.unpack(payload)
            mark = (value, mask)
        elif kind == CtAttr.LABELS:
            if len(payload) != 32:
                raise ValueError(f"ct labels of {len(payload)} bytes, expected 32")
            labels = (payload[:16], payload[16:])
        elif kind == CtAttr.HELPER:
            helper = _dec_string(payload, "ct helper")
        elif kind == CtAttr.TIMEOUT:
            timeout = _dec_string(payload, "ct timeout")
        elif kind == CtAttr.EVENTMASK:
            (eventmask,) = _U32_unpack(payload)
        elif kind == CtAttr.NAT:
            nat = _dec_nat(payload)
    return Ct(commit, force, zone, mark, labels, helper, timeout, eventmask, nat)


def _dec_push_eth(p: bytes, _depth: int) -> Action:
    src, dst = _PUSH_ETH.unpack(p)
    return PushEth(src, dst)


def _dec_push_nsh(p: bytes, _depth: int) -> Action:
    kind, _ = _one_key_attr(p)
    if kind != KeyAttr.NSH:
        raise ValueError(f"push_nsh holds key attribute {kind}, expected NSH")
    return PushNsh(decode_key(p)[KeyAttr.NSH])


def _dec_clone(p: bytes, depth: int) -> Action:
    return Clone(_decode_nested(p, depth))


def _dec_check_pkt_len(p: bytes, depth: int) -> Action:
    size: int | None = None
    gt: tuple[Action, ...] = ()
    le: tuple[Action, ...] = ()
    for kind, payload in attrs_to_dict(p).items():
        if kind == CheckPktLenAttr.PKT_LEN:
            (size,) = _U16.unpack(payload)
        elif kind == CheckPktLenAttr.ACTIONS_IF_GREATER:
            gt = _decode_nested(payload, depth)
        elif kind == CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL:
            le = _decode_nested(payload, depth)
    if size is None:
        raise ValueError("check_pkt_len action without a packet length")
    return CheckPktLen(size, gt, le)


def _dec_dec_ttl(p: bytes, depth: int) -> Action:
    for kind, payload in iter_attrs(p):
        if kind == DecTtlAttr.ACTION:
            return DecTtl(_decode_nested(payload, depth))
    return DecTtl(())


def _dec_psample(p: bytes, _depth: int) -> Action:
    group: int | None = None
    cookie: bytes | None = None
    for kind, payload in attrs_to_dict(p).items():
        if kind == PsampleAttr.GROUP:
            (group,) = _U32_unpack(payload)
        elif kind == PsampleAttr.COOKIE:
            cookie = payload
    if group is None:
        raise ValueError("psample action without a group")
    return Psample(group, cookie)


def _dec_tunnel_push(p: bytes, _depth: int) -> Action:
    tnl_port, out_port, header_len, tnl_type = _PUSH_TNL.unpack_from(p, 0)
    if header_len != len(p) - TNL_PUSH_FIXED_SIZE:
        raise ValueError(
            f"tunnel push header_len {header_len} but {len(p) - TNL_PUSH_FIXED_SIZE} header bytes"
        )
    return TunnelPush(tnl_port, out_port, tnl_type, p[TNL_PUSH_FIXED_SIZE:])


_DECODERS: dict[int, _Decoder] = {
    ActionAttr.OUTPUT: _dec_output,
    ActionAttr.USERSPACE: _dec_userspace,
    ActionAttr.SET: _dec_set,
    ActionAttr.PUSH_VLAN: _dec_push_vlan,
    ActionAttr.POP_VLAN: _dec_empty(_POP_VLAN, "pop_vlan"),
    ActionAttr.SAMPLE: _dec_sample,
    ActionAttr.RECIRC: _dec_u32(Recirc),
    ActionAttr.HASH: _dec_hash,
    ActionAttr.PUSH_MPLS: _dec_push_mpls,
    ActionAttr.POP_MPLS: _dec_pop_mpls,
    ActionAttr.SET_MASKED: _dec_set_masked,
    ActionAttr.CT: _dec_ct,
    ActionAttr.TRUNC: _dec_u32(Trunc),
    ActionAttr.PUSH_ETH: _dec_push_eth,
    ActionAttr.POP_ETH: _dec_empty(_POP_ETH, "pop_eth"),
    ActionAttr.CT_CLEAR: _dec_empty(_CT_CLEAR, "ct_clear"),
    ActionAttr.PUSH_NSH: _dec_push_nsh,
    ActionAttr.POP_NSH: _dec_empty(_POP_NSH, "pop_nsh"),
    ActionAttr.METER: _dec_u32(Meter),
    ActionAttr.CLONE: _dec_clone,
    ActionAttr.CHECK_PKT_LEN: _dec_check_pkt_len,
    ActionAttr.ADD_MPLS: _dec_add_mpls,
    ActionAttr.DEC_TTL: _dec_dec_ttl,
    ActionAttr.DROP: _dec_u32(Drop),
    ActionAttr.PSAMPLE: _dec_psample,
    ActionAttr.TUNNEL_PUSH: _dec_tunnel_push,
    ActionAttr.TUNNEL_POP: _dec_u32(TunnelPop),
    ActionAttr.LB_OUTPUT: _dec_u32(LbOutput),
}
# Plain ints make the lookup a little cheaper than IntEnum keys.
_DECODERS = {int(k): v for k, v in _DECODERS.items()}


def _decode_list(data: bytes, depth: int) -> list[Action]:
    out: list[Action] = []
    append = out.append
    decoders = _DECODERS
    unpack = _HDR_unpack_from
    unpack_u32 = _U32_unpack_from
    new = _new
    set_port = _set_output_port
    end = len(data)
    off = 0
    while off < end:
        if end - off < 4:
            raise DecodeError(f"actions: {end - off} stray bytes at offset {off}")
        nla_len, nla_type = unpack(data, off)
        nxt = off + nla_len
        if nla_len < 4 or nxt > end:
            raise DecodeError(f"actions: attribute at offset {off} has bad length {nla_len}")
        kind = nla_type & _NLA_TYPE_MASK
        if kind == _OUTPUT and nla_len == 8:  # the common case, inline
            out_action = new(Output)
            set_port(out_action, unpack_u32(data, off + 4)[0])
            append(out_action)
            off = nxt
            continue
        decode = decoders.get(kind)
        payload = data[off + 4 : nxt]
        if decode is None:
            append(UnknownAction(kind, payload))
        else:
            try:
                append(decode(payload, depth))
            except (struct.error, ValueError) as exc:
                raise DecodeError(f"malformed {_action_name(kind)} action: {exc}") from None
        off = (nxt + 3) & ~3
    return out


def _decode_nested(data: bytes, depth: int) -> tuple[Action, ...]:
    if depth >= MAX_NESTING:
        raise DecodeError(f"actions nested more than {MAX_NESTING} deep")
    return tuple(_decode_list(data, depth + 1))


def _action_name(kind: int) -> str:
    try:
        return ActionAttr(kind).name.lower()
    except ValueError:
        return f"action{kind}"


def decode_actions(data: bytes) -> list[Action]:
    """Decode a sequence of OVS_ACTION_ATTR_* attributes.

    Raises `DecodeError`, and nothing else, on malformed input.
    """
    if type(data) is not bytes:
        data = bytes(data)  # slices of a bytearray or memoryview would not be bytes
    try:
        return _decode_list(data, 0)
    except DecodeError:
        raise
    except (struct.error, ValueError, IndexError, RecursionError) as exc:
        raise DecodeError(f"malformed actions: {exc}") from None


# --- binary encoding --------------------------------------------------------------

_NLA_U32 = struct.Struct("=HHI")
_NLA_U32_pack = _NLA_U32.pack
_NLA_EMPTY = struct.Struct("=HH")

_Encoder = Callable[[Any], bytes]

# The encoders of the common actions use plain ints and prepacked headers: an
# IntEnum member costs a class attribute lookup, and an __index__ call when
# packed, on every use, which is a good share of encoding a small action.
_A_OUTPUT = int(ActionAttr.OUTPUT)
_A_USERSPACE = int(ActionAttr.USERSPACE)
_A_SET = int(ActionAttr.SET)
_A_SET_MASKED = int(ActionAttr.SET_MASKED)
_A_CT = int(ActionAttr.CT)
_PUSH_VLAN_ATTR = functools.partial(
    struct.Struct("!4sHH").pack, _NLA_EMPTY.pack(8, ActionAttr.PUSH_VLAN)
)
_US_ACTIONS_ATTR = _NLA_EMPTY.pack(4, UserspaceAttr.ACTIONS)
_CT_COMMIT_ATTR = _NLA_EMPTY.pack(4, CtAttr.COMMIT)
_CT_FORCE_COMMIT_ATTR = _NLA_EMPTY.pack(4, CtAttr.FORCE_COMMIT)
_CT_EVENTMASK = int(CtAttr.EVENTMASK)
_CT_ZONE_ATTR = struct.Struct("=HHH2x")
_CT_ZONE_HDR = (6, int(CtAttr.ZONE))


def _key_payload(kind: int, value: Any) -> bytes:
    """The payload of one encoded key attribute (no header, no padding)."""
    enc = encode_key_attr(kind, value)
    (nla_len,) = _U16.unpack_from(enc, 0)
    return enc[4:nla_len]


def _enc_output(a: Output) -> bytes:
    return _NLA_U32_pack(8, _A_OUTPUT, a.port)


def _enc_u32(kind: int, field: str) -> _Encoder:
    kind = int(kind)

    def encode(a: Any) -> bytes:
        return _NLA_U32_pack(8, kind, getattr(a, field))

    return encode


def _enc_empty(kind: int) -> _Encoder:
    packed = _NLA_EMPTY.pack(4, kind)

    def encode(_a: Any) -> bytes:
        return packed

    return encode


def _enc_userspace(a: Userspace) -> bytes:
    # Open vSwitch's order (odp_put_userspace_action).
    payload = _NLA_U32_pack(8, _US_PID, a.pid)
    if a.userdata is not None:
        payload += attr(_US_USERDATA, bytes(a.userdata))
    if a.egress_tun_port is not None:
        payload += _NLA_U32_pack(8, _US_TUN_PORT, a.egress_tun_port)
    if a.actions:
        payload += _US_ACTIONS_ATTR
    return attr(_A_USERSPACE, payload)


def _enc_set(a: Set) -> bytes:
    return attr(_A_SET, encode_key_attr(a.kind, a.value))


def _enc_set_masked(a: SetMasked) -> bytes:
    nested = encode_masked_key_attr(a.kind, a.value, a.mask)
    if nested is not None:
        return attr(_A_SET_MASKED, nested)
    if a.kind == KeyAttr.NSH:
        payload = _nsh_masked_payload(a.value, a.mask)
    else:
        value = _key_payload(a.kind, a.value)
        mask = _key_payload(a.kind, a.mask)
        if len(value) != len(mask):
            raise ValueError(
                f"masked set of key attribute {a.kind}: value of {len(value)} bytes "
                f"but mask of {len(mask)}"
            )
        payload = value + mask
    return attr(ActionAttr.SET_MASKED, attr(a.kind, payload))


def _nsh_masked_payload(value: Nsh, mask: Nsh) -> bytes:
    """Each nested NSH attribute holds its value then its mask (kernel layout).

    An attribute present on one side only is paired with zeros.
    """
    values = dict(iter_attrs(_key_payload(KeyAttr.NSH, value)))
    masks = dict(iter_attrs(_key_payload(KeyAttr.NSH, mask)))
    out: list[bytes] = []
    for sub in list(values) + [t for t in masks if t not in values]:
        v = values.get(sub)
        m = masks.get(sub)
        if v is None:
            v = bytes(len(m or b""))
        if m is None:
            m = bytes(len(v))
        if len(v) != len(m):
            raise ValueError(f"masked NSH attribute {sub}: value and mask differ in length")
        out.append(attr(sub, v + m))
    return b"".join(out)


def _enc_push_vlan(a: PushVlan) -> bytes:
    return _PUSH_VLAN_ATTR(a.tpid, a.tci)


def _enc_sample(a: Sample) -> bytes:
    return attr(
        ActionAttr.SAMPLE,
        _NLA_U32_pack(8, SampleAttr.PROBABILITY, a.probability)
        + attr(SampleAttr.ACTIONS, encode_actions(a.actions)),
    )


def _enc_hash(a: Hash) -> bytes:
    return attr(ActionAttr.HASH, _HASH.pack(a.alg, a.basis))


def _enc_push_mpls(a: PushMpls) -> bytes:
    return attr(ActionAttr.PUSH_MPLS, _PUSH_MPLS.pack(a.lse, a.ethertype))


def _enc_pop_mpls(a: PopMpls) -> bytes:
    return attr(ActionAttr.POP_MPLS, _BE16.pack(a.ethertype))


def _enc_add_mpls(a: AddMpls) -> bytes:
    return attr(
        ActionAttr.ADD_MPLS,
        _ADD_MPLS_HEAD.pack(a.lse, a.ethertype) + _U16.pack(a.tun_flags),
    )


def _enc_string(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape") + b"\0"


def _enc_nat(n: Nat) -> bytes:
    parts: list[bytes] = []
    if n.src:
        parts.append(_NLA_EMPTY.pack(4, NatAttr.SRC))
    if n.dst:
        parts.append(_NLA_EMPTY.pack(4, NatAttr.DST))
    if n.ip_min is not None:
        parts.append(attr(NatAttr.IP_MIN, bytes(n.ip_min)))
    if n.ip_max is not None:
        parts.append(attr(NatAttr.IP_MAX, bytes(n.ip_max)))
    if n.proto_min is not None:
        parts.append(attr(NatAttr.PROTO_MIN, _U16.pack(n.proto_min)))
    if n.proto_max is not None:
        parts.append(attr(NatAttr.PROTO_MAX, _U16.pack(n.proto_max)))
    if n.persistent:
        parts.append(_NLA_EMPTY.pack(4, NatAttr.PERSISTENT))
    if n.proto_hash:
        parts.append(_NLA_EMPTY.pack(4, NatAttr.PROTO_HASH))
    if n.proto_random:
        parts.append(_NLA_EMPTY.pack(4, NatAttr.PROTO_RANDOM))
    return attr(CtAttr.NAT, b"".join(parts))


def _enc_ct(a: Ct) -> bytes:
    # Open vSwitch's order: parse_conntrack_action, with the eventmask where
    # ofproto puts it (right after the commit flag).
    parts: list[bytes] = []
    if a.commit:
        parts.append(_CT_COMMIT_ATTR)
    if a.force_commit:
        parts.append(_CT_FORCE_COMMIT_ATTR)
    if a.eventmask is not None:
        parts.append(_NLA_U32_pack(8, _CT_EVENTMASK, a.eventmask))
    if a.zone is not None:
        parts.append(_CT_ZONE_ATTR.pack(*_CT_ZONE_HDR, a.zone))
    if a.mark is not None:
        parts.append(attr(CtAttr.MARK, _CT_MARK.pack(*a.mark)))
    if a.labels is not None:
        value, mask = a.labels
        if len(value) != 16 or len(mask) != 16:
            raise ValueError("ct labels must be two 16-byte values")
        parts.append(attr(CtAttr.LABELS, bytes(value) + bytes(mask)))
    if a.helper is not None:
        parts.append(attr(CtAttr.HELPER, _enc_string(a.helper)))
    if a.timeout is not None:
        parts.append(attr(CtAttr.TIMEOUT, _enc_string(a.timeout)))
    if a.nat is not None:
        parts.append(_enc_nat(a.nat))
    return attr(_A_CT, b"".join(parts))


def _enc_push_eth(a: PushEth) -> bytes:
    if len(a.src) != 6 or len(a.dst) != 6:
        raise ValueError("push_eth addresses must be 6 bytes")
    return attr(ActionAttr.PUSH_ETH, _PUSH_ETH.pack(a.src, a.dst))


def _enc_push_nsh(a: PushNsh) -> bytes:
    return attr(ActionAttr.PUSH_NSH, encode_key_attr(KeyAttr.NSH, a.nsh))


def _enc_clone(a: Clone) -> bytes:
    return attr(ActionAttr.CLONE, encode_actions(a.actions))


def _enc_check_pkt_len(a: CheckPktLen) -> bytes:
    # Open vSwitch's order: greater, then less-or-equal.
    return attr(
        ActionAttr.CHECK_PKT_LEN,
        attr(CheckPktLenAttr.PKT_LEN, _U16.pack(a.size))
        + attr(CheckPktLenAttr.ACTIONS_IF_GREATER, encode_actions(a.gt))
        + attr(CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL, encode_actions(a.le)),
    )


def _enc_dec_ttl(a: DecTtl) -> bytes:
    return attr(ActionAttr.DEC_TTL, attr(DecTtlAttr.ACTION, encode_actions(a.actions)))


def _enc_psample(a: Psample) -> bytes:
    payload = _NLA_U32_pack(8, PsampleAttr.GROUP, a.group)
    if a.cookie is not None:
        if len(a.cookie) > PSAMPLE_COOKIE_MAX_SIZE:
            raise ValueError(f"psample cookie longer than {PSAMPLE_COOKIE_MAX_SIZE} bytes")
        payload += attr(PsampleAttr.COOKIE, bytes(a.cookie))
    # Open vSwitch marks this one nested (nl_msg_start_nested_with_flag).
    return attr(ActionAttr.PSAMPLE | NLA_F_NESTED, payload)


def _enc_tunnel_push(a: TunnelPush) -> bytes:
    fixed = _PUSH_TNL.pack(a.tnl_port, a.out_port, len(a.header), a.tnl_type)
    return attr(ActionAttr.TUNNEL_PUSH, fixed + bytes(a.header))


def _enc_unknown(a: UnknownAction) -> bytes:
    return attr(a.kind, bytes(a.data))


_ENCODERS: dict[type, _Encoder] = {
    Output: _enc_output,
    Userspace: _enc_userspace,
    Set: _enc_set,
    SetMasked: _enc_set_masked,
    PushVlan: _enc_push_vlan,
    PopVlan: _enc_empty(ActionAttr.POP_VLAN),
    Sample: _enc_sample,
    Recirc: _enc_u32(ActionAttr.RECIRC, "id"),
    Hash: _enc_hash,
    PushMpls: _enc_push_mpls,
    PopMpls: _enc_pop_mpls,
    AddMpls: _enc_add_mpls,
    Ct: _enc_ct,
    CtClear: _enc_empty(ActionAttr.CT_CLEAR),
    Trunc: _enc_u32(ActionAttr.TRUNC, "max_len"),
    PushEth: _enc_push_eth,
    PopEth: _enc_empty(ActionAttr.POP_ETH),
    PushNsh: _enc_push_nsh,
    PopNsh: _enc_empty(ActionAttr.POP_NSH),
    Meter: _enc_u32(ActionAttr.METER, "id"),
    Clone: _enc_clone,
    CheckPktLen: _enc_check_pkt_len,
    DecTtl: _enc_dec_ttl,
    Drop: _enc_u32(ActionAttr.DROP, "reason"),
    Psample: _enc_psample,
    TunnelPush: _enc_tunnel_push,
    TunnelPop: _enc_u32(ActionAttr.TUNNEL_POP, "port"),
    LbOutput: _enc_u32(ActionAttr.LB_OUTPUT, "bond_id"),
    UnknownAction: _enc_unknown,
}


def encode_actions(actions: Iterable[Action]) -> bytes:
    """Encode actions as a sequence of OVS_ACTION_ATTR_* attributes.

    Raises ValueError for a value of the wrong shape or range.
    """
    encoders = _ENCODERS
    out: list[bytes] = []
    for action in actions:
        encode = encoders.get(type(action))
        if encode is None:
            raise ValueError(f"not an action: {action!r}")
        try:
            out.append(encode(action))
        except (struct.error, TypeError, OverflowError, AttributeError) as exc:
            raise ValueError(f"bad value in {action!r}: {exc}") from None
    return b"".join(out)


__all__ = [
    "ACTION_TYPES",
    "MAX_NESTING",
    "SLOW_PATH_REASONS",
    "Action",
    "AddMpls",
    "CheckPktLen",
    "Clone",
    "ControllerCookie",
    "CookieType",
    "Ct",
    "CtClear",
    "DecTtl",
    "Drop",
    "FlowSampleCookie",
    "Hash",
    "IpfixCookie",
    "LbOutput",
    "Meter",
    "Nat",
    "Output",
    "PopEth",
    "PopMpls",
    "PopNsh",
    "PopVlan",
    "Psample",
    "PushEth",
    "PushMpls",
    "PushNsh",
    "PushVlan",
    "Recirc",
    "Sample",
    "SampleDirection",
    "Set",
    "SetMasked",
    "SflowCookie",
    "SlowPathCookie",
    "Trunc",
    "TunnelPop",
    "TunnelPush",
    "UnknownAction",
    "UserActionCookie",
    "Userspace",
    "decode_actions",
    "decode_user_action_cookie",
    "encode_actions",
    "encode_user_action_cookie",
    "new_set",
]

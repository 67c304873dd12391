"""One spec per key attribute: what an ``OVS_KEY_ATTR_*`` holds and how it is written.

Each attribute has one `KeySpec`: its number, its text name, the Python type of
its value, the struct format of its payload (for the fixed-size ones, from
which its size and its zero and full masks follow), and its fields: the name
each has in the text, the value field it fills, and the syntax it is read in.
Each tunnel attribute (``OVS_TUNNEL_KEY_ATTR_*``) has one `TunnelOpt` alike.

The binary codec (`odpctl.odp.keys`), the text syntax (`odpctl.odp.text`),
completion (`odpctl.odp.text.vocabulary`) and the userspace datapath's key
parser (`odpctl.datapath.keyparse`) take what they need from here, and
``tests/odp/test_keyspec.py`` checks that each of them agrees with it for
every attribute.  So a new attribute, or a new tunnel option, is one entry
here plus its tests (and, for an attribute with a syntax of its own, its
formatter).

The value types are here too, since a fixed attribute's type is its field
list: NamedTuples named after the kernel's ``struct ovs_key_*``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from odpctl.odp.uapi import KeyAttr, TunnelKeyAttr, VxlanExt


class Unknown(NamedTuple):
    """An attribute this codec does not know, kept so that it round-trips."""

    data: bytes


class Eth(NamedTuple):
    """struct ovs_key_ethernet."""

    src: bytes
    dst: bytes


class Ipv4(NamedTuple):
    """struct ovs_key_ipv4; ``frag`` is an `odpctl.odp.uapi.FragType`."""

    src: int
    dst: int
    proto: int
    tos: int
    ttl: int
    frag: int


class Ipv6(NamedTuple):
    """struct ovs_key_ipv6; ``label`` holds the 20-bit flow label."""

    src: bytes
    dst: bytes
    label: int
    proto: int
    tclass: int
    hlimit: int
    frag: int


class Ports(NamedTuple):
    """struct ovs_key_tcp, ovs_key_udp and ovs_key_sctp."""

    src: int
    dst: int


class Icmp(NamedTuple):
    """struct ovs_key_icmp and ovs_key_icmpv6."""

    type: int
    code: int


class Arp(NamedTuple):
    """struct ovs_key_arp."""

    sip: int
    tip: int
    op: int
    sha: bytes
    tha: bytes


class Nd(NamedTuple):
    """struct ovs_key_nd."""

    target: bytes
    sll: bytes
    tll: bytes


class NdExtensions(NamedTuple):
    """struct ovs_key_nd_extensions (padded to 8 bytes)."""

    reserved: int
    options_type: int


class CtTupleIpv4(NamedTuple):
    """struct ovs_key_ct_tuple_ipv4 (padded to 16 bytes)."""

    src: int
    dst: int
    src_port: int
    dst_port: int
    proto: int


class CtTupleIpv6(NamedTuple):
    """struct ovs_key_ct_tuple_ipv6 (padded to 40 bytes)."""

    src: bytes
    dst: bytes
    src_port: int
    dst_port: int
    proto: int


class NshBase(NamedTuple):
    """struct ovs_nsh_key_base."""

    flags: int
    ttl: int
    mdtype: int
    np: int
    path_hdr: int


@dataclass(slots=True)
class Tunnel:
    """OVS_KEY_ATTR_TUNNEL: the nested ``OVS_TUNNEL_KEY_ATTR_*`` attributes.

    ``None`` (or ``False`` for flags) means the attribute is absent.  In a
    mask, values are masks and a flag set to True means "this flag is
    matched".  ``tun_id`` present is what Open vSwitch's text calls the
    ``key`` flag.
    """

    tun_id: int | None = None
    ipv4_src: int | None = None
    ipv4_dst: int | None = None
    ipv6_src: bytes | None = None
    ipv6_dst: bytes | None = None
    tos: int | None = None
    ttl: int | None = None
    df: bool = False
    csum: bool = False
    tp_src: int | None = None
    tp_dst: int | None = None
    oam: bool = False
    geneve: bytes | None = None  # raw Geneve option TLVs
    vxlan_gbp: int | None = None  # OVS_VXLAN_EXT_GBP inside VXLAN_OPTS
    erspan: bytes | None = None  # raw struct erspan_metadata
    gtpu: bytes | None = None  # userspace datapath only
    ipv4_info_bridge: bool = False
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True)
class Nsh:
    """OVS_KEY_ATTR_NSH: nested ``OVS_NSH_KEY_ATTR_*``."""

    base: NshBase | None = None
    md1: tuple[int, int, int, int] | None = None
    md2: bytes | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


class FlowKey(dict[int, Any]):
    """An ordered ``{KeyAttr: value}`` mapping: a flow key, or a flow mask.

    The typed properties cover what the router and tools read most; any
    attribute is reachable by ``key[KeyAttr.X]``.
    """

    __slots__ = ()

    @property
    def in_port(self) -> int | None:
        return self.get(KeyAttr.IN_PORT)

    @property
    def eth(self) -> Eth | None:
        return self.get(KeyAttr.ETHERNET)

    @property
    def eth_type(self) -> int | None:
        return self.get(KeyAttr.ETHERTYPE)

    @property
    def tunnel(self) -> Tunnel | None:
        return self.get(KeyAttr.TUNNEL)

    def __repr__(self) -> str:
        items = ", ".join(f"{_attr_name(k)}: {v!r}" for k, v in self.items())
        return f"FlowKey({{{items}}})"


def _attr_name(attr_type: int) -> str:
    try:
        return f"KeyAttr.{KeyAttr(attr_type).name}"
    except ValueError:
        return str(attr_type)


# --- the specs ---------------------------------------------------------------------

# How a field's text is read: the text layer maps each syntax to its reader.
# "x8" is read as "u8" and written in hex.
SYNTAXES = frozenset(("u8", "x8", "u16", "u32", "u64", "ipv4", "ipv6", "mac", "frag", "label"))

# How an attribute's payload is laid out, as the kernel's ovs_key_lens says.
FIXED = "fixed"  # a struct of `KeySpec.fmt`
NESTED = "nested"  # attributes inside
VARIABLE = "variable"  # a length of its own (MPLS: a stack of labels)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field of ``name(field=value[/mask],...)``: its text, its value field, its syntax."""

    text: str
    attr: str
    syntax: str
    aliases: tuple[str, ...] = ()  # other names the parser also takes


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One ``OVS_KEY_ATTR_*``; see the module notes."""

    kind: KeyAttr
    name: str  # in the text: ``name(...)``
    value: Any  # int, bytes, a NamedTuple, tuple (MPLS), Tunnel, Nsh or FlowKey (encap)
    layout: str = FIXED
    fmt: str = ""  # struct format of a fixed payload, byte order first
    fields: tuple[FieldSpec, ...] = ()  # of a NamedTuple value
    syntax: str = ""  # of a single-number value written ``name(value[/mask])``
    maskable: bool = True  # whether the text may give a ``/mask``
    kernel: bool = True  # False for what only Open vSwitch's userspace datapath knows

    @property
    def size(self) -> int:
        """The payload's size; -1 for a nested or variable one."""
        return struct.calcsize(self.fmt) if self.layout == FIXED else -1

    @property
    def zero(self) -> Any:
        """The all-zero mask: the attribute wildcarded."""
        return self._make(struct.unpack(self.fmt, bytes(self.size)))

    @property
    def full(self) -> Any:
        """The all-ones mask: every bit matched."""
        return self._make(struct.unpack(self.fmt, b"\xff" * self.size))

    def _make(self, values: tuple[Any, ...]) -> Any:
        if self.layout != FIXED:
            raise ValueError(f"{self.name}: masks of a {self.layout} attribute have no fixed value")
        return self.value._make(values) if _is_struct(self.value) else values[0]


def _is_struct(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, tuple) and hasattr(value, "_fields")


def _f(*specs: str) -> tuple[FieldSpec, ...]:
    """Fields written as "text:attr:syntax" (attr omitted when it is the text)."""
    out = []
    for spec in specs:
        text, attr, syntax = spec.split(":")
        out.append(FieldSpec(text, attr or text, syntax))
    return tuple(out)


_PORT_FIELDS = _f("src::u16", "dst::u16")
_ICMP_FIELDS = _f("type::u8", "code::u8")

_SPECS = (
    KeySpec(KeyAttr.ENCAP, "encap", FlowKey, NESTED),
    KeySpec(KeyAttr.PRIORITY, "skb_priority", int, fmt="=I", syntax="u32"),
    KeySpec(KeyAttr.IN_PORT, "in_port", int, fmt="=I", syntax="u32"),
    KeySpec(KeyAttr.ETHERNET, "eth", Eth, fmt="=6s6s", fields=_f("src::mac", "dst::mac")),
    KeySpec(KeyAttr.VLAN, "vlan", int, fmt="!H"),
    KeySpec(KeyAttr.ETHERTYPE, "eth_type", int, fmt="!H", syntax="u16"),
    KeySpec(
        KeyAttr.IPV4,
        "ipv4",
        Ipv4,
        fmt="!IIBBBB",
        fields=_f("src::ipv4", "dst::ipv4", "proto::u8", "tos::u8", "ttl::u8", "frag::frag"),
    ),
    KeySpec(
        KeyAttr.IPV6,
        "ipv6",
        Ipv6,
        fmt="!16s16sIBBBB",
        fields=_f(
            "src::ipv6",
            "dst::ipv6",
            "label::label",
            "proto::u8",
            "tclass::u8",
            "hlimit::u8",
            "frag::frag",
        ),
    ),
    KeySpec(KeyAttr.TCP, "tcp", Ports, fmt="!HH", fields=_PORT_FIELDS),
    KeySpec(KeyAttr.UDP, "udp", Ports, fmt="!HH", fields=_PORT_FIELDS),
    KeySpec(KeyAttr.ICMP, "icmp", Icmp, fmt="=BB", fields=_ICMP_FIELDS),
    KeySpec(KeyAttr.ICMPV6, "icmpv6", Icmp, fmt="=BB", fields=_ICMP_FIELDS),
    # sizeof(struct ovs_key_arp) is 24
    KeySpec(
        KeyAttr.ARP,
        "arp",
        Arp,
        fmt="!IIH6s6s2x",
        fields=_f("sip::ipv4", "tip::ipv4", "op::u16", "sha::mac", "tha::mac"),
    ),
    KeySpec(
        KeyAttr.ND, "nd", Nd, fmt="=16s6s6s", fields=_f("target::ipv6", "sll::mac", "tll::mac")
    ),
    KeySpec(KeyAttr.SKB_MARK, "skb_mark", int, fmt="=I", syntax="u32"),
    KeySpec(KeyAttr.TUNNEL, "tunnel", Tunnel, NESTED),
    KeySpec(KeyAttr.SCTP, "sctp", Ports, fmt="!HH", fields=_PORT_FIELDS),
    KeySpec(KeyAttr.TCP_FLAGS, "tcp_flags", int, fmt="!H"),
    KeySpec(KeyAttr.DP_HASH, "dp_hash", int, fmt="=I", syntax="u32"),
    KeySpec(KeyAttr.RECIRC_ID, "recirc_id", int, fmt="=I", syntax="u32", maskable=False),
    KeySpec(KeyAttr.MPLS, "mpls", tuple, VARIABLE),
    KeySpec(KeyAttr.CT_STATE, "ct_state", int, fmt="=I"),
    KeySpec(KeyAttr.CT_ZONE, "ct_zone", int, fmt="=H", syntax="u16"),
    KeySpec(KeyAttr.CT_MARK, "ct_mark", int, fmt="=I", syntax="u32"),
    KeySpec(KeyAttr.CT_LABELS, "ct_label", bytes, fmt="=16s"),
    KeySpec(
        KeyAttr.CT_ORIG_TUPLE_IPV4,
        "ct_tuple4",
        CtTupleIpv4,
        fmt="!IIHHB3x",
        fields=_f(
            "src::ipv4", "dst::ipv4", "proto::u8", "tp_src:src_port:u16", "tp_dst:dst_port:u16"
        ),
    ),
    KeySpec(
        KeyAttr.CT_ORIG_TUPLE_IPV6,
        "ct_tuple6",
        CtTupleIpv6,
        fmt="!16s16sHHB3x",
        fields=(
            *_f("src::ipv6", "dst::ipv6", "proto::u8"),
            FieldSpec("tp_src", "src_port", "u16", aliases=("src_port",)),
            FieldSpec("tp_dst", "dst_port", "u16", aliases=("dst_port",)),
        ),
    ),
    KeySpec(KeyAttr.NSH, "nsh", Nsh, NESTED),
    KeySpec(KeyAttr.PACKET_TYPE, "packet_type", int, fmt="!I"),
    KeySpec(
        KeyAttr.ND_EXTENSIONS,
        "nd_ext",
        NdExtensions,
        fmt="!IB3x",
        fields=_f("nd_reserved:reserved:u32", "nd_options_type:options_type:u8"),
        kernel=False,
    ),
    KeySpec(KeyAttr.IPV6_EXTHDRS, "ipv6_exthdrs", int, fmt="=H", syntax="u16"),
)

KEY_SPECS: dict[int, KeySpec] = {int(s.kind): s for s in _SPECS}
"""Every key attribute odpctl knows, by number."""


# --- tunnel options ------------------------------------------------------------------

FLAG = ""  # the fmt of a flag: its presence is the information
BLOB = "*"  # the fmt of raw bytes of any length


@dataclass(frozen=True, slots=True)
class TunnelOpt:
    """One ``OVS_TUNNEL_KEY_ATTR_*``: the `Tunnel` field it fills and how.

    ``fmt`` is the payload's struct format, `FLAG` or `BLOB`; ``text`` the
    field's name in ``tunnel(...)`` and ``syntax`` how its value is read
    there (flags go in ``flags(...)``, options have syntaxes of their own:
    both have none).  An option whose bytes are a small struct has
    ``fields`` laid out as ``fields_fmt`` says, and reads and writes as
    ``text(field=value,...)`` (bytes of another length go raw, ``key<N>(..)``).
    ``nested`` is the one extension a nested attribute (VXLAN_OPTS) carries;
    ``kernel`` False for what only userspace knows.
    """

    kind: TunnelKeyAttr
    field: str
    fmt: str
    text: str = ""
    syntax: str = ""
    nested: int | None = None
    kernel: bool = True
    fields: tuple[FieldSpec, ...] = ()
    fields_fmt: str = ""  # struct format of the option's bytes, when it has fields

    @property
    def size(self) -> int:
        """The payload's size (0 for a flag); -1 for raw bytes."""
        if self.fmt == BLOB:
            return -1
        return struct.calcsize(self.fmt) if self.fmt else 0

    @property
    def full(self) -> Any:
        """The mask that matches every bit (True for a flag; None for raw bytes)."""
        if self.fmt == FLAG:
            return True
        if self.fmt == BLOB:
            return None
        (value,) = struct.unpack(self.fmt, b"\xff" * self.size)
        return value


# In Open vSwitch's order (tun_key_to_attr), which the encoder follows.
TUNNEL_OPTS: tuple[TunnelOpt, ...] = (
    TunnelOpt(TunnelKeyAttr.ID, "tun_id", "!Q", "tun_id", "u64"),
    TunnelOpt(TunnelKeyAttr.IPV4_SRC, "ipv4_src", "!I", "src", "ipv4"),
    TunnelOpt(TunnelKeyAttr.IPV4_DST, "ipv4_dst", "!I", "dst", "ipv4"),
    TunnelOpt(TunnelKeyAttr.IPV6_SRC, "ipv6_src", "=16s", "ipv6_src", "ipv6"),
    TunnelOpt(TunnelKeyAttr.IPV6_DST, "ipv6_dst", "=16s", "ipv6_dst", "ipv6"),
    TunnelOpt(TunnelKeyAttr.TOS, "tos", "=B", "tos", "u8"),
    TunnelOpt(TunnelKeyAttr.TTL, "ttl", "=B", "ttl", "u8"),
    TunnelOpt(TunnelKeyAttr.DONT_FRAGMENT, "df", FLAG),
    TunnelOpt(TunnelKeyAttr.CSUM, "csum", FLAG),
    TunnelOpt(TunnelKeyAttr.TP_SRC, "tp_src", "!H", "tp_src", "u16"),
    TunnelOpt(TunnelKeyAttr.TP_DST, "tp_dst", "!H", "tp_dst", "u16"),
    TunnelOpt(TunnelKeyAttr.OAM, "oam", FLAG),
    # VXLAN_OPTS nests the GBP extension: 16-bit group id, 8 bits of flags above it
    TunnelOpt(TunnelKeyAttr.VXLAN_OPTS, "vxlan_gbp", "=I", "vxlan", nested=VxlanExt.GBP),
    TunnelOpt(TunnelKeyAttr.GENEVE_OPTS, "geneve", BLOB, "geneve"),
    TunnelOpt(TunnelKeyAttr.ERSPAN_OPTS, "erspan", BLOB, "erspan"),
    # struct gtpu_metadata
    TunnelOpt(
        TunnelKeyAttr.GTPU_OPTS,
        "gtpu",
        BLOB,
        "gtpu",
        kernel=False,
        fields=_f("flags::x8", "msgtype::u8"),
        fields_fmt="!BB",
    ),
    TunnelOpt(TunnelKeyAttr.IPV4_INFO_BRIDGE, "ipv4_info_bridge", FLAG),
)

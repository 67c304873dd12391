"""Every consumer of the key spec agrees with it, for every attribute.

The binary codec, the text parser and formatter, completion and the userspace
datapath's key parser each take what they need from `odpctl.odp.keyspec`;
these tests hold each of them to it, attribute by attribute, so that an entry
added there is an attribute everywhere (or a test says where it is not).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest

from odpctl.datapath import keyparse
from odpctl.odp.keys import KEY_TYPES, FlowKey, Tunnel, decode_key, decode_tunnel, encode_key
from odpctl.odp.keyspec import (
    BLOB,
    FIXED,
    FLAG,
    KEY_SPECS,
    SYNTAXES,
    TUNNEL_OPTS,
    KeySpec,
    TunnelOpt,
)
from odpctl.odp.text.keys import KEY_NAMES, format_key, mask_is_full, parse_key
from odpctl.odp.text.scanner import Scanner
from odpctl.odp.text.tunnel import format_tunnel, parse_tunnel
from odpctl.odp.text.vocabulary import flow_fields
from odpctl.odp.uapi import KeyAttr, TunnelKeyAttr

FIXED_SPECS = [s for s in KEY_SPECS.values() if s.layout == FIXED]
FIELD_SPECS = [s for s in KEY_SPECS.values() if s.fields]

# A value, its text, for each field syntax (none of them all zeros or all ones).
SAMPLES: dict[str, tuple[Any, str]] = {
    "u8": (7, "7"),
    "x8": (0x30, "0x30"),
    "u16": (0x1234, "0x1234"),
    "u32": (0x12345678, "0x12345678"),
    "u64": (0x123456789A, "0x123456789a"),
    "ipv4": (0x0A010203, "10.1.2.3"),
    "ipv6": (socket.inet_pton(socket.AF_INET6, "2001:db8::1"), "2001:db8::1"),
    "mac": (bytes.fromhex("020000000001"), "02:00:00:00:00:01"),
    "frag": (1, "first"),
    "label": (0x12345, "0x12345"),
}


def _ids(spec: KeySpec | TunnelOpt) -> str:
    return spec.name if isinstance(spec, KeySpec) else spec.field


def test_the_spec_covers_every_attribute_once() -> None:
    # TUNNEL_INFO is the kernel's own, never on the wire
    assert set(KEY_SPECS) == {int(k) for k in set(KeyAttr) - {KeyAttr.TUNNEL_INFO}}
    assert len({s.name for s in KEY_SPECS.values()}) == len(KEY_SPECS)
    assert {o.kind for o in TUNNEL_OPTS} == set(TunnelKeyAttr) - {TunnelKeyAttr.PAD}
    for spec in KEY_SPECS.values():
        assert {f.syntax for f in spec.fields} <= SYNTAXES
        assert spec.syntax == "" or spec.syntax in SYNTAXES
        if spec.fields:
            # every value field has a text (which may come in another order)
            assert sorted(f.attr for f in spec.fields) == sorted(spec.value._fields)


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=_ids)
def test_the_codec_reads_and_writes_the_spec_s_struct(spec: KeySpec) -> None:
    assert KEY_TYPES[spec.kind] is spec.value
    for value in (spec.zero, spec.full):
        data = encode_key(FlowKey({spec.kind: value}))
        assert struct.unpack_from("=HH", data) == (4 + spec.size, spec.kind)
        assert len(data) == 4 + spec.size + (-spec.size & 3)
        assert data[4 : 4 + spec.size] == struct.pack(
            spec.fmt, *(value if isinstance(value, tuple) else (value,))
        )
        assert decode_key(data) == {spec.kind: value}


@pytest.mark.parametrize("spec", list(KEY_SPECS.values()), ids=_ids)
def test_the_text_names_it_as_the_spec_does(spec: KeySpec) -> None:
    assert KEY_NAMES[spec.kind] == spec.name


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=_ids)
def test_the_text_s_full_mask_is_the_spec_s(spec: KeySpec) -> None:
    # A plain set() (mask None) is what a full mask means to the parser.
    value = spec.full
    assert mask_is_full(spec.kind, value, spec.full)
    assert not mask_is_full(spec.kind, value, spec.zero)


@pytest.mark.parametrize("spec", FIELD_SPECS, ids=_ids)
def test_the_parser_reads_each_field_as_the_spec_says(spec: KeySpec) -> None:
    key, mask = parse_key(f"{spec.name}()")
    assert key[spec.kind] == spec.zero and mask[spec.kind] == spec.zero
    for field in spec.fields:
        value, text = SAMPLES[field.syntax]
        for name in (field.text, *field.aliases):
            key, mask = parse_key(f"{spec.name}({name}={text})")
            assert key[spec.kind] == spec.zero._replace(**{field.attr: value})
            # the flow label is 20 bits in a 32-bit field: its text's full mask is 20 ones
            ones = 0xFFFFF if field.syntax == "label" else getattr(spec.full, field.attr)
            assert mask[spec.kind] == spec.zero._replace(**{field.attr: ones})


@pytest.mark.parametrize("spec", FIELD_SPECS, ids=_ids)
def test_the_formatter_writes_what_the_parser_reads(spec: KeySpec) -> None:
    value = spec.value(**{f.attr: SAMPLES[f.syntax][0] for f in spec.fields})
    text = format_key(FlowKey({spec.kind: value}))
    assert text.startswith(f"{spec.name}(")
    key, _ = parse_key(text)
    assert key[spec.kind] == value


@pytest.mark.parametrize("spec", [s for s in KEY_SPECS.values() if s.syntax], ids=_ids)
def test_single_numbers_read_as_the_spec_says(spec: KeySpec) -> None:
    value, text = SAMPLES[spec.syntax]
    if spec.size < struct.calcsize(
        "=" + {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}.get(spec.syntax, "I")
    ):
        pytest.fail(f"{spec.name}: syntax {spec.syntax} wider than its {spec.size} bytes")
    key, mask = parse_key(f"{spec.name}({text})")
    assert key[spec.kind] == value and mask[spec.kind] == spec.full
    assert parse_key(format_key(key))[0] == key


def test_completion_offers_the_spec_s_names_and_fields() -> None:
    attrs, fields = flow_fields()
    assert attrs == sorted(s.name for s in KEY_SPECS.values())
    for spec in FIELD_SPECS:
        assert fields[spec.name] == [f.text for f in spec.fields]
    assert fields["tunnel"] == [o.text for o in TUNNEL_OPTS if o.syntax]


# The kernel's own tables (net/openvswitch/flow_netlink.c, ovs_key_lens and
# ovs_tunnel_key_lens: sizeof of each uAPI struct, padding included), written out
# here so that the spec is held to the kernel rather than to itself.
N, V = keyparse.NESTED, keyparse.VARIABLE
KERNEL_KEY_LENS = {
    "ENCAP": N, "PRIORITY": 4, "IN_PORT": 4, "ETHERNET": 12, "VLAN": 2, "ETHERTYPE": 2,
    "IPV4": 12, "IPV6": 40, "TCP": 4, "UDP": 4, "ICMP": 2, "ICMPV6": 2, "ARP": 24,
    "ND": 28, "SKB_MARK": 4, "TUNNEL": N, "SCTP": 4, "TCP_FLAGS": 2, "DP_HASH": 4,
    "RECIRC_ID": 4, "MPLS": V, "CT_STATE": 4, "CT_ZONE": 2, "CT_MARK": 4,
    "CT_LABELS": 16, "CT_ORIG_TUPLE_IPV4": 16, "CT_ORIG_TUPLE_IPV6": 40, "NSH": N,
    "PACKET_TYPE": 4, "IPV6_EXTHDRS": 2,
}  # fmt: skip
KERNEL_TUNNEL_LENS = {
    "ID": 8, "IPV4_SRC": 4, "IPV4_DST": 4, "TOS": 1, "TTL": 1, "DONT_FRAGMENT": 0,
    "CSUM": 0, "OAM": 0, "GENEVE_OPTS": V, "TP_SRC": 2, "TP_DST": 2, "VXLAN_OPTS": N,
    "IPV6_SRC": 16, "IPV6_DST": 16, "ERSPAN_OPTS": V, "IPV4_INFO_BRIDGE": 0,
}  # fmt: skip


def test_the_userspace_datapath_takes_the_kernel_s_key_lengths() -> None:
    assert {KeyAttr(k).name: n for k, n in keyparse.KEY_LENS.items()} == KERNEL_KEY_LENS


# --- tunnel options --------------------------------------------------------------


def _sample(opt: TunnelOpt) -> Any:
    if opt.fmt == FLAG:
        return True
    if opt.fmt == BLOB:
        return bytes(range(1, 9))
    if opt.syntax:
        return SAMPLES[opt.syntax][0]
    return 0x123456  # VXLAN GBP: 16-bit id, 8 bits of flags


@pytest.mark.parametrize("opt", TUNNEL_OPTS, ids=_ids)
def test_the_tunnel_codec_follows_the_spec(opt: TunnelOpt) -> None:
    fields: dict[str, Any] = {opt.field: _sample(opt)}
    tunnel = Tunnel(**fields)
    data = encode_key(FlowKey({KeyAttr.TUNNEL: tunnel}))
    inner = data[4:]
    size, kind = struct.unpack_from("=HH", inner)
    assert kind == opt.kind
    if opt.fmt not in (FLAG, BLOB) and opt.nested is None:
        assert size == 4 + opt.size
    assert decode_tunnel(inner) == tunnel
    assert decode_key(data)[KeyAttr.TUNNEL] == tunnel


@pytest.mark.parametrize("opt", [o for o in TUNNEL_OPTS if o.syntax], ids=_ids)
def test_tunnel_fields_read_and_write_as_the_spec_says(opt: TunnelOpt) -> None:
    value, text = SAMPLES[opt.syntax]
    key, mask = parse_tunnel(Scanner(f"{opt.text}={text})"))
    assert getattr(key, opt.field) == value and getattr(mask, opt.field) == opt.full
    one: dict[str, Any] = {opt.field: value}
    tunnel = Tunnel(**one)
    assert parse_tunnel(Scanner(format_tunnel(tunnel, None, False) + ")"))[0] == tunnel


def test_the_userspace_datapath_takes_the_kernel_s_tunnel_lengths() -> None:
    lens = {TunnelKeyAttr(k).name: n for k, n in keyparse.TUNNEL_LENS.items()}
    assert lens == KERNEL_TUNNEL_LENS


STRUCT_OPTS = [o for o in TUNNEL_OPTS if o.fields]


@pytest.mark.parametrize("opt", STRUCT_OPTS, ids=_ids)
def test_struct_options_read_and_write_their_fields(opt: TunnelOpt) -> None:
    layout = struct.Struct(opt.fields_fmt)
    values = [SAMPLES[f.syntax][0] for f in opt.fields]
    text = ",".join(f"{f.text}={SAMPLES[f.syntax][1]}" for f in opt.fields)
    key, mask = parse_tunnel(Scanner(f"{opt.text}({text}))"))
    assert getattr(key, opt.field) == layout.pack(*values)
    assert getattr(mask, opt.field) == b"\xff" * layout.size
    packed: dict[str, Any] = {opt.field: layout.pack(*values)}
    exact = Tunnel(**packed)
    assert format_tunnel(exact, None, False).startswith(f"{opt.text}({text})")
    # A field left out matches anything; bytes of another length go raw.
    first = opt.fields[0]
    _, mask = parse_tunnel(Scanner(f"{opt.text}({first.text}={SAMPLES[first.syntax][1]}))"))
    assert getattr(mask, opt.field)[layout.size - 1] == 0
    longer: dict[str, Any] = {opt.field: bytes(layout.size + 1)}
    odd = Tunnel(**longer)
    assert format_tunnel(odd, None, False).startswith(f"key{int(opt.kind)}(")

"""The xfrm netlink codec: the uAPI structs' layout, round trips, hostile bytes."""

from __future__ import annotations

import contextlib
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.crypto import xfrm
from odpctl.crypto.xfrm import (
    AEAD_GCM,
    Mark,
    Policy,
    SecurityAssociation,
    Selector,
    encode_allocspi,
    encode_sa_id,
)
from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attrs_to_dict

KEY = bytes(range(36))
SA = SecurityAssociation("192.168.77.1", "192.168.77.2", 0xC0DE1234, 0x6F640007, key=KEY)
POLICY = Policy(
    Selector(dst="192.168.77.2", dst_prefix=32, proto=17, dport=6784),
    src="192.168.77.1",
    dst="192.168.77.2",
    reqid=0x6F640007,
    mark=Mark(0x6F640000, 0xFFFF0000),
)


def test_struct_sizes_are_the_kernels() -> None:
    # sizeof() on x86_64 and arm64, as the kernel checks them against nlmsg_len.
    assert xfrm._USERSA_INFO.size == 224
    assert xfrm._USERPOLICY_INFO.size == 168
    assert xfrm._USERPOLICY_ID.size == 64
    assert xfrm._USER_TMPL.size == 64
    assert xfrm._USERSA_ID.size == 24
    assert len(encode_allocspi("10.0.0.2", "10.0.0.1", 1, 0x100, 0xFFFF)) == 232


def test_state_fields_sit_where_the_kernel_reads_them() -> None:
    data = SA.encode()
    # xfrm_id at 56: daddr, then the SPI in network order, then the protocol.
    assert data[56:60] == socket.inet_aton("192.168.77.2")
    assert data[72:76] == bytes.fromhex("c0de1234")
    assert data[76] == 50
    assert data[80:84] == socket.inet_aton("192.168.77.1")  # saddr
    assert struct.unpack_from("=I", data, 208)[0] == 0x6F640007  # reqid
    assert struct.unpack_from("=HBBB", data, 212) == (socket.AF_INET, 0, 0, xfrm.XFRM_STATE_ESN)
    attrs = attrs_to_dict(data, 224)
    aead = attrs[xfrm.XFRMA_ALG_AEAD]
    assert aead[: len(AEAD_GCM)] == AEAD_GCM.encode()
    assert struct.unpack_from("=II", aead, 64) == (36 * 8, 128)
    assert aead[72:] == KEY
    bmp_len, *_, window = struct.unpack_from("=6I", attrs[xfrm.XFRMA_REPLAY_ESN_VAL])
    assert (bmp_len, window) == (32, 1024)
    assert len(attrs[xfrm.XFRMA_REPLAY_ESN_VAL]) == 24 + 4 * 32


def test_state_round_trip_keeps_the_key_out_of_repr() -> None:
    back = SecurityAssociation.decode(SA.encode())
    assert back == SA
    assert KEY.hex() not in repr(back) and repr(KEY) not in repr(back)


def test_allocspi_asks_for_a_larval_state_in_a_range() -> None:
    data = encode_allocspi("10.0.0.2", "10.0.0.1", 9, 0x100, 0x200)
    assert data[56:60] == socket.inet_aton("10.0.0.1") and data[80:84] == socket.inet_aton(
        "10.0.0.2"
    )
    assert data[216] == 0  # no ESN flag without its attribute
    assert struct.unpack_from("=II", data, 224) == (0x100, 0x200)


def test_sa_id_and_policy_id() -> None:
    assert encode_sa_id("10.0.0.1", 0x1234) == (
        socket.inet_aton("10.0.0.1")
        + bytes(12)
        + bytes.fromhex("00001234")
        + struct.pack("=HBx", socket.AF_INET, 50)
    )
    ident = POLICY.encode_id()
    assert ident[:4] == socket.inet_aton("192.168.77.2") and ident[32:34] == b"\x1a\x80"
    assert attrs_to_dict(ident, 64)[xfrm.XFRMA_MARK] == struct.pack("=II", 0x6F640000, 0xFFFF0000)


def test_policy_round_trip() -> None:
    data = POLICY.encode()
    assert data[160] == xfrm.XFRM_POLICY_OUT
    assert Policy.decode(data) == POLICY


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"key": bytes(32)}, "key has"),
        ({"replay_window": 100}, "replay window"),
        ({"replay_window": 0}, "replay window"),
        ({"src": "::1"}, "Expected 4 octets"),
        ({"dst": "not an address"}, "Expected 4 octets"),
    ],
)
def test_nonsense_is_refused_before_the_kernel(bad: dict[str, object], match: str) -> None:
    fields = {"src": "10.0.0.1", "dst": "10.0.0.2", "spi": 0x1000, "reqid": 1, "key": KEY}
    fields.update(bad)
    with pytest.raises(ValueError, match=match):
        SecurityAssociation(**fields).encode()  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_raise_decode_error_only(data: bytes) -> None:
    for decode in (SecurityAssociation.decode, Policy.decode):
        with contextlib.suppress(DecodeError):
            decode(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 223), st.binary(min_size=1, max_size=8))
def test_damaged_messages_raise_decode_error_only(cut: int, junk: bytes) -> None:
    for good, decode in (
        (SA.encode(), SecurityAssociation.decode),
        (POLICY.encode(), Policy.decode),
    ):
        for data in (good[:cut], good[:cut] + junk + good[cut + len(junk) :], good + junk):
            with contextlib.suppress(DecodeError):
                decode(data)

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odpctl.errors import DecodeError, UsageError
from odpctl.netlink import attrs as A

little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="golden bytes are LE")


@little_endian
@pytest.mark.parametrize(
    ("encoded", "golden"),
    [
        (A.attr(1, b"\x01"), b"\x05\x00\x01\x00\x01\x00\x00\x00"),
        (A.attr(2, b"abcd"), b"\x08\x00\x02\x00abcd"),
        (A.attr(3, b""), b"\x04\x00\x03\x00"),
        (A.attr_flag(7), b"\x04\x00\x07\x00"),
        (A.attr_u8(4, 0xAB), b"\x05\x00\x04\x00\xab\x00\x00\x00"),
        (A.attr_u16(5, 0x1234), b"\x06\x00\x05\x00\x34\x12\x00\x00"),
        (A.attr_u32(6, 0x12345678), b"\x08\x00\x06\x00\x78\x56\x34\x12"),
        (A.attr_u64(7, 0x0102030405060708), b"\x0c\x00\x07\x00\x08\x07\x06\x05\x04\x03\x02\x01"),
        (A.attr_be16(8, 0x0800), b"\x06\x00\x08\x00\x08\x00\x00\x00"),
        (A.attr_be32(9, 0x0A000001), b"\x08\x00\x09\x00\x0a\x00\x00\x01"),
        (
            A.attr_be64(0x1234, 0x0102030405060708),
            b"\x0c\x00\x34\x12\x01\x02\x03\x04\x05\x06\x07\x08",
        ),
        (A.attr_str(2, "ovs"), b"\x08\x00\x02\x00ovs\x00"),
        (A.attr_str(2, "ovs-system"), b"\x0f\x00\x02\x00ovs-system\x00\x00"),
        (
            A.nested(1, A.attr_u32(1, 1), A.attr_u8(2, 2)),
            b"\x14\x00\x01\x00"
            + b"\x08\x00\x01\x00\x01\x00\x00\x00"
            + b"\x05\x00\x02\x00\x02\x00\x00\x00",
        ),
    ],
)
def test_golden_encodings(encoded: bytes, golden: bytes) -> None:
    assert encoded == golden


def test_nested_leaves_the_nested_flag_clear() -> None:
    _, type_raw = A._HDR.unpack_from(A.nested(5, A.attr_u32(1, 1)))
    assert type_raw == 5


@pytest.mark.parametrize("value", [0, 1, 0x80, 0xFFFF, 0x1234])
def test_be16_roundtrips_and_is_network_order(value: int) -> None:
    encoded = A.attr_be16(3, value)
    assert encoded[4:6] == value.to_bytes(2, "big")
    assert A.get_be16(encoded[4:6]) == value


@pytest.mark.parametrize(
    ("encode", "decode", "bits"),
    [
        (A.attr_u8, A.get_u8, 8),
        (A.attr_u16, A.get_u16, 16),
        (A.attr_u32, A.get_u32, 32),
        (A.attr_u64, A.get_u64, 64),
        (A.attr_be16, A.get_be16, 16),
        (A.attr_be32, A.get_be32, 32),
        (A.attr_be64, A.get_be64, 64),
    ],
)
def test_integer_roundtrip_limits_and_overflow(
    encode: Callable[[int, int], bytes], decode: Callable[[bytes], int], bits: int
) -> None:
    top = (1 << bits) - 1
    for value in (0, 1, top):
        ((type_, payload),) = list(A.iter_attrs(encode(9, value)))
        assert type_ == 9
        assert decode(payload) == value
    with pytest.raises(UsageError, match="attribute 9"):
        encode(9, top + 1)
    with pytest.raises(UsageError):
        encode(9, -1)


@pytest.mark.parametrize("type_", [-1, 0x10000])
def test_type_out_of_range_is_a_usage_error(type_: int) -> None:
    with pytest.raises(UsageError):
        A.attr(type_, b"x")
    with pytest.raises(UsageError):
        A.attr_be32(type_, 1)


def test_oversized_payload_is_a_usage_error() -> None:
    assert len(A.attr(1, b"x" * A.NLA_MAX_PAYLOAD)) == 0xFFFF + 1  # 65535 + 1 pad byte
    with pytest.raises(UsageError, match="65531"):
        A.attr(1, b"x" * (A.NLA_MAX_PAYLOAD + 1))


def test_iter_attrs_masks_flag_bits_and_keeps_order() -> None:
    data = (
        A._HDR.pack(8, 1 | A.NLA_F_NESTED)
        + b"\x01\x02\x03\x04"
        + A._HDR.pack(5, 2 | A.NLA_F_NET_BYTEORDER)
        + b"\x09\x00\x00\x00"
        + A.attr(1, b"zz")
    )
    assert list(A.iter_attrs(data)) == [(1, b"\x01\x02\x03\x04"), (2, b"\x09"), (1, b"zz")]


def test_iter_attrs_accepts_a_final_attribute_without_padding() -> None:
    data = A.attr_u32(1, 7) + A._HDR.pack(5, 2) + b"\x05"  # 13 bytes, no trailing pad
    assert list(A.iter_attrs(data)) == [(1, (7).to_bytes(4, sys.byteorder)), (2, b"\x05")]


def test_iter_attrs_window() -> None:
    data = b"\xff" * 4 + A.attr_u8(1, 1) + A.attr_u8(2, 2) + b"\xee" * 3
    assert list(A.iter_attrs(data, 4, 12)) == [(1, b"\x01")]
    assert [t for t, _ in A.iter_attrs(data, 4, 20)] == [1, 2]
    assert list(A.iter_attrs(data, 4, 4)) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x00", "offset 0: 2 bytes left"),
        (A.attr_u8(1, 1) + b"\x04\x00\x01", "offset 8: 3 bytes left"),
        (b"\x03\x00\x01\x00", "length 3 below the header size"),
        (b"\x00\x00\x01\x00", "length 0 below the header size"),
        (
            A.attr_u8(1, 1) + b"\x09\x00\x05\x00abcd",
            "type 5 at offset 8: length 9 runs past the end",
        ),
    ],
)
def test_iter_attrs_rejects_malformed_input(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        list(A.iter_attrs(data))
    with pytest.raises(DecodeError, match=message):
        A.attrs_to_dict(data)


def test_iter_attrs_length_is_checked_against_the_window_not_the_buffer() -> None:
    data = A.attr_u32(1, 1) + A.attr_u32(2, 2)
    with pytest.raises(DecodeError, match="past the end at 6"):
        list(A.iter_attrs(data, 0, 6))


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4), (0, 9), (9, None)])
def test_iter_attrs_rejects_bad_bounds(start: int, end: int | None) -> None:
    with pytest.raises(DecodeError, match="outside"):
        list(A.iter_attrs(b"\x04\x00\x01\x00\x00\x00\x00\x00", start, end))


def test_attrs_to_dict_last_wins_and_masks() -> None:
    data = A.attr_u8(1, 1) + A.attr(2 | A.NLA_F_NESTED, b"") + A.attr_u8(1, 3)
    assert A.attrs_to_dict(data) == {1: b"\x03", 2: b""}
    assert A.attrs_to_dict(data, 8, 12) == {2: b""}


@pytest.mark.parametrize(
    "getter", [A.get_u8, A.get_u16, A.get_u32, A.get_u64, A.get_be16, A.get_be32, A.get_be64]
)
@pytest.mark.parametrize("size", [0, 3, 5, 9])
def test_getters_reject_wrong_sizes(getter: Callable[[bytes], int], size: int) -> None:
    sizes: dict[Callable[[bytes], int], int] = {
        A.get_u8: 1,
        A.get_u16: 2,
        A.get_be16: 2,
        A.get_u32: 4,
        A.get_be32: 4,
    }
    expected = sizes.get(getter, 8)
    with pytest.raises(DecodeError, match=f"{size} bytes, expected {expected}"):
        getter(b"\x00" * size)


def test_get_str() -> None:
    assert A.get_str(b"br0\x00") == "br0"
    assert A.get_str(b"br0") == "br0"
    assert A.get_str(b"br0\x00junk\x00") == "br0"
    assert A.get_str(b"") == ""
    assert A.get_str(b"a\xffb\x00") == "a\ufffdb"
    ((_, payload),) = list(A.iter_attrs(A.attr_str(1, "vxlan_sys_4789")))
    assert A.get_str(payload) == "vxlan_sys_4789"


# -- hostile input --------------------------------------------------------


@given(st.binary(max_size=256), st.integers(-4, 260), st.one_of(st.none(), st.integers(-4, 260)))
def test_iter_attrs_random_bytes_only_raise_decode_error(
    data: bytes, start: int, end: int | None
) -> None:
    try:
        got = list(A.iter_attrs(data, start, end))
    except DecodeError:
        return
    stop = len(data) if end is None else end
    for _, payload in got:
        assert len(payload) <= stop - start


@given(st.binary(max_size=256))
def test_attrs_to_dict_agrees_with_iter_attrs(data: bytes) -> None:
    try:
        expected = dict(A.iter_attrs(data))
    except DecodeError:
        with pytest.raises(DecodeError):
            A.attrs_to_dict(data)
        return
    assert A.attrs_to_dict(data) == expected


attr_lists = st.lists(
    st.tuples(st.integers(0, A.NLA_TYPE_MASK), st.binary(max_size=40)), max_size=12
)


@given(attr_lists)
def test_encode_then_iterate_roundtrips(items: list[tuple[int, bytes]]) -> None:
    data = b"".join(A.attr(t, p) for t, p in items)
    assert len(data) % 4 == 0
    assert list(A.iter_attrs(data)) == items


@given(attr_lists, st.data())
def test_truncating_valid_attributes_raises_decode_error(
    items: list[tuple[int, bytes]], draw: st.DataObject
) -> None:
    data = b"".join(A.attr(t, p) for t, p in items)
    if not data:
        return
    cut = draw.draw(st.integers(0, len(data) - 1))
    try:
        got = list(A.iter_attrs(data[:cut]))
    except DecodeError:
        return
    # Accepted only if the cut falls on an attribute boundary or inside the
    # padding of the last attribute kept.
    assert got == items[: len(got)]
    kept = b"".join(A.attr(t, p) for t, p in got)
    unpadded = len(kept) - (-len(got[-1][1]) % 4) if got else 0
    assert unpadded <= cut <= len(kept)

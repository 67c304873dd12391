from __future__ import annotations

import errno
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odpctl.errors import DecodeError
from odpctl.netlink import message as M
from odpctl.netlink.attrs import attr_str, attr_u32

from .nl_helpers import ack, done

little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="golden bytes are LE")


def test_flag_and_type_values_match_the_uapi() -> None:
    assert (M.NLM_F_REQUEST, M.NLM_F_MULTI, M.NLM_F_ACK, M.NLM_F_ECHO) == (1, 2, 4, 8)
    assert (M.NLM_F_DUMP_INTR, M.NLM_F_DUMP_FILTERED) == (0x10, 0x20)
    assert M.NLM_F_DUMP == 0x300
    assert (M.NLM_F_REPLACE, M.NLM_F_EXCL, M.NLM_F_CREATE, M.NLM_F_APPEND) == (
        0x100,
        0x200,
        0x400,
        0x800,
    )
    assert (M.NLM_F_CAPPED, M.NLM_F_ACK_TLVS) == (0x100, 0x200)
    assert (M.NLMSG_NOOP, M.NLMSG_ERROR, M.NLMSG_DONE, M.NLMSG_OVERRUN) == (1, 2, 3, 4)
    assert M.NLMSG_HDR.size == 16 and M.GENL_HDR.size == 4


@little_endian
def test_encode_message_golden() -> None:
    got = M.encode_message(0x10, M.NLM_F_REQUEST | M.NLM_F_ACK, 7, 0x1234, b"\x03\x02\x00\x00")
    assert got == (
        b"\x14\x00\x00\x00"  # len 20
        b"\x10\x00"  # type
        b"\x05\x00"  # flags
        b"\x07\x00\x00\x00"  # seq
        b"\x34\x12\x00\x00"  # pid
        b"\x03\x02\x00\x00"
    )


def test_encode_message_pads_but_does_not_count_the_padding() -> None:
    got = M.encode_message(20, 0, 1, 2, b"abcde")
    assert len(got) == 24
    assert struct.unpack_from("=I", got)[0] == 21
    assert got.endswith(b"abcde\0\0\0")


def test_decode_several_messages_per_datagram() -> None:
    data = (
        M.encode_message(20, M.NLM_F_MULTI, 5, 9, b"one!")
        + M.encode_message(21, 0, 6, 9, b"xy")
        + M.encode_message(M.NLMSG_DONE, M.NLM_F_MULTI, 5, 9, b"\0\0\0\0")
    )
    msgs = M.decode_messages(data)
    assert msgs == [
        M.Message(20, M.NLM_F_MULTI, 5, 9, b"one!"),
        M.Message(21, 0, 6, 9, b"xy"),
        M.Message(M.NLMSG_DONE, M.NLM_F_MULTI, 5, 9, b"\0\0\0\0"),
    ]


def test_decode_accepts_an_unpadded_last_message() -> None:
    data = M.encode_message(20, 0, 1, 1, b"a")
    assert M.decode_messages(data[:17]) == [M.Message(20, 0, 1, 1, b"a")]
    assert M.decode_messages(b"") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x10\x00\x00", "offset 0: 3 bytes left"),
        (M.encode_message(20, 0, 1, 1, b"") + b"\x00" * 8, "offset 16: 8 bytes left"),
        (struct.pack("=IHHII", 12, 20, 0, 0, 0), "length 12 below the header size"),
        (struct.pack("=IHHII", 40, 20, 0, 0, 0) + b"x" * 8, "length 40 runs past the end"),
    ],
)
def test_decode_rejects_bad_lengths(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        M.decode_messages(data)


@given(st.binary(max_size=200))
def test_decode_random_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        msgs = M.decode_messages(data)
    except DecodeError:
        return
    assert sum(16 + len(m.payload) for m in msgs) <= len(data)


def _req(payload: bytes = b"\x01\x02\x00\x00" + attr_u32(1, 5)) -> M.Message:
    return M.Message(0x20, M.NLM_F_REQUEST | M.NLM_F_ACK, 77, 1234, payload)


def _error_payload(data: bytes) -> tuple[bytes, int]:
    (msg,) = M.decode_messages(data)
    assert msg.type == M.NLMSG_ERROR
    return msg.payload, msg.flags


def test_parse_error_ack() -> None:
    payload, flags = _error_payload(ack(_req()))
    assert M.parse_error(payload, flags) == (0, None)


def test_parse_error_capped_with_text() -> None:
    payload, flags = _error_payload(ack(_req(), errno.EINVAL, "Flow key attribute not present"))
    assert flags == M.NLM_F_CAPPED | M.NLM_F_ACK_TLVS
    assert M.parse_error(payload, flags) == (errno.EINVAL, "Flow key attribute not present")
    # Without the flags the TLVs cannot be located, so only the errno is read.
    assert M.parse_error(payload) == (errno.EINVAL, None)


def test_parse_error_uncapped_skips_the_echoed_request() -> None:
    # The echoed request holds a string attribute of its own that must not be
    # mistaken for the error text.
    req = _req(b"\x01\x02\x00\x00" + attr_str(M.NLMSGERR_ATTR_MSG, "decoy"))
    payload, flags = _error_payload(ack(req, errno.EEXIST, "real reason", flags=0))
    assert not flags & M.NLM_F_CAPPED
    assert M.parse_error(payload, flags) == (errno.EEXIST, "real reason")


def test_parse_error_positive_error_and_short_payloads() -> None:
    assert M.parse_error(struct.pack("=i", errno.ENOENT)) == (errno.ENOENT, None)
    assert M.parse_error(struct.pack("=i", -errno.ENOENT), M.NLM_F_ACK_TLVS) == (errno.ENOENT, None)
    with pytest.raises(DecodeError, match="2 bytes"):
        M.parse_error(b"\0\0")


def test_parse_error_bad_tlvs_raise_decode_error() -> None:
    payload, _ = _error_payload(ack(_req(), errno.EINVAL))
    with pytest.raises(DecodeError):
        M.parse_error(payload + b"\x40\x00\x01\x00", M.NLM_F_CAPPED | M.NLM_F_ACK_TLVS)


def test_parse_done() -> None:
    (msg,) = M.decode_messages(done(_req(), errno.EPERM))
    assert M.parse_done(msg.payload, msg.flags) == (errno.EPERM, None)
    assert M.parse_done(b"") == (0, None)
    text = struct.pack("=i", -errno.EINVAL) + attr_str(M.NLMSGERR_ATTR_MSG, "bad filter")
    assert M.parse_done(text, M.NLM_F_ACK_TLVS) == (errno.EINVAL, "bad filter")

"""The userspace datapath's greeting, and its refusal in place of one, from hostile bytes."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.errors import KernelRefusedError, OdpError
from odpctl.netlink.message import NLMSG_ERROR, NLMSG_HDR, NLMSG_NOOP
from odpctl.netlink.transport import UnixTransport


def _greeted_with(data: bytes) -> UnixTransport:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        theirs.send(data)
        return UnixTransport.from_socket(ours, timeout=1)
    finally:
        theirs.close()


def test_a_refusal_says_why() -> None:
    reason = b"too many connections from uid 65534\0"
    attr = struct.pack("=HH", 4 + len(reason), 1) + reason + b"\0" * (-len(reason) % 4)
    payload = struct.pack("=i", -errno.EUSERS) + NLMSG_HDR.pack(16, NLMSG_NOOP, 0, 0, 0) + attr
    data = NLMSG_HDR.pack(16 + len(payload), NLMSG_ERROR, 0x300, 0, 0) + payload
    with pytest.raises(KernelRefusedError) as refused:  # not taken for a greeting
        _greeted_with(data)
    assert refused.value.errno == errno.EUSERS
    assert "refused the connection: too many connections from uid 65534" in refused.value.message


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([NLMSG_ERROR, NLMSG_NOOP, 3, 0x10]),
    st.integers(0, 0xFFFF),
    st.binary(max_size=80),
)
def test_any_greeting_is_taken_or_refused_with_our_errors(
    type_: int, flags: int, payload: bytes
) -> None:
    data = NLMSG_HDR.pack(16 + len(payload), type_, flags, 0, 77) + payload
    try:
        transport = _greeted_with(data)
    except OdpError:
        return
    assert type_ == NLMSG_NOOP and transport.port_id == 77
    transport.close()

"""Netlink message headers (``struct nlmsghdr``) and error replies.

A datagram holds one or more messages, each starting on a 4-byte boundary.
``Message.payload`` is everything after the 16-byte header, so for generic
netlink it starts with the genlmsghdr (see ``genl.split_genl``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import NLA_HDRLEN, get_str, iter_attrs

# len, type, flags, seq, pid
NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_HDRLEN = NLMSG_HDR.size
# cmd, version, reserved
GENL_HDR = struct.Struct("=BBH")

# Standard flags.
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20

# Modifiers to GET requests.
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH

# Modifiers to NEW requests.
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800

# Modifiers to DELETE requests.
NLM_F_NONREC = 0x100
NLM_F_BULK = 0x200

# Flags of ACK (NLMSG_ERROR) messages.
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
# Types below this are reserved for the control messages above.
NLMSG_MIN_TYPE = 0x10

# Extended-ack TLVs after struct nlmsgerr (enum nlmsgerr_attrs).
NLMSGERR_ATTR_UNUSED = 0
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2
NLMSGERR_ATTR_COOKIE = 3
NLMSGERR_ATTR_POLICY = 4
NLMSGERR_ATTR_MISS_TYPE = 5
NLMSGERR_ATTR_MISS_NEST = 6

_NLMSGERR_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")
# struct nlmsgerr: int error; struct nlmsghdr msg;
_NLMSGERR_LEN = _NLMSGERR_ERROR.size + NLMSG_HDRLEN

# Indexed by len(payload) & 3: zero bytes that pad a message to NLMSG_ALIGNTO.
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


@dataclass(slots=True)
class Message:
    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


def encode_message(type_: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    """One message, padded to 4 bytes so that messages can be concatenated.

    The padding is not counted in nlmsg_len, as the kernel's NLMSG_ALIGN
    stepping expects.
    """
    size = NLMSG_HDRLEN + len(payload)
    return NLMSG_HDR.pack(size, type_, flags, seq, pid) + payload + _PAD[size & 3]


def decode_messages(buf: bytes) -> list[Message]:
    """Every message of one datagram, in order."""
    unpack = NLMSG_HDR.unpack_from
    end = len(buf)
    out: list[Message] = []
    off = 0
    while off < end:
        if end - off < NLMSG_HDRLEN:
            raise DecodeError(
                f"netlink message at offset {off}: {end - off} bytes left, "
                f"header needs {NLMSG_HDRLEN}"
            )
        size, type_, flags, seq, pid = unpack(buf, off)
        if size < NLMSG_HDRLEN or off + size > end:
            raise DecodeError(
                f"netlink message type {type_} at offset {off}: length {size} "
                + (
                    "below the header size"
                    if size < NLMSG_HDRLEN
                    else f"runs past the end of the {end}-byte datagram"
                )
            )
        out.append(Message(type_, flags, seq, pid, buf[off + NLMSG_HDRLEN : off + size]))
        off += (size + 3) & ~3
    return out


def parse_error(payload: bytes, flags: int = 0) -> tuple[int, str | None]:
    """The errno (positive, 0 for an ACK) and extended-ack text of an NLMSG_ERROR.

    ``flags`` are the error message's own nlmsg_flags: they say whether the
    echoed request is cut to its header (NLM_F_CAPPED) and whether TLVs follow
    it (NLM_F_ACK_TLVS); the payload alone cannot tell.  Without them only
    the errno is read.
    """
    if len(payload) < _NLMSGERR_ERROR.size:
        raise DecodeError(f"netlink error message: {len(payload)} bytes, expected at least 4")
    (error,) = _NLMSGERR_ERROR.unpack_from(payload)
    err = -error if error < 0 else error
    if not flags & NLM_F_ACK_TLVS or len(payload) < _NLMSGERR_LEN:
        return err, None
    if flags & NLM_F_CAPPED:
        tlvs = _NLMSGERR_LEN
    else:
        # The whole request is echoed back; its own nlmsg_len says how much.
        (inner_len,) = _U32.unpack_from(payload, _NLMSGERR_ERROR.size)
        tlvs = _NLMSGERR_ERROR.size + ((inner_len + 3) & ~3)
    if tlvs + NLA_HDRLEN > len(payload):
        return err, None
    text = None
    for type_, value in iter_attrs(payload, tlvs):
        if type_ == NLMSGERR_ATTR_MSG:
            text = get_str(value)
    return err, text or None


def parse_done(payload: bytes, flags: int = 0) -> tuple[int, str | None]:
    """The errno (positive, 0 for success) and extended-ack text of an NLMSG_DONE.

    The kernel ends a dump with the dump's own result as an int, followed
    directly by TLVs when NLM_F_ACK_TLVS is set.  An empty payload, as some
    peers send, means success.
    """
    if len(payload) < _NLMSGERR_ERROR.size:
        return 0, None
    (error,) = _NLMSGERR_ERROR.unpack_from(payload)
    err = -error if error < 0 else error
    if not flags & NLM_F_ACK_TLVS:
        return err, None
    text = None
    for type_, value in iter_attrs(payload, _NLMSGERR_ERROR.size):
        if type_ == NLMSGERR_ATTR_MSG:
            text = get_str(value)
    return err, text or None

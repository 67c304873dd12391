"""Requests and replies of the generic-netlink protocol the server speaks.

A `Request` is one netlink message from one client, with its generic
netlink and ``ovs_header`` already split off and its attributes parsed the
way the kernel parses a family's attributes: leniently (parsing stops at
the first malformed attribute, a repeated type keeps its last value,
unknown types are ignored) but against the family's policy (an attribute
of the wrong size is ERANGE, a name without its NUL is EINVAL).

Handlers answer through the request: `Request.reply` for the requester,
`Request.announce` for what the kernel sends with ``ovs_notify`` (to the
requester if it asked with NLM_F_ECHO, and to the family's multicast group).
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from odpctl.datapath.errors import RequestError
from odpctl.netlink.attrs import NLA_TYPE_MASK, attr
from odpctl.netlink.message import (
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_ECHO,
    NLM_F_MULTI,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDR,
    NLMSGERR_ATTR_MSG,
    Message,
    encode_message,
)
from odpctl.odp.header import ODP_HEADER, ODP_HEADER_SIZE

_HDR = struct.Struct("=HH")
_I32 = struct.Struct("=i")

# Attribute policies: the payload an attribute type must have.
U8, U16, U32, U64, FLAG, NESTED, BINARY = "u8", "u16", "u32", "u64", "flag", "nested", "binary"
_FIXED = {U8: 1, U16: 2, U32: 4, U64: 8}


@dataclass(frozen=True)
class Policy:
    """``kind`` is one of the constants above, or "string" (NUL-terminated)."""

    kind: str
    max_len: int = 0  # strings: longest value, NUL excluded
    min_len: int = 0  # binaries


def string(max_len: int) -> Policy:
    return Policy("string", max_len=max_len)


def binary(min_len: int = 0) -> Policy:
    return Policy(BINARY, min_len=min_len)


POLICY_U32 = Policy(U32)
POLICY_U16 = Policy(U16)
POLICY_U64 = Policy(U64)
POLICY_FLAG = Policy(FLAG)
POLICY_NESTED = Policy(NESTED)


def parse_attrs(data: bytes, start: int, policy: dict[int, Policy]) -> dict[int, bytes]:
    """Attributes by type, checked against ``policy``; RequestError on a violation."""
    out: dict[int, bytes] = {}
    off, end = start, len(data)
    while end - off >= 4:
        nla_len, nla_type = _HDR.unpack_from(data, off)
        if nla_len < 4 or nla_len > end - off:
            break  # the kernel ignores what follows a malformed attribute
        kind = nla_type & NLA_TYPE_MASK
        payload = data[off + 4 : off + nla_len]
        rule = policy.get(kind)
        if rule is not None:
            _check(kind, payload, rule)
        out[kind] = payload
        off += (nla_len + 3) & ~3
    return out


def _check(kind: int, payload: bytes, rule: Policy) -> None:
    size = len(payload)
    if rule.kind in _FIXED:
        if size != _FIXED[rule.kind]:
            raise RequestError(
                errno.ERANGE, f"attribute {kind}: {size} bytes, expected {_FIXED[rule.kind]}"
            )
    elif rule.kind == FLAG:
        if size:
            raise RequestError(errno.ERANGE, f"flag attribute {kind} carries {size} bytes")
    elif rule.kind == NESTED:
        if 0 < size < 4:
            raise RequestError(errno.ERANGE, f"nested attribute {kind} of {size} bytes")
    elif rule.kind == BINARY:
        if size < rule.min_len:
            raise RequestError(
                errno.ERANGE, f"attribute {kind}: {size} bytes, at least {rule.min_len} expected"
            )
    # The kernel wants a string's NUL within its first max_len + 1 bytes.
    elif rule.kind == "string" and 0 not in payload[: rule.max_len + 1]:
        raise RequestError(
            errno.EINVAL,
            f"string attribute {kind} is not NUL-terminated within {rule.max_len} characters",
        )


def get_string(payload: bytes) -> str:
    return payload[: payload.index(0)].decode("utf-8", "replace")


def error_message(request: Message, err: int, reason: str = "") -> bytes:
    """NLMSG_ERROR for ``request``: its header echoed (capped), the reason as TLV."""
    flags = NLM_F_CAPPED
    payload = _I32.pack(-err) + NLMSG_HDR.pack(
        NLMSG_HDR.size + len(request.payload),
        request.type,
        request.flags,
        request.seq,
        request.pid,
    )
    if reason:
        flags |= NLM_F_ACK_TLVS
        payload += attr(NLMSGERR_ATTR_MSG, reason.encode() + b"\0")
    return encode_message(NLMSG_ERROR, flags, request.seq, request.pid, payload)


def done_message(request: Message, err: int = 0, reason: str = "") -> bytes:
    """NLMSG_DONE ending a dump, with the dump's result."""
    flags = NLM_F_MULTI
    payload = _I32.pack(-err)
    if err and reason:
        flags |= NLM_F_ACK_TLVS
        payload += attr(NLMSGERR_ATTR_MSG, reason.encode() + b"\0")
    return encode_message(NLMSG_DONE, flags, request.seq, request.pid, payload)


# (group id, message) to deliver to a multicast group; the requester excluded when set.
Notification = tuple[int, bytes, int | None]


@dataclass
class Request:
    """One generic-netlink request of an ODP family, as a handler sees it."""

    msg: Message
    family_id: int
    version: int
    cmd: int
    dp_ifindex: int
    attrs: dict[int, bytes]
    port_id: int  # the requesting client's
    privileged: bool
    replies: list[bytes] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    has_listeners: Callable[[int], bool] = lambda _group: False

    @property
    def echo(self) -> bool:
        return bool(self.msg.flags & NLM_F_ECHO)

    def message(
        self, cmd: int, dp_ifindex: int, attrs: bytes, *, seq: int | None = None, flags: int = 0
    ) -> bytes:
        payload = ODP_HEADER.pack(cmd, self.version, 0, dp_ifindex) + attrs
        return encode_message(
            self.family_id, flags, self.msg.seq if seq is None else seq, self.port_id, payload
        )

    def reply(self, cmd: int, dp_ifindex: int, attrs: bytes) -> None:
        self.replies.append(self.message(cmd, dp_ifindex, attrs))

    def must_notify(self, group: int) -> bool:
        """Whether an announcement would reach anyone (the kernel's ovs_must_notify)."""
        return self.echo or self.has_listeners(group)

    def announce(self, group: int, cmd: int, dp_ifindex: int, attrs: bytes) -> None:
        """What the kernel's ovs_notify does: echo to the requester, tell the group."""
        if self.echo:
            self.replies.append(self.message(cmd, dp_ifindex, attrs))
        # Notifications carry seq 0 on the unix socket (see netlink.transport).
        note = self.message(cmd, dp_ifindex, attrs, seq=0)
        self.notifications.append((group, note, self.port_id if self.echo else None))


# A dump: ODP payloads (cmd, dp_ifindex, attrs) produced lazily.
DumpItems = Iterator[tuple[int, int, bytes]]


def split_request(msg: Message) -> tuple[int, int, int, int]:
    """(cmd, version, dp_ifindex, attrs offset) of an ODP request; EINVAL if too short."""
    if len(msg.payload) < ODP_HEADER_SIZE:
        raise RequestError(
            errno.EINVAL, "message shorter than its generic netlink and ovs_header headers"
        )
    cmd, version, _reserved, dp_ifindex = ODP_HEADER.unpack_from(msg.payload)
    return cmd, version, dp_ifindex, ODP_HEADER_SIZE

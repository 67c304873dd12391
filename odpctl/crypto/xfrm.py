"""IPsec states and policies through the kernel's xfrm netlink (NETLINK_XFRM).

The messages carry the uAPI's fixed structs (`<linux/xfrm.h>`) followed by
attributes.  Only what an ESP transport-mode association between two IPv4
hosts needs is modelled: `SecurityAssociation` (``xfrm_usersa_info`` with an
AEAD, an ESN replay state and its counters) and `Policy`
(``xfrm_userpolicy_info`` with one template and a mark).  Big-endian fields of
the structs (addresses, SPI, ports) are kept as Python values here and turned
into network order in the codec.

`Xfrm` sends them over the project's netlink layer; errors come out as the
library's typed errors, with a hint where the cause is a missing module.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from odpctl.errors import (
    DecodeError,
    KernelRefusedError,
    NotFoundError,
    OdpError,
    error_from_errno,
)
from odpctl.netlink.attrs import attr, attrs_to_dict
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE
from odpctl.netlink.transport import NETLINK_XFRM, KernelTransport

# enum of <linux/xfrm.h>: message types.
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_ALLOCSPI = 0x16
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A

# enum xfrm_attr_type_t
XFRMA_TMPL = 5
XFRMA_ALG_AEAD = 18
XFRMA_MARK = 21
XFRMA_REPLAY_ESN_VAL = 23

XFRM_STATE_ESN = 128
XFRM_MODE_TRANSPORT = 0
XFRM_POLICY_IN = 0
XFRM_POLICY_OUT = 1
XFRM_POLICY_ALLOW = 0
IPPROTO_ESP = 50

AEAD_GCM = "rfc4106(gcm(aes))"
GCM_KEY_LEN = 36  # a 256-bit AES key and the 4-byte salt of RFC 4106
ICV_BITS = 128

# struct xfrm_selector: daddr, saddr, dport, dport_mask, sport, sport_mask (the
# ports big-endian), family, prefixlen_d, prefixlen_s, proto, ifindex, user.
_SELECTOR = "16s16sHHHHHBBB3xiI"
# struct xfrm_id: daddr, spi (big-endian), proto.
_ID = "16sIB3x"
_LIFETIME_CFG = "8Q"
_LIFETIME_CUR = "4Q"
_STATS = "3I"  # replay_window, replay, integrity_failed
# struct xfrm_usersa_info: sel, id, saddr, lft, curlft, stats, seq, reqid,
# family, mode, replay_window, flags (224 bytes on every 64-bit ABI).
_USERSA_INFO = struct.Struct(
    "=" + _SELECTOR + _ID + "16s" + _LIFETIME_CFG + _LIFETIME_CUR + _STATS + "IIHBBB7x"
)
# struct xfrm_usersa_id: daddr, spi, family, proto.
_USERSA_ID = struct.Struct("=16sIHBx")
# struct xfrm_userpolicy_info: sel, lft, curlft, priority, index, dir, action,
# flags, share.
_USERPOLICY_INFO = struct.Struct("=" + _SELECTOR + _LIFETIME_CFG + _LIFETIME_CUR + "IIBBBB4x")
# struct xfrm_userpolicy_id: sel, index, dir.
_USERPOLICY_ID = struct.Struct("=" + _SELECTOR + "IB3x")
# struct xfrm_user_tmpl: id, family, saddr, reqid, mode, share, optional,
# aalgos, ealgos, calgos.
_USER_TMPL = struct.Struct("=" + _ID + "H2x16sIBBBxIII")
_MARK = struct.Struct("=II")
# struct xfrm_algo_aead: alg_name[64], alg_key_len and alg_icv_len in bits.
_ALGO_AEAD = struct.Struct("=64sII")
# struct xfrm_replay_state_esn: bmp_len, oseq, seq, oseq_hi, seq_hi,
# replay_window, then bmp_len 32-bit words of bitmap.
_REPLAY_ESN = struct.Struct("=IIIIII")

_NO_LIMIT = (2**64 - 1,) * 4 + (0,) * 4
_NO_LIFETIME_CUR = (0, 0, 0, 0)
ANY_PORT = 0


def _pack_addr(ip: str) -> bytes:
    """An xfrm_address_t holding IPv4 ``ip``; ValueError if it is not one."""
    return ipaddress.IPv4Address(ip).packed + bytes(12)


def _unpack_addr(raw: bytes) -> str:
    return socket.inet_ntoa(raw[:4])


@dataclass(frozen=True, slots=True)
class Mark:
    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class Selector:
    """The traffic a policy applies to (IPv4; a zero port matches any)."""

    src: str = "0.0.0.0"  # noqa: S104 - a selector matching any address, no bind
    dst: str = "0.0.0.0"  # noqa: S104 - as src
    src_prefix: int = 0
    dst_prefix: int = 0
    proto: int = 0
    sport: int = ANY_PORT
    dport: int = ANY_PORT

    def pack(self) -> tuple[Any, ...]:
        return (
            _pack_addr(self.dst),
            _pack_addr(self.src),
            socket.htons(self.dport),
            0xFFFF if self.dport else 0,
            socket.htons(self.sport),
            0xFFFF if self.sport else 0,
            socket.AF_INET,
            self.dst_prefix,
            self.src_prefix,
            self.proto,
            0,
            0,
        )

    @classmethod
    def unpack(cls, fields: tuple[Any, ...]) -> Selector:
        daddr, saddr, dport, _, sport, _, _, plen_d, plen_s, proto, _, _ = fields
        return cls(
            src=_unpack_addr(saddr),
            dst=_unpack_addr(daddr),
            src_prefix=plen_s,
            dst_prefix=plen_d,
            proto=proto,
            sport=socket.ntohs(sport),
            dport=socket.ntohs(dport),
        )


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    """One direction of ESP in transport mode from ``src`` to ``dst``."""

    src: str
    dst: str
    spi: int
    reqid: int
    key: bytes = field(default=b"", repr=False)  # AES key + salt for rfc4106(gcm(aes))
    replay_window: int = 1024  # packets; a multiple of 32
    # Read back from the kernel (zero in what we send).
    replayed: int = 0
    integrity_failed: int = 0
    seq: int = 0  # highest sequence number received (low 32 bits)
    oseq: int = 0  # last sequence number sent (low 32 bits)
    algorithm: str = AEAD_GCM

    def _info(self, flags: int = XFRM_STATE_ESN) -> bytes:
        selector = Selector(src=self.src, dst=self.dst, src_prefix=32, dst_prefix=32)
        return _USERSA_INFO.pack(
            *selector.pack(),
            _pack_addr(self.dst),
            socket.htonl(self.spi),
            IPPROTO_ESP,
            _pack_addr(self.src),
            *_NO_LIMIT,
            *_NO_LIFETIME_CUR,
            0,
            0,
            0,
            0,
            self.reqid,
            socket.AF_INET,
            XFRM_MODE_TRANSPORT,
            0,  # the window is in the ESN state: the kernel wants 0 here then
            flags,
        )

    def encode(self) -> bytes:
        """The payload of XFRM_MSG_NEWSA / UPDSA."""
        if len(self.key) != GCM_KEY_LEN:
            raise ValueError(f"an {AEAD_GCM} key has {GCM_KEY_LEN} bytes, not {len(self.key)}")
        if self.replay_window % 32 or not 0 < self.replay_window <= 4096:
            raise ValueError(f"replay window {self.replay_window}: a multiple of 32 up to 4096")
        words = self.replay_window // 32
        aead = _ALGO_AEAD.pack(self.algorithm.encode(), len(self.key) * 8, ICV_BITS) + self.key
        esn = _REPLAY_ESN.pack(words, 0, 0, 0, 0, self.replay_window) + bytes(4 * words)
        return self._info() + attr(XFRMA_ALG_AEAD, aead) + attr(XFRMA_REPLAY_ESN_VAL, esn)

    @classmethod
    def decode(cls, payload: bytes) -> SecurityAssociation:
        """A state from a NEWSA message (a GETSA reply or dump); DecodeError if malformed."""
        if len(payload) < _USERSA_INFO.size:
            raise DecodeError(
                f"xfrm state: {len(payload)} bytes, xfrm_usersa_info needs {_USERSA_INFO.size}"
            )
        fields = _USERSA_INFO.unpack_from(payload)
        daddr, spi, _proto, saddr = fields[12:16]
        replay_window, replayed, integrity_failed = fields[28:31]
        reqid = fields[32]
        attrs = attrs_to_dict(payload, _USERSA_INFO.size)
        key, algorithm, window, seq, oseq = b"", "", replay_window, 0, 0
        if XFRMA_ALG_AEAD in attrs:
            raw = attrs[XFRMA_ALG_AEAD]
            if len(raw) < _ALGO_AEAD.size:
                raise DecodeError(f"xfrm state: AEAD attribute of {len(raw)} bytes")
            name, key_bits, _icv = _ALGO_AEAD.unpack_from(raw)
            algorithm = name.split(b"\0", 1)[0].decode(errors="replace")
            key = raw[_ALGO_AEAD.size : _ALGO_AEAD.size + key_bits // 8]
        if XFRMA_REPLAY_ESN_VAL in attrs:
            raw = attrs[XFRMA_REPLAY_ESN_VAL]
            if len(raw) < _REPLAY_ESN.size:
                raise DecodeError(f"xfrm state: ESN attribute of {len(raw)} bytes")
            _, oseq, seq, _, _, window = _REPLAY_ESN.unpack_from(raw)
        return cls(
            src=_unpack_addr(saddr),
            dst=_unpack_addr(daddr),
            spi=socket.ntohl(spi),
            reqid=reqid,
            key=key,
            replay_window=window,
            replayed=replayed,
            integrity_failed=integrity_failed,
            seq=seq,
            oseq=oseq,
            algorithm=algorithm,
        )


def encode_allocspi(src: str, dst: str, reqid: int, low: int, high: int) -> bytes:
    """XFRM_MSG_ALLOCSPI: a larval inbound state from ``src`` to us (``dst``),
    with an SPI the kernel picks in [low, high]."""
    info = SecurityAssociation(src=src, dst=dst, spi=0, reqid=reqid)._info(flags=0)
    return info + struct.pack("=II", low, high)


def encode_sa_id(dst: str, spi: int) -> bytes:
    """XFRM_MSG_DELSA / GETSA: the state with ``spi`` towards ``dst``."""
    return _USERSA_ID.pack(_pack_addr(dst), socket.htonl(spi), socket.AF_INET, IPPROTO_ESP)


@dataclass(frozen=True, slots=True)
class Policy:
    """Traffic matching ``selector`` (and ``mark``) in direction ``dir`` must go
    through ESP from ``src`` to ``dst`` with ``reqid``."""

    selector: Selector
    src: str
    dst: str
    reqid: int
    mark: Mark
    dir: int = XFRM_POLICY_OUT
    priority: int = 0

    def encode(self) -> bytes:
        """The payload of XFRM_MSG_NEWPOLICY / UPDPOLICY."""
        info = _USERPOLICY_INFO.pack(
            *self.selector.pack(),
            *_NO_LIMIT,
            *_NO_LIFETIME_CUR,
            self.priority,
            0,
            self.dir,
            XFRM_POLICY_ALLOW,
            0,
            0,
        )
        tmpl = _USER_TMPL.pack(
            _pack_addr(self.dst),
            0,
            IPPROTO_ESP,
            socket.AF_INET,
            _pack_addr(self.src),
            self.reqid,
            XFRM_MODE_TRANSPORT,
            0,
            0,
            0xFFFFFFFF,
            0xFFFFFFFF,
            0xFFFFFFFF,
        )
        return info + attr(XFRMA_TMPL, tmpl) + self._mark_attr()

    def encode_id(self) -> bytes:
        """The payload of XFRM_MSG_DELPOLICY: found by selector, direction and mark."""
        return _USERPOLICY_ID.pack(*self.selector.pack(), 0, self.dir) + self._mark_attr()

    def _mark_attr(self) -> bytes:
        return attr(XFRMA_MARK, _MARK.pack(self.mark.value, self.mark.mask))

    @classmethod
    def decode(cls, payload: bytes) -> Policy:
        """A policy from a NEWPOLICY message (a dump); DecodeError if malformed."""
        if len(payload) < _USERPOLICY_INFO.size:
            raise DecodeError(
                f"xfrm policy: {len(payload)} bytes, "
                f"xfrm_userpolicy_info needs {_USERPOLICY_INFO.size}"
            )
        fields = _USERPOLICY_INFO.unpack_from(payload)
        selector = Selector.unpack(fields[:12])
        priority, direction = fields[24], fields[26]
        attrs = attrs_to_dict(payload, _USERPOLICY_INFO.size)
        mark = Mark(0, 0)
        if XFRMA_MARK in attrs:
            if len(attrs[XFRMA_MARK]) < _MARK.size:
                raise DecodeError("xfrm policy: short mark attribute")
            mark = Mark(*_MARK.unpack_from(attrs[XFRMA_MARK]))
        src = dst = "0.0.0.0"  # noqa: S104 - no template: no tunnel ends, no bind
        reqid = 0
        if XFRMA_TMPL in attrs:
            if len(attrs[XFRMA_TMPL]) < _USER_TMPL.size:
                raise DecodeError("xfrm policy: short template attribute")
            tmpl = _USER_TMPL.unpack_from(attrs[XFRMA_TMPL])
            dst, src, reqid = _unpack_addr(tmpl[0]), _unpack_addr(tmpl[4]), tmpl[5]
        return cls(
            selector=selector,
            src=src,
            dst=dst,
            reqid=reqid,
            mark=mark,
            dir=direction,
            priority=priority,
        )


# What a refusal means for ESP, by errno, when the request names an ESP state.
_SA_HINTS = {
    errno.EPROTONOSUPPORT: "the kernel has no ESP: modprobe esp4",
    errno.ENOSYS: f"the kernel has no {AEAD_GCM}: modprobe gcm aes",
    errno.ENOENT: f"the kernel has no {AEAD_GCM}: modprobe gcm aes",
}


class Xfrm:
    """A NETLINK_XFRM socket in the caller's network namespace."""

    def __init__(self) -> None:
        try:
            transport = KernelTransport(NETLINK_XFRM)
        except OdpError as exc:
            exc.hint = "the kernel has no xfrm netlink: modprobe xfrm_user"
            raise
        self.conn = NetlinkConnection(transport)

    def __enter__(self) -> Xfrm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _sa_request(self, type_: int, flags: int, payload: bytes, what: str) -> None:
        try:
            self.conn.request(type_, flags, payload, what)
        except OdpError as exc:
            if exc.errno in _SA_HINTS and exc.hint is None:
                raise error_from_errno(
                    exc.errno or errno.EIO, what, _SA_HINTS[exc.errno or 0]
                ) from None
            raise

    def alloc_spi(
        self, src: str, dst: str, reqid: int, low: int = 0x100, high: int = 0xFFFFFFFF
    ) -> int:
        """A fresh SPI for the inbound state from ``src`` to ``dst`` (us)."""
        what = f"allocate an ESP SPI for {src} -> {dst}"
        replies = self.conn.request(
            XFRM_MSG_ALLOCSPI, 0, encode_allocspi(src, dst, reqid, low, high), what
        )
        for reply in replies:
            if reply.type == XFRM_MSG_NEWSA:
                return SecurityAssociation.decode(reply.payload).spi
        raise DecodeError(f"{what}: no state in the reply")

    def add_sa(self, sa: SecurityAssociation, *, update: bool = False) -> None:
        """Install ``sa``; ``update`` fills in the larval state `alloc_spi` made."""
        what = f"install ESP state {sa.spi:#010x} {sa.src} -> {sa.dst}"
        if update:
            self._sa_request(XFRM_MSG_UPDSA, 0, sa.encode(), what)
        else:
            self._sa_request(XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL, sa.encode(), what)

    def get_sa(self, dst: str, spi: int) -> SecurityAssociation:
        replies = self.conn.request(
            XFRM_MSG_GETSA, 0, encode_sa_id(dst, spi), f"read ESP state {spi:#010x} -> {dst}"
        )
        for reply in replies:
            if reply.type == XFRM_MSG_NEWSA:
                return SecurityAssociation.decode(reply.payload)
        raise DecodeError(f"read ESP state {spi:#010x}: no state in the reply")

    def delete_sa(self, dst: str, spi: int) -> None:
        self._delete(
            XFRM_MSG_DELSA, encode_sa_id(dst, spi), f"delete ESP state {spi:#010x} -> {dst}"
        )

    def states(self) -> Iterator[SecurityAssociation]:
        for msg in self.conn.dump(XFRM_MSG_GETSA, b"", "dump xfrm states"):
            if msg.type == XFRM_MSG_NEWSA:
                yield SecurityAssociation.decode(msg.payload)

    def add_policy(self, policy: Policy) -> None:
        """Install ``policy``, replacing one with the same selector, direction and mark."""
        self.conn.request(
            XFRM_MSG_UPDPOLICY,
            NLM_F_CREATE | NLM_F_REPLACE,
            policy.encode(),
            f"install xfrm policy to {policy.dst}",
        )

    def delete_policy(self, policy: Policy) -> None:
        self._delete(XFRM_MSG_DELPOLICY, policy.encode_id(), f"delete xfrm policy to {policy.dst}")

    def _delete(self, type_: int, payload: bytes, what: str) -> None:
        try:
            self.conn.request(type_, 0, payload, what)
        except KernelRefusedError as exc:
            # xfrm says ESRCH for a state or policy that is not there.
            if exc.errno == errno.ESRCH:
                raise NotFoundError(exc.message, errno=exc.errno) from None
            raise

    def policies(self) -> Iterator[Policy]:
        for msg in self.conn.dump(XFRM_MSG_GETPOLICY, b"", "dump xfrm policies"):
            if msg.type == XFRM_MSG_NEWPOLICY:
                yield Policy.decode(msg.payload)

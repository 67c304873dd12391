"""How netlink datagrams move: a kernel netlink socket, or a unix socket.

Everything above this module speaks netlink messages and does not care which
transport carries them.  Two exist:

``KernelTransport``
    An AF_NETLINK socket; the kernel answers.

``UnixTransport``
    An AF_UNIX SOCK_SEQPACKET socket to the userspace datapath
    (``odpctl dp serve``), which serves the very same generic-netlink
    messages.  SEQPACKET keeps datagram boundaries, so each datagram carries
    one or more netlink messages exactly as on a netlink socket.  The wire
    rules that netlink gets from the kernel are spelled out here instead:

    * Greeting: right after accepting a connection the server sends one
      datagram before anything else, a bare 16-byte nlmsghdr of type
      NLMSG_NOOP (flags 0, seq 0) whose nlmsg_pid is the client's port id.
      The client waits for it before sending anything.  A server that
      refuses the connection (too many from one user) sends an NLMSG_ERROR
      with the errno and reason instead, and hangs up.
    * Multicast: ``add_membership(group)`` sends one message of type
      NLMSG_NOOP with NLM_F_REQUEST, seq 0, the client's port id, and a
      4-byte payload holding the group id in host byte order.  No reply.
    * Notifications (multicast deliveries and any other unsolicited message)
      carry nlmsg_seq 0, since there is no out-of-band group information on
      a unix socket.

Socket errors come out as ``OSError`` so that the connection can tell a
receive overrun (ENOBUFS) from the rest; a vanished unix-socket server comes
out as ``DatapathUnavailableError``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from typing import Protocol

from odpctl.errors import DatapathUnavailableError, NetlinkProtocolError, error_from_errno
from odpctl.netlink.message import (
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSG_HDR,
    NLMSG_HDRLEN,
    NLMSG_NOOP,
    encode_message,
    parse_error,
)

NETLINK_ROUTE = 0
NETLINK_XFRM = 6
NETLINK_GENERIC = 16

# <linux/netlink.h>; the socket module lacks most of these.
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_PKTINFO = 3
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
SO_RCVBUFFORCE = 33

# send_many packs messages into datagrams up to this size.  Well under the
# default socket send buffer (net.core.wmem_default, ~208 KiB), which bounds
# a datagram on both netlink and unix sockets.
MAX_DATAGRAM = 64 * 1024

# One datagram's most: see _SocketTransport.__init__.
RECV_BUFSIZE = 256 * 1024

_U32 = struct.Struct("=I")
# struct nl_pktinfo { __u32 group; }
_PKTINFO_SPACE = socket.CMSG_SPACE(_U32.size)
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
_SERVE_HINT = "start one with `odpctl dp serve`"


class Transport(Protocol):
    """What a NetlinkConnection needs from the thing that moves its bytes."""

    port_id: int
    # Multicast group of the datagram last returned by recv()/recv_nowait(),
    # 0 for unicast.  It keeps a notification that happens to carry our own
    # seq (the kernel stamps notifications with the requester's seq) from
    # being taken for a reply.
    last_group: int

    def send(self, data: bytes) -> None: ...

    def send_many(self, datas: list[bytes]) -> None:
        """Send every message, in order, in as few datagrams as possible."""
        ...

    def recv(self) -> bytes:
        """One whole datagram, blocking until there is one."""
        ...

    def recv_nowait(self) -> bytes | None:
        """One whole datagram, or None if none is waiting."""
        ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...

    def add_membership(self, group: int) -> None: ...

    def set_rcvbuf(self, size: int) -> None:
        """Ask for a receive buffer of ``size`` bytes; best effort."""
        ...


class _SocketTransport:
    """The parts both transports share: datagram I/O on one socket."""

    port_id: int
    last_group: int
    max_datagram: int = MAX_DATAGRAM

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.port_id = 0
        self.last_group = 0
        # Every datagram is read in one syscall, straight into this buffer:
        # MSG_TRUNC makes the kernel report the datagram's whole length, so
        # one that did not fit is noticed (and reported) rather than taken
        # for a short one.  Nothing an ODP peer sends comes near the size
        # (a 64 KiB upcall packet with its key and actions is the biggest).
        # Its size also tells netlink how much we can take: the kernel sizes
        # dump datagrams by the largest read length it has seen, up to
        # 32 KiB, so a smaller read would cut dumps into ~4 KiB datagrams and
        # multiply the syscalls.
        self._buf = bytearray(RECV_BUFSIZE)
        self._view = memoryview(self._buf)
        self._pktinfo = False

    def send(self, data: bytes) -> None:
        self._sock.send(data)

    def send_many(self, datas: list[bytes]) -> None:
        limit = self.max_datagram
        chunk: list[bytes] = []
        size = 0
        for data in datas:
            n = len(data)
            if n & 3:
                # Messages in a datagram must start 4-byte aligned.
                data += _PAD[n & 3]
                n = len(data)
            if chunk and size + n > limit:
                self.send(b"".join(chunk))
                chunk.clear()
                size = 0
            chunk.append(data)
            size += n
        if chunk:
            self.send(b"".join(chunk) if len(chunk) > 1 else chunk[0])

    def _read(self, flags: int) -> int:
        """Read one datagram into the buffer; its whole length (more than the
        buffer if it was cut short)."""
        if not self._pktinfo:
            self.last_group = 0
            return self._sock.recv_into(self._buf, 0, flags | socket.MSG_TRUNC)
        size, ancdata, _, _ = self._sock.recvmsg_into(
            (self._buf,), _PKTINFO_SPACE, flags | socket.MSG_TRUNC
        )
        group = 0
        for level, type_, cdata in ancdata:
            if level == SOL_NETLINK and type_ == NETLINK_PKTINFO and len(cdata) >= _U32.size:
                (group,) = _U32.unpack_from(cdata)
        self.last_group = group
        return size

    def _recv(self, flags: int) -> bytes:
        size = self._read(flags)
        if size > RECV_BUFSIZE:
            raise NetlinkProtocolError(
                f"a datagram of {size} bytes was cut to the {RECV_BUFSIZE}-byte receive buffer"
            )
        return self._view[:size].tobytes()

    def recv(self) -> bytes:
        return self._recv(0)

    def recv_nowait(self) -> bytes | None:
        try:
            return self._recv(socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def set_rcvbuf(self, size: int) -> None:
        # SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
        for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, opt, size)
                return
            except OSError:
                continue


class KernelTransport(_SocketTransport):
    """An AF_NETLINK socket with a kernel-assigned port id."""

    def __init__(self, protocol: int = NETLINK_GENERIC) -> None:
        family = getattr(socket, "AF_NETLINK", None)
        if family is None:
            raise DatapathUnavailableError(
                "netlink sockets are not available on this platform",
                errno=errno.EAFNOSUPPORT,
                hint="odpctl needs Linux, or a userspace datapath (`odpctl dp serve`)",
            )
        try:
            sock = socket.socket(family, socket.SOCK_RAW, protocol)
        except OSError as e:
            raise DatapathUnavailableError(
                f"cannot open a netlink socket (protocol {protocol}): {e.strerror}",
                errno=e.errno,
            ) from None
        super().__init__(sock)
        try:
            sock.bind((0, 0))
            self.port_id = sock.getsockname()[0]
        except OSError as e:
            sock.close()
            raise error_from_errno(e.errno or errno.EIO, "bind a netlink socket") from None
        # Error replies then carry the kernel's reason text (EXT_ACK) and
        # echo only the request's header, not all of it (CAP_ACK).  Older
        # kernels lack both; nothing depends on them.
        for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_NETLINK, opt, 1)

    def add_membership(self, group: int) -> None:
        try:
            self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            if not self._pktinfo:
                # The source address only has room for groups 1..32 and
                # generic netlink assigns ids past that, so the group comes
                # from an NETLINK_PKTINFO control message instead.
                self._sock.setsockopt(SOL_NETLINK, NETLINK_PKTINFO, 1)
                self._pktinfo = True
        except OSError as e:
            raise error_from_errno(
                e.errno or errno.EIO, f"join netlink multicast group {group}"
            ) from None


class UnixTransport(_SocketTransport):
    """A SEQPACKET connection to a userspace datapath server (see module doc)."""

    def __init__(self, path: str, *, timeout: float = 5.0) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise DatapathUnavailableError(
                f"no datapath server at {path}: {e.strerror}", errno=e.errno, hint=_SERVE_HINT
            ) from None
        except OSError as e:
            sock.close()
            raise error_from_errno(e.errno or errno.EIO, f"connect to {path}") from None
        super().__init__(sock)
        self.path = path
        self._greet(timeout)

    @classmethod
    def from_socket(cls, sock: socket.socket, *, timeout: float = 5.0) -> UnixTransport:
        """Wrap an already connected SEQPACKET socket (socketpair, inherited fd)."""
        self = cls.__new__(cls)
        _SocketTransport.__init__(self, sock)
        self.path = "<socket>"
        self._greet(timeout)
        return self

    def _greet(self, timeout: float) -> None:
        self._sock.settimeout(timeout)
        try:
            data = self.recv()
        except TimeoutError:
            self._sock.close()
            raise DatapathUnavailableError(
                f"datapath server at {self.path} sent no greeting within {timeout:g} s",
                errno=errno.ETIMEDOUT,
                hint=_SERVE_HINT,
            ) from None
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(None)
        if len(data) < NLMSG_HDRLEN:
            self._sock.close()
            raise NetlinkProtocolError(
                f"datapath server at {self.path}: greeting of {len(data)} bytes, "
                f"expected an nlmsghdr"
            )
        _, type_, flags, _, pid = NLMSG_HDR.unpack_from(data)
        if type_ == NLMSG_ERROR and len(data) >= NLMSG_HDRLEN + 4:
            # Refused (too many connections): said in place of the greeting.
            self._sock.close()
            err, reason = parse_error(data[NLMSG_HDRLEN:], flags)
            what = f"the datapath server at {self.path} refused the connection"
            raise error_from_errno(err or errno.EPROTO, f"{what}: {reason}" if reason else what)
        if type_ != NLMSG_NOOP:
            self._sock.close()
            raise NetlinkProtocolError(
                f"datapath server at {self.path}: greeting has message type {type_}, "
                f"expected NLMSG_NOOP ({NLMSG_NOOP})"
            )
        self.port_id = pid

    def _gone(self) -> DatapathUnavailableError:
        return DatapathUnavailableError(
            f"the datapath server at {self.path} closed the connection", hint=_SERVE_HINT
        )

    def send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except (BrokenPipeError, ConnectionResetError):
            raise self._gone() from None

    def _read(self, flags: int) -> int:
        try:
            size = super()._read(flags)
        except ConnectionResetError:
            raise self._gone() from None
        # SEQPACKET reports end of stream as a zero-length read; the protocol
        # never sends empty datagrams, so zero always means the server left.
        if size == 0:
            raise self._gone()
        return size

    def add_membership(self, group: int) -> None:
        self.send(encode_message(NLMSG_NOOP, NLM_F_REQUEST, 0, self.port_id, _U32.pack(group)))

"""Helpers for the netlink tests: skip markers and a scripted netlink peer.

The peer speaks UnixTransport's protocol over a socketpair, so the whole client
stack (transport, connection, genl) runs unmodified against it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable

import pytest

from odpctl.netlink.attrs import attr_str
from odpctl.netlink.message import (
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDR,
    NLMSG_NOOP,
    NLMSGERR_ATTR_MSG,
    Message,
    decode_messages,
    encode_message,
)

PEER_PORT_ID = 4242

Handler = Callable[["FakePeer", list[Message]], list[bytes]]


def ack(req: Message, err: int = 0, text: str | None = None, flags: int = NLM_F_CAPPED) -> bytes:
    """An NLMSG_ERROR for ``req`` (err is a positive errno, 0 for an ACK)."""
    echoed = NLMSG_HDR.pack(16 + len(req.payload), req.type, req.flags, req.seq, req.pid)
    if not flags & NLM_F_CAPPED:
        echoed += req.payload
    body = struct.pack("=i", -err) + echoed
    if text is not None:
        flags |= NLM_F_ACK_TLVS
        body += attr_str(NLMSGERR_ATTR_MSG, text)
    return encode_message(NLMSG_ERROR, flags, req.seq, req.pid, body)


def reply(req: Message, payload: bytes, *, type_: int | None = None, flags: int = 0) -> bytes:
    return encode_message(req.type if type_ is None else type_, flags, req.seq, req.pid, payload)


def done(req: Message, err: int = 0, flags: int = 0) -> bytes:
    return encode_message(NLMSG_DONE, flags, req.seq, req.pid, struct.pack("=i", -err))


class FakePeer:
    """The server end of a SEQPACKET socketpair speaking UnixTransport's protocol.

    ``handler(peer, messages)`` gets the messages of each datagram the client
    sends and returns the datagrams to send back.
    """

    def __init__(self, handler: Handler, port_id: int = PEER_PORT_ID) -> None:
        self.handler = handler
        self.client, self.server = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Room for big test datagrams (unix sockets cap a datagram at sndbuf).
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.server.send(encode_message(NLMSG_NOOP, 0, 0, port_id, b""))
        self.received: list[Message] = []
        self.datagram_sizes: list[int] = []
        self.errors: list[BaseException] = []
        self.state: dict[str, object] = {}
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while True:
                data = self.server.recv(1 << 20)
                if not data:
                    return
                msgs = decode_messages(data)
                self.datagram_sizes.append(len(msgs))
                self.received.extend(msgs)
                for out in self.handler(self, msgs):
                    self.server.send(out)
        except OSError:
            return
        except BaseException as e:  # surfaced by the fixture
            self.errors.append(e)

    def send(self, data: bytes) -> None:
        self.server.send(data)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self.server.close()
        self.client.close()


def _has_genl() -> bool:
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    except (OSError, AttributeError):
        return False
    s.close()
    return True


needs_genl = pytest.mark.skipif(not _has_genl(), reason="no generic netlink socket on this host")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

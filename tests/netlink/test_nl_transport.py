"""The transports: the unix-socket handshake and errors, datagram batching, kernel sockets."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from odpctl.errors import DatapathUnavailableError, NetlinkProtocolError
from odpctl.netlink.attrs import attr_str
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.genl import (
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    genl_payload,
)
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSG_HDR,
    NLMSG_NOOP,
    Message,
    decode_messages,
    encode_message,
    parse_error,
)
from odpctl.netlink.transport import (
    MAX_DATAGRAM,
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    RECV_BUFSIZE,
    SOL_NETLINK,
    KernelTransport,
    UnixTransport,
)

from .nl_helpers import ack, needs_genl

pytestmark = pytest.mark.timeout(20)


def seqpacket_pair(greeting: bytes | None = None) -> tuple[socket.socket, socket.socket]:
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if greeting is not None:
        server.send(greeting)
    return client, server


def greeting(port_id: int) -> bytes:
    return encode_message(NLMSG_NOOP, 0, 0, port_id, b"")


@pytest.fixture
def pair() -> Iterator[tuple[UnixTransport, socket.socket]]:
    client, server = seqpacket_pair(greeting(99))
    transport = UnixTransport.from_socket(client)
    yield transport, server
    transport.close()
    server.close()


# -- unix transport --------------------------------------------------------


def test_missing_socket_path_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DatapathUnavailableError) as info:
        UnixTransport(str(tmp_path / "nope.sock"))
    assert info.value.errno == errno.ENOENT
    assert "nope.sock" in info.value.message
    assert info.value.hint is not None and "odpctl dp serve" in info.value.hint


def test_refused_connection_is_unavailable(tmp_path: Path) -> None:
    path = str(tmp_path / "dead.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dead.bind(path)  # bound but never listening: connect() is refused
    try:
        with pytest.raises(DatapathUnavailableError) as info:
            UnixTransport(path)
    finally:
        dead.close()
    assert info.value.errno == errno.ECONNREFUSED
    assert "odpctl dp serve" in str(info.value)


def test_connect_by_path_and_handshake(tmp_path: Path) -> None:
    path = str(tmp_path / "dp.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.send(greeting(31337))
            (req,) = decode_messages(conn.recv(65536))
            conn.send(ack(req))
            conn.recv(1)  # until the client leaves

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        transport = UnixTransport(path)
        assert transport.port_id == 31337
        with NetlinkConnection(transport) as conn:
            assert conn.request(0x20, 0, b"", "ping") == []
    finally:
        server.join(5)
        listener.close()
    assert not server.is_alive()


@pytest.mark.parametrize(
    ("hello", "message"),
    [
        (encode_message(NLMSG_ERROR, 0, 0, 5, b""), "message type 2, expected NLMSG_NOOP"),
        (b"\x10\x00\x00\x00\x01\x00\x00\x00", "greeting of 8 bytes"),
    ],
)
def test_bad_greeting_is_a_protocol_error(hello: bytes, message: str) -> None:
    client, server = seqpacket_pair(hello)
    with server, pytest.raises(NetlinkProtocolError, match=message):
        UnixTransport.from_socket(client)
    assert client.fileno() == -1


def test_silent_server_times_out() -> None:
    client, server = seqpacket_pair()
    with server, pytest.raises(DatapathUnavailableError, match=r"no greeting within 0\.2 s"):
        UnixTransport.from_socket(client, timeout=0.2)


def test_server_going_away_is_unavailable(pair: tuple[UnixTransport, socket.socket]) -> None:
    transport, server = pair
    conn = NetlinkConnection(transport)
    server.close()
    with pytest.raises(DatapathUnavailableError, match="closed the connection"):
        conn.request(0x20, 0, b"", "ping")


def test_recv_returns_big_datagrams_whole(pair: tuple[UnixTransport, socket.socket]) -> None:
    transport, server = pair
    assert transport.recv_nowait() is None
    big = encode_message(0x20, 0, 0, 0, bytes(range(256)) * 800)  # ~200 KiB
    server.send(big)
    server.send(b"\x10" + b"\0" * 15)
    assert transport.recv() == big
    assert transport.recv_nowait() == b"\x10" + b"\0" * 15
    assert transport.recv_nowait() is None
    assert transport.last_group == 0


def test_a_datagram_too_big_for_the_buffer_is_reported_not_cut(
    pair: tuple[UnixTransport, socket.socket],
) -> None:
    transport, server = pair
    huge = encode_message(0x20, 0, 0, 0, b"x" * RECV_BUFSIZE)
    server.send(huge)
    server.send(b"\x10" + b"\0" * 15)
    with pytest.raises(NetlinkProtocolError, match=f"{len(huge)} bytes"):
        transport.recv()
    assert transport.recv() == b"\x10" + b"\0" * 15  # the next one is whole


def test_send_many_packs_datagrams_up_to_the_limit(
    pair: tuple[UnixTransport, socket.socket],
) -> None:
    transport, server = pair
    msgs = [encode_message(0x20, 0, i, 99, b"x" * 100) for i in range(3000)]  # 116 bytes each
    # One unaligned message (nlmsg_len 17, no padding) in the middle.
    msgs[1500] = NLMSG_HDR.pack(17, 0x21, 0, 1500, 99) + b"!"
    got: list[Message] = []
    sizes: list[int] = []

    def read() -> None:  # concurrently: 3000 messages exceed the socket buffer
        while len(got) < len(msgs):
            data = server.recv(1 << 20)
            sizes.append(len(data))
            got.extend(decode_messages(data))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    transport.send_many(msgs)
    reader.join(10)
    assert [m.seq for m in got] == list(range(3000))
    assert got[1500].payload == b"!"
    assert max(sizes) <= MAX_DATAGRAM
    assert len(sizes) == -(-sum(sizes) // MAX_DATAGRAM)  # no needlessly small datagrams


def test_unix_add_membership_tells_the_server(pair: tuple[UnixTransport, socket.socket]) -> None:
    transport, server = pair
    conn = NetlinkConnection(transport)
    assert conn.fileno() == transport.fileno() >= 0
    conn.add_membership(7)
    (msg,) = decode_messages(server.recv(100))
    assert (msg.type, msg.flags, msg.seq, msg.pid) == (NLMSG_NOOP, NLM_F_REQUEST, 0, 99)
    assert struct.unpack("=I", msg.payload) == (7,)


# -- kernel transport ------------------------------------------------------


def getfamily(name: str, seq: int, pid: int) -> bytes:
    body = genl_payload(CTRL_CMD_GETFAMILY, 2, attr_str(CTRL_ATTR_FAMILY_NAME, name))
    return encode_message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, pid, body)


@needs_genl
def test_kernel_transport_gets_a_port_id_and_sets_ack_options() -> None:
    a, b = KernelTransport(), KernelTransport()
    try:
        assert a.port_id > 0 and b.port_id > 0 and a.port_id != b.port_id
        sock = socket.socket(fileno=socket.dup(a.fileno()))
        with sock:
            assert sock.getsockname()[0] == a.port_id
            assert sock.getsockopt(SOL_NETLINK, NETLINK_EXT_ACK) == 1
            assert sock.getsockopt(SOL_NETLINK, NETLINK_CAP_ACK) == 1
            before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            a.set_rcvbuf(before * 4)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > before
    finally:
        a.close()
        b.close()


@needs_genl
def test_kernel_handles_every_message_of_one_datagram() -> None:
    t = KernelTransport()
    try:
        names = ["nlctrl", "odpctl-none-1", "nlctrl", "odpctl-none-2"]
        t.send_many([getfamily(n, i + 1, t.port_id) for i, n in enumerate(names)])
        errors: dict[int, int] = {}
        while len(errors) < len(names):
            for m in decode_messages(t.recv()):
                if m.type == NLMSG_ERROR:
                    errors[m.seq] = parse_error(m.payload, m.flags)[0]
        assert errors == {1: 0, 2: errno.ENOENT, 3: 0, 4: errno.ENOENT}
    finally:
        t.close()

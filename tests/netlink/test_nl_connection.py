"""NetlinkConnection against a scripted peer over a SEQPACKET socketpair."""

from __future__ import annotations

import errno
import itertools
import struct
import threading
from collections import deque
from collections.abc import Callable

import pytest

from odpctl.errors import (
    AlreadyExistsError,
    KernelRefusedError,
    NotFoundError,
    OdpError,
    PermissionDeniedError,
)
from odpctl.netlink.connection import DumpInterrupted, NetlinkConnection, ReceiveOverrun
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_ECHO,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    Message,
    encode_message,
)

from .nl_helpers import FakePeer, Handler, ack, done, reply

pytestmark = pytest.mark.timeout(20)

MakePeer = Callable[[Handler], tuple[FakePeer, NetlinkConnection]]
FAMILY = 0x30


def acker(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
    return [ack(m) for m in msgs]


def test_request_sends_request_ack_and_returns_on_ack(peer: MakePeer) -> None:
    p, conn = peer(acker)
    assert conn.port_id == 4242
    assert conn.request(FAMILY, NLM_F_CREATE, b"\x01\x00\x00\x00", "add thing") == []
    (sent,) = p.received
    assert sent.type == FAMILY
    assert sent.flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
    assert sent.seq != 0
    assert sent.pid == 4242
    assert sent.payload == b"\x01\x00\x00\x00"


def test_request_returns_replies_before_the_ack(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        (m,) = msgs
        # Reply and ACK in separate datagrams, then in one.
        return [reply(m, b"first"), reply(m, b"second") + ack(m)]

    _, conn = peer(handler)
    got = conn.request(FAMILY, NLM_F_ECHO, b"", "get thing")
    assert [m.payload for m in got] == [b"first", b"second"]


def test_sequence_numbers_increase(peer: MakePeer) -> None:
    p, conn = peer(acker)
    for _ in range(3):
        conn.request(FAMILY, 0, b"", "x")
    seqs = [m.seq for m in p.received]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]


def test_sequence_numbers_wrap_past_zero_and_those_in_flight() -> None:
    conn = NetlinkConnection(OverrunTransport())
    conn._seqs = itertools.count(0xFFFFFFFE)
    conn._inbox[1] = deque()  # still waiting for its replies
    assert [seq for seq, _ in conn._open_many(3)] == [0xFFFFFFFE, 0xFFFFFFFF, 2]


def test_threads_never_share_a_sequence_number() -> None:
    conn = NetlinkConnection(OverrunTransport())
    got: list[list[int]] = []

    def take() -> None:
        got.append([seq for _ in range(200) for seq, _ in conn._open_many(10)])

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    seqs = [seq for chunk in got for seq in chunk]
    assert len(seqs) == len(set(seqs)) == 4 * 2000
    assert set(conn._inbox) == set(seqs)


@pytest.mark.parametrize(
    ("err", "cls"),
    [
        (errno.ENOENT, NotFoundError),
        (errno.EEXIST, AlreadyExistsError),
        (errno.EPERM, PermissionDeniedError),
        (errno.EINVAL, KernelRefusedError),
    ],
)
def test_request_error_becomes_typed_exception(
    peer: MakePeer, err: int, cls: type[OdpError]
) -> None:
    _, conn = peer(lambda _peer, msgs: [ack(m, err) for m in msgs])
    with pytest.raises(cls) as info:
        conn.request(FAMILY, 0, b"", "add flow")
    assert info.value.errno == err
    assert info.value.message.startswith("add flow: ")
    assert errno.errorcode[err] in info.value.message


def test_request_error_carries_extended_ack_text(peer: MakePeer) -> None:
    _, conn = peer(
        lambda _peer, msgs: [ack(m, errno.EINVAL, "Flow actions may not be safe") for m in msgs]
    )
    with pytest.raises(KernelRefusedError) as info:
        conn.request(FAMILY, 0, b"", "add flow")
    assert str(info.value) == "add flow: Invalid argument (EINVAL): Flow actions may not be safe"


def test_connection_is_usable_after_an_error(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        return [ack(m, errno.ENOENT if m.payload == b"bad!" else 0) for m in msgs]

    _, conn = peer(handler)
    with pytest.raises(NotFoundError):
        conn.request(FAMILY, 0, b"bad!", "x")
    assert conn.request(FAMILY, 0, b"good", "x") == []
    assert conn.stale_replies == 0


def test_stale_replies_are_counted_and_dropped(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        (m,) = msgs
        stale = Message(m.type, 0, m.seq + 1000, m.pid, b"")
        return [reply(stale, b"old"), ack(stale, errno.EINVAL), reply(m, b"mine"), ack(m)]

    _, conn = peer(handler)
    got = conn.request(FAMILY, 0, b"", "x")
    assert [m.payload for m in got] == [b"mine"]
    assert conn.stale_replies == 2


def test_unsolicited_messages_go_to_notifications(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        (m,) = msgs
        note = encode_message(0x31, 0, 0, 0, b"vport added")
        return [note, reply(m, b"reply"), note + ack(m)]

    _, conn = peer(handler)
    got = conn.request(FAMILY, 0, b"", "x")
    assert [m.payload for m in got] == [b"reply"]
    first = conn.recv_notification(0)
    assert first is not None and first.type == 0x31 and first.payload == b"vport added"
    assert [m.payload for m in conn.notifications()] == [b"vport added"]
    assert conn.notifications() == []
    assert conn.recv_notification(0.05) is None


def test_recv_notification_waits_for_a_late_message(peer: MakePeer) -> None:
    p, conn = peer(acker)
    timer = threading.Timer(0.1, p.send, [encode_message(0x31, 0, 0, 0, b"late")])
    timer.start()
    try:
        msg = conn.recv_notification(5)
    finally:
        timer.cancel()
    assert msg is not None and msg.payload == b"late"
    p.send(encode_message(0x31, 0, 0, 0, b"blocking"))
    blocking = conn.recv_notification(None)
    assert blocking is not None and blocking.payload == b"blocking"


def test_notification_queue_is_bounded(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        notes = [encode_message(0x31, 0, 0, 0, bytes([i])) for i in range(5)]
        return [*notes, ack(msgs[0])]

    _, conn = peer(handler)
    conn.max_notifications = 3
    conn.request(FAMILY, 0, b"", "x")
    assert [m.payload for m in conn.notifications()] == [b"\x02", b"\x03", b"\x04"]
    assert conn.dropped_notifications == 2


# -- dumps -----------------------------------------------------------------


def dumper(count: int, per_datagram: int = 2, intr_at: int | None = None, err: int = 0) -> Handler:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        out = []
        for m in msgs:
            if not m.flags & NLM_F_DUMP:
                out.append(ack(m))
                continue
            parts = [
                reply(
                    m, b"item%d" % i, flags=NLM_F_MULTI | (NLM_F_DUMP_INTR if i == intr_at else 0)
                )
                for i in range(count)
            ]
            parts.append(done(m, err))
            out += [
                b"".join(parts[i : i + per_datagram]) for i in range(0, len(parts), per_datagram)
            ]
        return out

    return handler


def test_dump_yields_every_message_until_done(peer: MakePeer) -> None:
    p, conn = peer(dumper(5))
    it = conn.dump(FAMILY, b"filter", "dump things")
    assert p.received == []  # lazy: nothing sent before the first next()
    assert [m.payload for m in it] == [b"item%d" % i for i in range(5)]
    (sent,) = p.received
    assert sent.flags == NLM_F_REQUEST | NLM_F_DUMP
    assert sent.payload == b"filter"
    assert conn.request(FAMILY, 0, b"", "after") == []
    assert conn.stale_replies == 0


def test_empty_dump(peer: MakePeer) -> None:
    _, conn = peer(dumper(0))
    assert list(conn.dump(FAMILY, b"", "dump")) == []


def test_dump_error_in_done_raises(peer: MakePeer) -> None:
    _, conn = peer(dumper(2, err=errno.EPERM))
    got: list[bytes] = []
    with pytest.raises(PermissionDeniedError, match="dump things"):
        got.extend(m.payload for m in conn.dump(FAMILY, b"", "dump things"))
    assert got == [b"item0", b"item1"]


def test_dump_refused_with_nlmsg_error(peer: MakePeer) -> None:
    _, conn = peer(lambda _peer, msgs: [ack(m, errno.EOPNOTSUPP, "no dumps here") for m in msgs])
    with pytest.raises(KernelRefusedError, match="no dumps here"):
        list(conn.dump(FAMILY, b"", "dump"))


def test_dump_interrupted_reads_to_the_end_then_raises(peer: MakePeer) -> None:
    _, conn = peer(dumper(6, intr_at=2))
    got: list[bytes] = []
    with pytest.raises(DumpInterrupted, match="changed during the dump"):
        got.extend(m.payload for m in conn.dump(FAMILY, b"", "dump flows"))
    # Messages from the inconsistent point on are not handed out.
    assert got == [b"item0", b"item1"]
    assert conn.transport.recv_nowait() is None  # the rest was read
    assert conn.request(FAMILY, 0, b"", "after") == []
    assert conn.stale_replies == 0
    assert issubclass(DumpInterrupted, OdpError)


def test_dump_interrupted_flag_on_done(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        (m,) = msgs
        return [
            reply(m, b"a", flags=NLM_F_MULTI)
            + encode_message(NLMSG_DONE, NLM_F_DUMP_INTR, m.seq, m.pid, b"\0" * 4)
        ]

    _, conn = peer(handler)
    with pytest.raises(DumpInterrupted):
        list(conn.dump(FAMILY, b"", "dump"))


def test_abandoned_dump_is_drained(peer: MakePeer) -> None:
    _, conn = peer(dumper(50, per_datagram=3))
    it = conn.dump(FAMILY, b"", "dump")
    assert next(it).payload == b"item0"
    it.close()
    # Everything up to DONE was read off the socket, nothing left to be stale.
    assert conn.transport.recv_nowait() is None
    assert conn.stale_replies == 0
    assert [m.payload for m in conn.dump(FAMILY, b"", "dump")][:2] == [b"item0", b"item1"]
    assert conn.request(FAMILY, 0, b"", "after") == []


def test_abandoned_dump_by_break_is_drained_on_collection(peer: MakePeer) -> None:
    _, conn = peer(dumper(20, per_datagram=1))
    for m in conn.dump(FAMILY, b"", "dump"):
        assert m.payload == b"item0"
        break
    # CPython closed the generator when the loop let go of it.
    assert conn.transport.recv_nowait() is None
    assert conn.request(FAMILY, 0, b"", "after") == []


def test_request_during_a_dump_gets_only_its_own_replies(peer: MakePeer) -> None:
    def handler(peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        (m,) = msgs
        if m.flags & NLM_F_DUMP:
            peer.state["dump"] = m
            return [reply(m, b"d0", flags=NLM_F_MULTI)]
        d = peer.state["dump"]
        assert isinstance(d, Message)
        # The rest of the dump arrives while the request waits for its ACK.
        return [
            reply(d, b"d1", flags=NLM_F_MULTI),
            reply(m, b"r") + reply(d, b"d2", flags=NLM_F_MULTI),
            ack(m) + done(d),
        ]

    _, conn = peer(handler)
    it = conn.dump(FAMILY, b"", "dump")
    assert next(it).payload == b"d0"
    assert [m.payload for m in conn.request(FAMILY, 0, b"", "get")] == [b"r"]
    assert [m.payload for m in it] == [b"d1", b"d2"]
    assert conn.stale_replies == 0


# -- batches ---------------------------------------------------------------


def test_batch_returns_one_result_per_request_with_errors_as_objects(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        out = []
        for m in msgs:
            (n,) = struct.unpack("=I", m.payload)
            if n % 3 == 1:
                out.append(ack(m, errno.EEXIST, f"flow {n} exists"))
            else:
                out.append(reply(m, m.payload) + ack(m))
        return out

    _, conn = peer(handler)
    results = conn.batch([(FAMILY, 0, struct.pack("=I", n)) for n in range(10)], "add flows")
    assert len(results) == 10
    for n, result in enumerate(results):
        if n % 3 == 1:
            assert isinstance(result, AlreadyExistsError)
            assert f"flow {n} exists" in str(result)
        else:
            assert isinstance(result, list)
            assert [m.payload for m in result] == [struct.pack("=I", n)]


def test_batch_matches_out_of_order_replies(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        return [reply(m, m.payload) + ack(m) for m in reversed(msgs)]

    p, conn = peer(handler)
    results = conn.batch([(FAMILY, 0, b"%04d" % n) for n in range(40)], "x", window=16)
    assert [r[0].payload for r in results if isinstance(r, list)] == [
        b"%04d" % n for n in range(40)
    ]
    assert len(results) == 40
    assert p.datagram_sizes == [16, 16, 8]
    seqs = [m.seq for m in p.received]
    assert seqs == list(range(seqs[0], seqs[0] + 40))


def test_batch_of_ten_thousand_is_windowed(peer: MakePeer) -> None:
    p, conn = peer(
        lambda _peer, msgs: [ack(m, errno.ENOENT if m.seq % 1000 == 0 else 0) for m in msgs]
    )
    n = 10_000
    results = conn.batch([(FAMILY, NLM_F_CREATE, b"\0" * 64) for _ in range(n)], "x")
    assert len(results) == n
    errors = [i for i, r in enumerate(results) if isinstance(r, OdpError)]
    seq0 = p.received[0].seq
    assert errors == [i for i in range(n) if (seq0 + i) % 1000 == 0]
    assert max(p.datagram_sizes) <= 64
    assert len(p.datagram_sizes) == -(-n // 64)
    assert conn.stale_replies == 0


def netlink_like(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
    """Answers as the kernel does: in order; an error whether asked or not, an ACK
    only if asked; payload b"fail" fails, b"echo" gets a reply."""
    out = []
    for m in msgs:
        if m.payload == b"fail":
            out.append(ack(m, errno.EEXIST, "exists"))
            continue
        if m.payload == b"echo":
            out.append(reply(m, b"echoed"))
        if m.flags & NLM_F_ACK:
            out.append(ack(m))
    return out


def test_quiet_batch_asks_only_the_last_of_each_window_for_an_ack(peer: MakePeer) -> None:
    p, conn = peer(netlink_like)
    payloads = [b"fail" if n % 7 == 3 else b"echo" if n % 11 == 5 else b"ok" for n in range(100)]
    results = conn.batch(
        [(FAMILY, NLM_F_CREATE, pl) for pl in payloads], "add flows", window=16, ack_each=False
    )
    assert len(results) == 100
    for pl, result in zip(payloads, results, strict=True):
        if pl == b"fail":
            assert isinstance(result, AlreadyExistsError) and "exists" in str(result)
        elif pl == b"echo":
            assert isinstance(result, list) and [m.payload for m in result] == [b"echoed"]
        else:
            assert result == []
    acked = [i for i, m in enumerate(p.received) if m.flags & NLM_F_ACK]
    assert acked == [15, 31, 47, 63, 79, 95, 99]
    assert all(m.flags & NLM_F_REQUEST for m in p.received)
    assert p.datagram_sizes == [16] * 6 + [4]
    assert conn.stale_replies == 0 and conn._inbox == {}


def test_quiet_batch_when_the_last_request_fails_or_all_do(peer: MakePeer) -> None:
    _, conn = peer(netlink_like)
    results = conn.batch([(FAMILY, 0, b"ok"), (FAMILY, 0, b"fail")], "x", ack_each=False)
    assert results[0] == [] and isinstance(results[1], AlreadyExistsError)
    results = conn.batch([(FAMILY, 0, b"fail")] * 40, "x", window=8, ack_each=False)
    assert all(isinstance(r, AlreadyExistsError) for r in results) and len(results) == 40
    assert conn.stale_replies == 0


def test_quiet_batch_acks_dumps_and_takes_extra_acks(peer: MakePeer) -> None:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        out = []
        for m in msgs:
            if m.flags & NLM_F_DUMP == NLM_F_DUMP:
                out.append(reply(m, b"d1", flags=NLM_F_MULTI) + done(m))
            else:
                out.append(ack(m))  # a peer that ACKs everything, asked or not
        return out

    p, conn = peer(handler)
    reqs = [(FAMILY, 0, b"a"), (FAMILY, NLM_F_DUMP, b""), (FAMILY, 0, b"b"), (FAMILY, 0, b"c")]
    results = conn.batch(reqs, "x", ack_each=False)
    assert results[0] == [] and results[2] == [] and results[3] == []
    assert [m.payload for m in results[1]] == [b"d1"]  # type: ignore[union-attr]
    assert [bool(m.flags & NLM_F_ACK) for m in p.received] == [False, True, False, True]
    assert conn.stale_replies == 0


def test_batch_empty(peer: MakePeer) -> None:
    p, conn = peer(acker)
    assert conn.batch([], "x") == []
    assert p.received == []


# -- transport failures ----------------------------------------------------


class OverrunTransport:
    """A transport whose receive queue overflowed."""

    port_id = 1
    last_group = 0

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def send_many(self, datas: list[bytes]) -> None:
        self.sent.extend(datas)

    def recv(self) -> bytes:
        raise OSError(errno.ENOBUFS, "No buffer space available")

    def recv_nowait(self) -> bytes | None:
        return self.recv()

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass

    def add_membership(self, group: int) -> None:
        pass

    def set_rcvbuf(self, size: int) -> None:
        pass


def test_enobufs_becomes_receive_overrun() -> None:
    conn = NetlinkConnection(OverrunTransport())
    with pytest.raises(ReceiveOverrun, match="receive buffer overrun") as info:
        conn.request(FAMILY, 0, b"", "add flow")
    assert info.value.errno == errno.ENOBUFS
    with pytest.raises(ReceiveOverrun):
        conn.notifications()
    assert conn.overruns == 2
    # The abandoned request no longer waits: its seq is free again.
    assert conn._inbox == {}


def test_context_manager_closes_the_transport(peer: MakePeer) -> None:
    p, conn = peer(acker)
    with conn as c:
        assert c is conn
    assert p.client.fileno() == -1


def test_reply_of_type_error_is_not_mistaken_for_a_reply(peer: MakePeer) -> None:
    # An NLMSG_ERROR that is an ACK ends the request without being returned.
    _, conn = peer(lambda _peer, msgs: [ack(msgs[0])])
    got = conn.request(FAMILY, 0, b"", "x")
    assert all(m.type != NLMSG_ERROR for m in got)

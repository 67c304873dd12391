"""Request/ACK, dumps and batches over one transport, matched by sequence number.

Every request gets its own sequence number, and a message is only ever
handed to the request whose number it carries.  Messages for a request
other than the one being waited for are kept in that request's inbox;
unsolicited ones (seq 0: upcalls, and anything delivered to a multicast
group) are queued for ``recv_notification()``/``notifications()``.

A reply whose seq nobody waits for any more is counted in
``stale_replies`` and dropped rather than raised: it is what a caller leaves
behind when it gives up on a request half way (a dump abandoned by an
exception, a batch cut short by an overrun), and it says nothing wrong about
the peer.

A connection is not thread-safe: use one per thread.
"""

from __future__ import annotations

import errno
import itertools
import select
import threading
import time
from collections import deque
from collections.abc import Generator, Sequence
from types import TracebackType

from odpctl.errors import DecodeError, OdpError, error_from_errno
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_NOOP,
    Message,
    decode_messages,
    encode_message,
    parse_done,
    parse_error,
)
from odpctl.netlink.transport import Transport

# Requests per window in batch().  The kernel handles a whole datagram of
# requests before send() returns, so every reply of a window sits in the
# receive buffer at once.  Each reply or ACK is its own skb costing ~830
# bytes of the default ~208 KiB buffer (measured on 6.x): 256 bare ACKs or
# 128 reply+ACK pairs fill it.  64 leaves room for bigger replies.
BATCH_WINDOW = 64
MAX_NOTIFICATIONS = 65536


class DumpInterrupted(OdpError):
    """The dumped table changed while it was being dumped; the caller may retry."""


class ReceiveOverrun(OdpError):
    """The socket's receive buffer overflowed and the kernel dropped messages."""


class NetlinkConnection:
    def __init__(self, transport: Transport, *, max_notifications: int = MAX_NOTIFICATIONS):
        self.transport = transport
        self.max_notifications = max_notifications
        self.stale_replies = 0
        self.overruns = 0
        self.dropped_notifications = 0
        # Sequence numbers come from a counter (taken modulo 2**32, skipping 0
        # and any still in flight).  Several threads may share a connection (a
        # router's handlers): next() on the counter and dict.setdefault() are
        # each atomic, so no two requests ever hold the same number, and no
        # lock is needed for it (see _open_many).
        self._seqs = itertools.count(1)
        # seq -> messages received for that request and not yet consumed.
        # A seq is in here exactly while someone waits for its replies.
        self._inbox: dict[int, deque[Message]] = {}
        self._notifications: deque[Message] = deque()
        # One thread reads the socket at a time.
        self._read_lock = threading.Lock()

    @property
    def port_id(self) -> int:
        return self.transport.port_id

    def __enter__(self) -> NetlinkConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # Pass-throughs, so that listeners need not reach for the transport.

    def fileno(self) -> int:
        return self.transport.fileno()

    def add_membership(self, group: int) -> None:
        self.transport.add_membership(group)

    def set_rcvbuf(self, size: int) -> None:
        self.transport.set_rcvbuf(size)

    # -- plumbing ---------------------------------------------------------

    def _open(self) -> tuple[int, deque[Message]]:
        """A fresh sequence number (never 0, never one still in flight) and its inbox."""
        return self._open_many(1)[0]

    def _open_many(self, n: int) -> list[tuple[int, deque[Message]]]:
        """``n`` fresh sequence numbers and their inboxes.

        Without a lock: taking one reads the clock in CPython 3.11 (for its
        deadline, even when it need not wait), a syscall where there is no
        vDSO, ~50 us in the user-mode-linux guest, which made a lock per
        request half the cost of installing flows there.
        """
        opened: list[tuple[int, deque[Message]]] = []
        append = opened.append
        inbox = self._inbox
        seqs = self._seqs
        for _ in range(n):
            while True:
                seq = next(seqs) & 0xFFFFFFFF
                if seq:
                    box: deque[Message] = deque()
                    if inbox.setdefault(seq, box) is box:
                        break
            append((seq, box))
        return opened

    def _send(self, data: bytes, what: str) -> None:
        try:
            self.transport.send(data)
        except OSError as e:
            raise error_from_errno(e.errno or errno.EIO, what) from None

    def _receive(self, what: str, wait: bool = True, box: deque[Message] | None = None) -> bool:
        """Read one datagram and sort its messages; False if ``wait`` is off and none came.

        One thread reads the socket at a time, and sorts what it reads into
        every waiter's inbox; a waiter (``box``) that another reader has
        served meanwhile returns without blocking on the socket.
        """
        with self._read_lock:
            if box:
                return True
            try:
                data = self.transport.recv() if wait else self.transport.recv_nowait()
            except OSError as e:
                raise self._recv_error(e, what) from None
            if data is None:
                return False
            self._sort(data)
            return True

    def _sort(self, data: bytes) -> None:
        group = self.transport.last_group
        inbox = self._inbox
        for msg in decode_messages(data):
            if group or not msg.seq:
                self._notify(msg)
                continue
            box = inbox.get(msg.seq)
            if box is None:
                self.stale_replies += 1
            else:
                box.append(msg)

    def _recv_error(self, e: OSError, what: str) -> OdpError:
        if e.errno != errno.ENOBUFS:
            return error_from_errno(e.errno or errno.EIO, what)
        self.overruns += 1
        self._empty_socket()
        return ReceiveOverrun(
            f"{what}: netlink receive buffer overrun, the kernel dropped messages for this socket",
            errno=errno.ENOBUFS,
            hint="the reader fell behind; replies or notifications were lost",
        )

    def _empty_socket(self) -> None:
        # After an overrun the kernel keeps the socket marked congested, and
        # silently drops whatever else comes, until its receive queue has been
        # read empty: a request sent before that could wait forever for its
        # ACK.  What is read here is sorted as usual; the requests that were
        # waiting are about to give up, so their replies will count as stale.
        # Bounded, so that a flood cannot pin the caller here.
        for _ in range(100_000):
            try:
                data = self.transport.recv_nowait()
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    continue
                return
            if data is None:
                return
            try:
                self._sort(data)
            except DecodeError:
                continue

    def _notify(self, msg: Message) -> None:
        queue = self._notifications
        if len(queue) >= self.max_notifications:
            queue.popleft()
            self.dropped_notifications += 1
        queue.append(msg)

    @staticmethod
    def _error(err: int, text: str | None, what: str) -> OdpError:
        exc = error_from_errno(err, what)
        if text:
            exc.message = f"{exc.message}: {text}"
            exc.args = (exc.message,)
        return exc

    def _collect(self, _seq: int, box: deque[Message], what: str) -> list[Message] | OdpError:
        """The replies to request ``seq`` up to its ACK, or the error it got."""
        replies: list[Message] = []
        while True:
            while not box:
                self._receive(what, box=box)
            msg = box.popleft()
            type_ = msg.type
            if type_ == NLMSG_ERROR:
                err, text = parse_error(msg.payload, msg.flags)
                return self._error(err, text, what) if err else replies
            if type_ == NLMSG_DONE:
                # A dump passed through request() or batch() ends here, unACKed.
                err, text = parse_done(msg.payload, msg.flags)
                return self._error(err, text, what) if err else replies
            if type_ != NLMSG_NOOP:
                replies.append(msg)

    # -- the API ----------------------------------------------------------

    def request(self, type_: int, flags: int, payload: bytes, what: str) -> list[Message]:
        """Send one request and return its replies once it is ACKed.

        ``what`` names the operation in error messages ("add flow").
        """
        seq, box = self._open()
        try:
            data = encode_message(
                type_, flags | NLM_F_REQUEST | NLM_F_ACK, seq, self.port_id, payload
            )
            self._send(data, what)
            result = self._collect(seq, box, what)
        finally:
            del self._inbox[seq]
        if isinstance(result, OdpError):
            raise result
        return result

    def dump(self, type_: int, payload: bytes, what: str) -> Generator[Message, None, None]:
        """Yield every message of a dump, lazily, up to NLMSG_DONE.

        The request goes out on the first ``next()``.  If the kernel flags the
        dump as inconsistent (NLM_F_DUMP_INTR) the rest is read and dropped
        and ``DumpInterrupted`` raised.  Closing the iterator early reads and
        drops the rest of the dump, so that the next request (and the kernel,
        which runs one dump per socket at a time) find a clean socket.
        Requests made while a dump is suspended work; the dump's messages that
        arrive meanwhile wait in memory for it.
        """
        seq, box = self._open()
        finished = False
        try:
            self._send(
                encode_message(type_, NLM_F_REQUEST | NLM_F_DUMP, seq, self.port_id, payload), what
            )
            interrupted = False
            while True:
                while not box:
                    self._receive(what, box=box)
                msg = box.popleft()
                if msg.flags & NLM_F_DUMP_INTR:
                    interrupted = True
                kind = msg.type
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    finished = True
                    if kind == NLMSG_DONE:
                        err, text = parse_done(msg.payload, msg.flags)
                    else:
                        err, text = parse_error(msg.payload, msg.flags)
                    if err:
                        raise self._error(err, text, what)
                    break
                if not interrupted and kind != NLMSG_NOOP:
                    yield msg
            if interrupted:
                raise DumpInterrupted(
                    f"{what}: the table changed during the dump", hint="retry the dump"
                )
        except GeneratorExit:
            if not finished:
                self._drain(box, what)
            raise
        finally:
            del self._inbox[seq]

    def _drain(self, box: deque[Message], what: str) -> None:
        while True:
            while not box:
                self._receive(what, box=box)
            type_ = box.popleft().type
            if type_ in (NLMSG_DONE, NLMSG_ERROR):
                return

    def batch(
        self,
        requests: Sequence[tuple[int, int, bytes]],
        what: str,
        *,
        window: int = BATCH_WINDOW,
        ack_each: bool = True,
    ) -> list[list[Message] | OdpError]:
        """Send many ``(type, flags, payload)`` requests; one result per request.

        A result is the request's replies, or the error it got, returned
        rather than raised so that one failure hides none of the others.
        Requests go out ``window`` at a time in as few datagrams as the
        transport manages, and each window's replies are read before the
        next is sent, so the receive buffer cannot overflow however many
        requests there are.  Transport failures (an overrun, a vanished
        server) still raise.

        ``ack_each=False`` is for a peer that answers a socket's requests in
        the order they came (the kernel, and odpctl's datapath server): only
        the last request of a window then asks for an ACK (and any that looks
        like a dump, which ends with its own NLMSG_DONE).  A request without
        one gets no answer at all if it succeeds and its error if it fails
        (netlink always reports errors), and all of that has arrived by the
        time a later request's ACK does.  A window of requests that succeed
        silently costs one datagram to read instead of one per request; the
        window must still leave room in the receive buffer for every request
        to fail (or to echo a reply).
        """
        results: list[list[Message] | OdpError] = []
        pid = self.port_id
        inbox = self._inbox
        window = max(1, window)
        for start in range(0, len(requests), window):
            chunk = requests[start : start + window]
            last = len(chunk) - 1
            opened: list[tuple[int, deque[Message], bool]] = []
            seqs: list[tuple[int, deque[Message]]] = []
            try:
                datas = []
                seqs = self._open_many(len(chunk))
                for i, (type_, flags, payload) in enumerate(chunk):
                    seq, box = seqs[i]
                    acked = ack_each or i == last or flags & NLM_F_DUMP == NLM_F_DUMP
                    opened.append((seq, box, acked))
                    if acked:
                        flags |= NLM_F_ACK
                    datas.append(encode_message(type_, flags | NLM_F_REQUEST, seq, pid, payload))
                try:
                    self.transport.send_many(datas)
                except OSError as e:
                    raise error_from_errno(e.errno or errno.EIO, what) from None
                if ack_each:
                    for seq, box, _ in opened:
                        results.append(self._collect(seq, box, what))
                    continue
                settled = len(results)
                for seq, box, acked in opened:
                    if not acked:
                        results.append([])  # settled below, once a later ACK is in
                        continue
                    result = self._collect(seq, box, what)
                    # Everything for the un-ACKed requests before this one has come.
                    for k in range(settled, len(results)):
                        results[k] = self._settle(opened[k - start][1], what)
                    results.append(result)
                    settled = len(results)
            finally:
                for seq, _ in seqs:
                    inbox.pop(seq, None)
        return results

    def _settle(self, box: deque[Message], what: str) -> list[Message] | OdpError:
        """The result of a request sent without NLM_F_ACK, all of whose answers are in."""
        replies: list[Message] = []
        for msg in box:
            type_ = msg.type
            if type_ == NLMSG_ERROR:
                err, text = parse_error(msg.payload, msg.flags)
                if err:
                    return self._error(err, text, what)
            elif type_ == NLMSG_DONE:
                err, text = parse_done(msg.payload, msg.flags)
                if err:
                    return self._error(err, text, what)
            elif type_ != NLMSG_NOOP:
                replies.append(msg)
        box.clear()
        return replies

    def recv_notification(self, timeout: float | None = None) -> Message | None:
        """The next unsolicited message; None if ``timeout`` seconds pass first."""
        what = "receive netlink notifications"
        queue = self._notifications
        if timeout is None:
            while not queue:
                self._receive(what)
            return queue.popleft()
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.transport.fileno(), select.POLLIN)
        while True:
            while not queue and self._receive(what, wait=False):
                pass
            if queue:
                return queue.popleft()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            poller.poll(max(1, int(remaining * 1000 + 0.999)))

    def recv_notifications(self, limit: int, timeout: float | None = None) -> list[Message]:
        """Up to ``limit`` unsolicited messages: the first waited for (up to
        ``timeout`` seconds; none came: []), then whatever is waiting already.

        A round of many per wake-up, for a reader that handles them together;
        bounded, so that a flood cannot grow the queue past what it takes.
        """
        first = self.recv_notification(timeout)
        if first is None:
            return []
        out = [first]
        queue = self._notifications
        what = "receive netlink notifications"
        while len(out) < limit:
            if not queue and not self._receive(what, wait=False):
                break
            while queue and len(out) < limit:
                out.append(queue.popleft())
        return out

    def notifications(self) -> list[Message]:
        """Every unsolicited message received so far, including any waiting on the socket.

        Never blocks; the returned messages leave the queue.
        """
        while self._receive("receive netlink notifications", wait=False):
            pass
        out = list(self._notifications)
        self._notifications.clear()
        return out

"""The server: one selector loop for clients, ports and signals.

Clients connect over an AF_UNIX SOCK_SEQPACKET socket and speak generic
netlink as described in `odpctl.netlink.transport` (a greeting carrying the
client's port id, NLMSG_NOOP requests to join multicast groups, seq 0 on
notifications).  Messages are taken apart as the kernel's netlink_rcv_skb
does: a malformed header ends the datagram, a message without NLM_F_REQUEST
or of a control type is only acknowledged, every request gets its replies,
then an NLMSG_ERROR if it failed or asked for an ACK; nothing a client
sends can raise out of the loop.

Replies never block the loop: what a client's socket cannot take now waits
in that client's queue, and the client's further requests wait until it has
read what it asked for.  Dumps are produced lazily, a datagram at a time, as
the client reads.  Upcalls and notifications do not wait: if the client
cannot take one when it is sent it is lost, and counted (see
`odpctl.datapath.upcalls`).  Upcalls are gathered while the loop works
through what woke it, and go out together at the end of the round (or
before the replies of the request that caused them), packed into as few
datagrams as fit.

The datapaths belong to the server, not to the clients: a client that goes
away (a router restarting) leaves them, their ports and flows as they were.

Anyone who can reach the socket may connect and look (it is 0666 by
default, as generic netlink is open to all; changes need root), so what a
user can take is bounded (`Access`): connections per uid other than root's
(refused with EUSERS, said in place of the greeting); the last file
descriptors under the server's limit are kept for root; out of descriptors
altogether, accepting pauses a moment rather than spinning.  A connection's
send buffer is the system's default; a root client's grows when its replies
or upcalls do not fit, so that a user who never reads pins little memory.
Every request gets its reply or an error, even one too big to read
(EMSGSIZE).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import itertools
import logging
import os
import resource
import select
import selectors
import socket
import stat
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from odpctl.datapath.control import Controller, FamilySpec, Operation
from odpctl.datapath.dp import now_ms
from odpctl.datapath.dpcmds import DP_POLICY, VPORT_POLICY, Registry
from odpctl.datapath.errors import RequestError
from odpctl.datapath.flowcmds import FLOW_POLICY, FlowCommands
from odpctl.datapath.pktcmds import PACKET_POLICY, PacketCommands
from odpctl.datapath.ports import Port
from odpctl.datapath.protocol import (
    DumpItems,
    Request,
    done_message,
    error_message,
    parse_attrs,
    split_request,
)
from odpctl.datapath.upcalls import Delivered
from odpctl.errors import AlreadyExistsError, OdpError, UsageError
from odpctl.netlink.genl import GENL_ID_CTRL
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_HDR,
    NLMSG_HDRLEN,
    NLMSG_MIN_TYPE,
    NLMSG_NOOP,
    Message,
    encode_message,
)
from odpctl.odp.uapi import (
    DATAPATH_FAMILY,
    DATAPATH_MCGROUP,
    DATAPATH_VERSION,
    FLOW_FAMILY,
    FLOW_MCGROUP,
    FLOW_VERSION,
    PACKET_FAMILY,
    PACKET_VERSION,
    VPORT_FAMILY,
    VPORT_MCGROUP,
    VPORT_VERSION,
    DpAttr,
    DpCmd,
    FlowAttr,
    FlowCmd,
    PacketAttr,
    PacketCmd,
    VportAttr,
    VportCmd,
)

log = logging.getLogger(__name__)

# Family and multicast group ids of this server (any unused values would do).
DP_ID, VPORT_ID, FLOW_ID, PACKET_ID = 0x20, 0x21, 0x22, 0x23
DP_GROUP, VPORT_GROUP, FLOW_GROUP = 0x101, 0x102, 0x103

MAX_REQUEST = 1 << 18
MAX_DATAGRAM = 32 * 1024
CLIENT_SNDBUF = 4 << 20
SO_SNDBUFFORCE = 32
SO_PEERCRED = 17
_UCRED = struct.Struct("=iII")
_U32 = struct.Struct("=I")
READS_PER_WAKEUP = 16
REBALANCE_MS = 1000
ACCEPT_PAUSE_MS = 200  # out of file descriptors: no accepting for this long


@dataclass(frozen=True)
class Access:
    """Who may connect, and how much one user may take.

    ``mode`` and ``group`` are the socket file's; ``per_user`` bounds the
    connections of each uid but root's and the server's own (0: no bound);
    ``root_reserve`` descriptors under the file limit are for root alone.
    """

    mode: int = 0o666
    group: int | None = None
    per_user: int = 64
    root_reserve: int = 32

    @classmethod
    def parse(
        cls, mode: str | None = None, group: str | None = None, per_user: int | None = None
    ) -> Access:
        """From the command line's words: an octal mode, a group name or number."""
        access = cls()
        if mode is not None:
            try:
                value = int(mode, 8)
            except ValueError:
                value = -1
            if not 0 <= value <= 0o777:
                raise UsageError(f"--socket-mode {mode}: expected an octal mode such as 0660")
            access = replace(access, mode=value)
        if group is not None:
            try:
                gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
            except KeyError:
                raise UsageError(f"--socket-group {group}: no such group") from None
            access = replace(access, group=gid)
        if per_user is not None:
            if per_user < 0:
                raise UsageError(f"--user-connections {per_user}: expected 0 (no limit) or more")
            access = replace(access, per_user=per_user)
        return access


class Client:
    """One connection: its port id, multicast groups and pending output."""

    def __init__(self, sock: socket.socket, port_id: int, uid: int, privileged: bool) -> None:
        self.sock = sock
        self.port_id = port_id
        self.uid = uid
        self.privileged = privileged
        self.grown = False  # its send buffer raised past the default (root's only)
        self.groups: set[int] = set()
        self.out: deque[bytes] = deque()
        self.dumps: deque[tuple[Message, Iterator[bytes]]] = deque()
        self.closed = False

    @property
    def busy(self) -> bool:
        return bool(self.out or self.dumps)


class Server:
    def __init__(self, path: str, access: Access | None = None) -> None:
        self.path = path
        self.access = access or Access()
        self._per_uid: Counter[int] = Counter()
        self._fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._accept_paused_until = 0
        self.refused = 0  # connections refused, by the limits above
        self._sel = selectors.DefaultSelector()
        self._clients: dict[int, Client] = {}
        self._groups: dict[int, set[Client]] = {}
        self._port_ids = itertools.count(1000)
        self._listen: socket.socket | None = None
        self._inode = 0
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._buf = bytearray(MAX_REQUEST)
        self._next_rebalance = 0
        self._retry = False
        # Upcalls of this round not sent yet, by client: (messages, done).
        self._upcalls: dict[Client, list[tuple[list[bytes], Delivered]]] = {}
        self.registry = Registry(
            deliver=self._queue_upcall,
            packet_family=PACKET_ID,
            dp_group=DP_GROUP,
            vport_group=VPORT_GROUP,
            watch=self._watch_port,
            unwatch=self._unwatch_port,
            notify=self._broadcast_raw,
            vport_family=VPORT_ID,
        )
        flows = FlowCommands(self.registry, FLOW_GROUP)
        packets = PacketCommands(self.registry)
        reg = self.registry
        self.families: dict[int, FamilySpec] = {
            f.id: f
            for f in (
                FamilySpec(
                    DATAPATH_FAMILY,
                    DP_ID,
                    DATAPATH_VERSION,
                    max(DpAttr),
                    DP_POLICY,
                    {DATAPATH_MCGROUP: DP_GROUP},
                    {
                        DpCmd.NEW: Operation(reg.dp_new),
                        DpCmd.DEL: Operation(reg.dp_del),
                        DpCmd.GET: Operation(reg.dp_get, reg.dp_dump, admin=False),
                        DpCmd.SET: Operation(reg.dp_set),
                    },
                ),
                FamilySpec(
                    VPORT_FAMILY,
                    VPORT_ID,
                    VPORT_VERSION,
                    max(VportAttr),
                    VPORT_POLICY,
                    {VPORT_MCGROUP: VPORT_GROUP},
                    {
                        VportCmd.NEW: Operation(reg.vport_new),
                        VportCmd.DEL: Operation(reg.vport_del),
                        VportCmd.GET: Operation(reg.vport_get, reg.vport_dump, admin=False),
                        VportCmd.SET: Operation(reg.vport_set),
                    },
                ),
                FamilySpec(
                    FLOW_FAMILY,
                    FLOW_ID,
                    FLOW_VERSION,
                    max(FlowAttr),
                    FLOW_POLICY,
                    {FLOW_MCGROUP: FLOW_GROUP},
                    {
                        FlowCmd.NEW: Operation(flows.flow_new),
                        FlowCmd.DEL: Operation(flows.flow_del),
                        FlowCmd.GET: Operation(flows.flow_get, flows.flow_dump, admin=False),
                        FlowCmd.SET: Operation(flows.flow_set),
                    },
                ),
                FamilySpec(
                    PACKET_FAMILY,
                    PACKET_ID,
                    PACKET_VERSION,
                    max(PacketAttr),
                    PACKET_POLICY,
                    {},
                    {PacketCmd.EXECUTE: Operation(packets.execute)},
                ),
            )
        }
        self.controller = Controller(list(self.families.values()))

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Claim the socket path (refusing if a server answers there) and listen."""
        path = self.path
        _claim(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(path)
        except OSError as e:
            sock.close()
            if e.errno == errno.EADDRINUSE:
                raise AlreadyExistsError(
                    f"a userspace datapath already serves {path}", errno=e.errno
                ) from None
            raise OdpError(f"cannot listen on {path}: {e.strerror}", errno=e.errno) from None
        # Who may look (GET and dumps) is the socket's mode; changes need root,
        # checked per request.
        os.chmod(path, self.access.mode)
        if self.access.group is not None:
            os.chown(path, -1, self.access.group)
        sock.listen(64)
        sock.setblocking(False)
        self._inode = os.stat(path).st_ino
        self._listen = sock
        self._sel.register(sock, selectors.EVENT_READ, self._accept)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._woken)

    def stop(self) -> None:
        """Ask the loop to end; safe from a signal handler or another thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def run(self) -> None:
        """Serve until `stop`; then release everything (datapaths, devices, socket)."""
        if self._listen is None:
            self.start()
        try:
            while not self._stopping:
                self._tick()
        finally:
            self.close()

    def _tick(self) -> None:
        # Output a port could not send yet is retried soon, not at the next packet.
        timeout = 0.001 if self._retry else 1.0
        if self._accept_paused_until:
            timeout = min(timeout, max(0.0, (self._accept_paused_until - now_ms()) / 1000))
        events = self._sel.select(timeout)
        now = now_ms()
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._resume_accepting()
        for dp in self.registry.by_name.values():
            dp.now = now
        # Clients first: a miss whose flow put waits in a request is further
        # along than a frame still in a port's ring, and the ring keeps it.
        events.sort(key=_port_last)
        for key, mask in events:
            callback: Callable[[int], None] = key.data
            try:
                callback(mask)
            except Exception:  # a bug must not take every datapath down with it
                log.exception("unexpected error in the datapath server loop")
        self._flush_upcalls()
        # Output the ports batched during this round goes out now, together.
        self._retry = not self._flush_ports()
        if now >= self._next_rebalance:
            self._next_rebalance = now + REBALANCE_MS
            for dp in self.registry.by_name.values():
                dp.table.rebalance()

    def _flush_ports(self) -> bool:
        """Send what the ports queued; False if some must retry soon."""
        done = True
        for dp in self.registry.by_name.values():
            done = dp.flush() and done
        return done

    def close(self) -> None:
        self.registry.close()
        for client in list(self._clients.values()):
            self._drop(client)
        if self._listen is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._listen)
            self._listen.close()
            self._listen = None
            # Remove the socket only if it is still ours, not a successor's.
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
        for s in (self._wake_r, self._wake_w):
            s.close()
        self._sel.close()

    def _woken(self, _mask: int) -> None:
        with contextlib.suppress(OSError):
            self._wake_r.recv(64)

    # --- ports ------------------------------------------------------------------------

    def _watch_port(self, port: Port) -> None:
        fd = port.fileno()
        if fd is not None:
            self._sel.register(fd, selectors.EVENT_READ, _PortReadable(port))

    def _unwatch_port(self, port: Port) -> None:
        fd = port.fileno()
        if fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(fd)

    # --- clients ------------------------------------------------------------------------

    def _accept(self, _mask: int) -> None:
        assert self._listen is not None
        try:
            sock, _ = self._listen.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE):
                # The listening socket stays readable: without a pause, a spin.
                self._pause_accepting()
            return
        try:
            _pid, uid, _gid = _UCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, _UCRED.size)
            )
            privileged = uid in (0, os.geteuid())
            refusal = None if privileged else self._refusal(sock, uid)
            if refusal is not None:
                self.refused += 1
                err, reason = refusal
                # In place of the greeting, so that the client can say why.
                sock.send(error_message(Message(NLMSG_NOOP, 0, 0, 0, b""), err, reason))
                sock.close()
                return
            port_id = next(self._port_ids)
            sock.send(NLMSG_HDR.pack(NLMSG_HDRLEN, NLMSG_NOOP, 0, 0, port_id))
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        client = Client(sock, port_id, uid, privileged)
        self._clients[port_id] = client
        self._per_uid[uid] += 1
        self._sel.register(sock, selectors.EVENT_READ, lambda m: self._client_event(client, m))

    def _refusal(self, sock: socket.socket, uid: int) -> tuple[int, str] | None:
        """Why an unprivileged connection is refused (errno, reason), or None."""
        access = self.access
        if access.per_user and self._per_uid[uid] >= access.per_user:
            return errno.EUSERS, (
                f"too many connections from uid {uid} (at most {access.per_user} per user)"
            )
        # Descriptors are handed out lowest first: this one's number says how many are taken.
        if sock.fileno() >= self._fd_limit - access.root_reserve:
            return errno.EMFILE, "the datapath server keeps its last file descriptors for root"
        return None

    def _pause_accepting(self) -> None:
        if self._listen is None or self._accept_paused_until:
            return
        log.warning("out of file descriptors: not accepting connections for %d ms", ACCEPT_PAUSE_MS)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._listen)
        self._accept_paused_until = now_ms() + ACCEPT_PAUSE_MS

    def _resume_accepting(self) -> None:
        self._accept_paused_until = 0
        if self._listen is not None:
            self._sel.register(self._listen, selectors.EVENT_READ, self._accept)

    def _grow(self, client: Client) -> bool:
        """Give a root client's socket the big send buffer; whether it grew (once only)."""
        if client.grown or not client.privileged:
            return False
        client.grown = True
        for opt in (SO_SNDBUFFORCE, socket.SO_SNDBUF):
            try:
                client.sock.setsockopt(socket.SOL_SOCKET, opt, CLIENT_SNDBUF)
                return True
            except OSError:
                continue
        return False

    def _drop(self, client: Client) -> None:
        if client.closed:
            return
        client.closed = True
        self._per_uid[client.uid] -= 1
        if self._per_uid[client.uid] <= 0:
            del self._per_uid[client.uid]
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(client.sock)
        client.sock.close()
        self._clients.pop(client.port_id, None)
        for group in client.groups:
            self._groups.get(group, set()).discard(client)
        client.out.clear()
        client.dumps.clear()

    def _client_event(self, client: Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._pump(client)
        if mask & selectors.EVENT_READ and not client.closed:
            for _ in range(READS_PER_WAKEUP):
                if client.busy or client.closed:
                    break
                try:
                    # MSG_TRUNC: the datagram's whole length, even past the buffer.
                    n = client.sock.recv_into(self._buf, MAX_REQUEST, socket.MSG_TRUNC)
                except BlockingIOError:
                    break
                except OSError:
                    self._drop(client)
                    return
                if n == 0:
                    # End of stream, or an empty datagram (which carries nothing).
                    if _peer_closed(client.sock):
                        self._drop(client)
                        return
                    continue
                if n > MAX_REQUEST:
                    self._too_big(client, n)
                    continue
                self._serve_datagram(client, bytes(memoryview(self._buf)[:n]))
        self._update_interest(client)

    def _update_interest(self, client: Client) -> None:
        if client.closed:
            return
        # A client with output pending is not read: it must take its replies first.
        events = selectors.EVENT_WRITE if client.busy else selectors.EVENT_READ
        with contextlib.suppress(KeyError, ValueError):
            if self._sel.get_key(client.sock).events != events:
                self._sel.modify(client.sock, events, self._sel.get_key(client.sock).data)

    def _too_big(self, client: Client, size: int) -> None:
        """EMSGSIZE for a datagram cut to the buffer (a netlink socket's sendmsg says as much)."""
        _len, type_, flags, seq, pid = NLMSG_HDR.unpack_from(self._buf)
        request = Message(type_, flags, seq, pid, b"")
        reason = f"a request of {size} bytes is past the {MAX_REQUEST}-byte limit"
        self._send(client, [error_message(request, errno.EMSGSIZE, reason)])

    def _serve_datagram(self, client: Client, data: bytes) -> None:
        out: list[bytes] = []
        end = len(data)
        off = 0
        while end - off >= NLMSG_HDRLEN:
            size, type_, flags, seq, pid = NLMSG_HDR.unpack_from(data, off)
            if size < NLMSG_HDRLEN or size > end - off:
                break  # as the kernel: the rest of the datagram is ignored
            msg = Message(type_, flags, seq, pid, data[off + NLMSG_HDRLEN : off + size])
            try:
                self._serve(client, msg, out)
            except Exception as exc:  # never let a request take the server down
                log.exception("request type %d cmd %s failed", type_, msg.payload[:1].hex())
                out.append(error_message(msg, errno.EINVAL, f"internal error: {exc}"))
            off += (size + 3) & ~3
        # What the requests sent (executes) and the upcalls they caused
        # (userspace() actions) go first, as the kernel's do before it replies.
        self._flush_ports()  # what cannot go yet, the round's end retries
        self._flush_upcalls()
        self._send(client, out)

    def _serve(self, client: Client, msg: Message, out: list[bytes]) -> None:
        flags = msg.flags
        if not flags & NLM_F_REQUEST or msg.type < NLMSG_MIN_TYPE:
            if msg.type == NLMSG_NOOP and flags & NLM_F_REQUEST and len(msg.payload) >= 4:
                self._join(client, _U32.unpack_from(msg.payload)[0])
            if flags & NLM_F_ACK:
                out.append(error_message(msg, 0))
            return
        try:
            dump = self._dispatch(client, msg, out)
        except RequestError as e:
            out.append(error_message(msg, e.errno, e.reason))
            return
        if dump is not None:
            # Replies so far go first; the dump follows as the client reads.
            self._send(client, out)
            out.clear()
            client.dumps.append((msg, dump))
            self._pump(client)
        elif flags & NLM_F_ACK:
            out.append(error_message(msg, 0))

    def _dispatch(self, client: Client, msg: Message, out: list[bytes]) -> Iterator[bytes] | None:
        is_dump = msg.flags & NLM_F_DUMP == NLM_F_DUMP
        if msg.type == GENL_ID_CTRL:
            if is_dump:
                return self._ctrl_dump(msg)
            out.append(
                encode_message(GENL_ID_CTRL, 0, msg.seq, client.port_id, self.controller.get(msg))
            )
            return None
        family = self.families.get(msg.type)
        if family is None:
            raise RequestError(errno.ENOENT, f"no generic netlink family {msg.type}")
        cmd, _version, dp_ifindex, start = split_request(msg)
        op = family.ops.get(cmd)
        if op is None or (op.dumpit is None if is_dump else op.doit is None):
            raise RequestError(
                errno.EOPNOTSUPP,
                f"{family.name} has no command {cmd}" + (" dump" if is_dump else ""),
            )
        if op.admin and not client.privileged:
            raise RequestError(errno.EPERM, f"{family.name} command {cmd} needs root")
        attrs = parse_attrs(msg.payload, start, family.policy)
        req = Request(
            msg,
            family.id,
            family.version,
            cmd,
            dp_ifindex,
            attrs,
            client.port_id,
            client.privileged,
            has_listeners=self._has_listeners,
        )
        if is_dump:
            assert op.dumpit is not None
            return self._dump_messages(req, op.dumpit(req))
        assert op.doit is not None
        op.doit(req)
        out.extend(req.replies)
        for group, note, exclude in req.notifications:
            self._broadcast(group, note, exclude)
        return None

    def _ctrl_dump(self, msg: Message) -> Iterator[bytes]:
        for payload in self.controller.dump():
            yield encode_message(GENL_ID_CTRL, NLM_F_MULTI, msg.seq, msg.pid, payload)

    @staticmethod
    def _dump_messages(req: Request, items: DumpItems) -> Iterator[bytes]:
        for cmd, dp_ifindex, attrs in items:
            yield req.message(cmd, dp_ifindex, attrs, flags=NLM_F_MULTI)

    # --- output ------------------------------------------------------------------------

    def _send(self, client: Client, messages: list[bytes]) -> None:
        """Queue ``messages`` in as few datagrams as fit, and send what the socket takes."""
        if not messages or client.closed:
            return
        chunk: list[bytes] = []
        size = 0
        for m in messages:
            if chunk and size + len(m) > MAX_DATAGRAM:
                client.out.append(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(m)
            size += len(m)
        client.out.append(b"".join(chunk))
        self._flush(client)

    def _flush(self, client: Client) -> bool:
        """Send queued datagrams; False if the socket is full (or the client gone)."""
        out = client.out
        while out:
            try:
                client.sock.send(out[0])
            except BlockingIOError:
                if self._grow(client):
                    continue
                return False
            except OSError:
                self._drop(client)
                return False
            out.popleft()
        return True

    def _pump(self, client: Client) -> None:
        """Send queued output, then the next datagrams of pending dumps."""
        while self._flush(client) and client.dumps:
            msg, items = client.dumps[0]
            batch: list[bytes] = []
            size = 0
            finished = False
            while size < MAX_DATAGRAM:
                try:
                    m = next(items)
                except StopIteration:
                    batch.append(done_message(msg))
                    finished = True
                    break
                except RequestError as e:
                    batch.append(done_message(msg, e.errno, e.reason))
                    finished = True
                    break
                batch.append(m)
                size += len(m)
            if finished:
                client.dumps.popleft()
            client.out.append(b"".join(batch))
        self._update_interest(client)

    def _queue_upcall(self, port_id: int, messages: list[bytes], done: Delivered) -> None:
        client = self._clients.get(port_id)
        if client is None:
            done(False)
            return
        pending = self._upcalls.get(client)
        if pending is None:
            pending = self._upcalls[client] = []
        pending.append((messages, done))

    def _flush_upcalls(self) -> None:
        """Send the upcalls queued so far, a few datagrams per client."""
        if not self._upcalls:
            return
        queued, self._upcalls = self._upcalls, {}
        for client, upcalls in queued.items():
            batch: list[bytes] = []
            dones: list[Delivered] = []
            size = 0
            for messages, done in upcalls:
                n = sum(len(m) for m in messages)
                if dones and size + n > MAX_DATAGRAM:
                    self._send_upcalls(client, batch, dones)
                    batch, dones, size = [], [], 0
                batch.extend(messages)
                dones.append(done)
                size += n
            self._send_upcalls(client, batch, dones)

    def _send_upcalls(self, client: Client, messages: list[bytes], dones: list[Delivered]) -> None:
        """One datagram of upcalls: they all go, or are all lost."""
        ok = not client.closed and self._deliver(client.port_id, b"".join(messages))
        for done in dones:
            done(ok)

    def _deliver(self, port_id: int, message: bytes) -> bool:
        """Unsolicited delivery (upcalls, a notification): now or never."""
        client = self._clients.get(port_id)
        if client is None or client.out:
            return False
        try:
            client.sock.send(message)
        except BlockingIOError:
            if self._grow(client):
                return self._deliver(port_id, message)
            return False
        except OSError:
            self._drop(client)
            return False
        return True

    def _join(self, client: Client, group: int) -> None:
        known = {gid for f in self.families.values() for gid in f.groups.values()}
        if group in known:
            client.groups.add(group)
            self._groups.setdefault(group, set()).add(client)

    def _has_listeners(self, group: int) -> bool:
        return bool(self._groups.get(group))

    def _absorb_memberships(self) -> None:
        """Take group joins still queued on any socket, before a notification goes out.

        A kernel socket joins a group synchronously (setsockopt); on the unix
        socket the join is a message, which may still wait on the joiner's
        socket while another client's request announces something.  A client
        that joined and then asked (on another socket) for a change must
        still hear of it, so pending joins are read first.
        """
        peek = socket.MSG_PEEK | socket.MSG_DONTWAIT | socket.MSG_TRUNC
        head = bytearray(NLMSG_HDRLEN + 4)
        for client in list(self._clients.values()):
            while not client.closed:
                try:
                    # MSG_TRUNC: the datagram's whole length, to take lone joins only.
                    n = client.sock.recv_into(head, len(head), peek)
                except OSError:
                    break
                if n != len(head):
                    break
                size, type_, flags, _seq, _pid = NLMSG_HDR.unpack_from(head)
                if (
                    type_ != NLMSG_NOOP
                    or size != n
                    or flags & (NLM_F_ACK | NLM_F_REQUEST) != NLM_F_REQUEST
                ):
                    break
                try:
                    client.sock.recv(n, socket.MSG_DONTWAIT)
                except OSError:
                    break
                self._join(client, _U32.unpack_from(head, NLMSG_HDRLEN)[0])

    def _broadcast(self, group: int, message: bytes, exclude: int | None) -> None:
        self._absorb_memberships()
        for client in list(self._groups.get(group, ())):
            if client.port_id != exclude:
                self._deliver(client.port_id, message)

    def _broadcast_raw(self, group: int, message: bytes) -> None:
        self._broadcast(group, message, None)


class _PortReadable:
    """A port's selector callback, told apart from the clients' (see `_port_last`)."""

    __slots__ = ("port",)

    def __init__(self, port: Port) -> None:
        self.port = port

    def __call__(self, _mask: int) -> None:
        self.port.on_readable()


def _port_last(event: tuple[selectors.SelectorKey, int]) -> bool:
    return type(event[0].data) is _PortReadable


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the other end of a SEQPACKET connection has gone."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP)
    return any(ev & (select.POLLRDHUP | select.POLLHUP) for _, ev in poller.poll(0))


def _claim(path: str) -> None:
    """Make ``path`` free for a new server: refuse if one answers there, clear a stale one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UsageError(f"{path} exists and is not a socket; not touching it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        # A socket file nobody listens on: a server that died without cleaning up.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise AlreadyExistsError(
        f"a userspace datapath already serves {path}",
        errno=errno.EADDRINUSE,
        hint="stop it first, or give this one another --socket",
    )

"""The userspace datapath against unprivileged clients: limits, a reserve for root, big requests.

The socket is 0666 by design (anyone may look, as with the kernel's generic
netlink); these tests play a user (``nobody``) who opens many connections and
never reads, and check that root still gets served, promptly, and that the
server neither spins nor pins much memory.  The server runs as a
``python -m odpctl.datapath`` process, so that its CPU time, file limit and
sockets are its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import select
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from odpctl.errors import OdpError
from odpctl.netlink.attrs import attr_str
from odpctl.netlink.genl import (
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    CTRL_VERSION,
    GENL_ID_CTRL,
    genl_payload,
)
from odpctl.netlink.message import (
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSG_HDR,
    NLMSG_NOOP,
    decode_messages,
    encode_message,
    parse_error,
)
from odpctl.netlink.transport import UnixTransport
from odpctl.odp.dpif import Dpif

from .conftest import REPO

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="switching to nobody needs root"),
]

NOBODY = 65534
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(name="spawn")
def spawn_fixture(socket_dir: str) -> Iterator[Spawn]:
    """Factory: a server process on ``socket_dir``/dp.sock (file limit ``nofile``), reachable
    by nobody; each is killed at the end."""
    os.chmod(socket_dir, 0o755)  # nobody must reach the socket (not under a 0700 /tmp)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str, nofile: int | None = None) -> subprocess.Popen[bytes]:
        path = os.path.join(socket_dir, "dp.sock")

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        proc = subprocess.Popen(
            [sys.executable, "-m", "odpctl.datapath", "--socket", path, *args],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            preexec_fn=limit,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        deadline = time.monotonic() + 15
        while not _answers(path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        return proc

    yield spawn
    for proc in procs:
        proc.kill()
        proc.wait(10)


def _answers(path: str) -> bool:
    try:
        with Dpif.open(f"unix:{path}") as dpif:
            dpif.list_datapaths()
    except OdpError:
        return False
    return True


def _path(proc: subprocess.Popen[bytes]) -> str:
    argv = proc.args
    assert isinstance(argv, list)  # as spawn starts it
    return str(argv[argv.index("--socket") + 1])


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Nobody:
    """A forked child, as nobody, holding ``count`` connections until closed.

    ``greeted`` connections got the server's greeting, ``refused`` got an
    error or were hung up on; with ``flood`` each greeted one is sent family
    lookups for a second, never reading the replies.
    """

    def __init__(self, path: str, count: int, *, flood: bool = False) -> None:
        report_r, report_w = os.pipe()
        self._hold_r, hold_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.close(report_r)
                os.close(hold_w)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                socks, greeted, refused = _connect_many(path, count)
                if flood:
                    _flood(socks)
                os.write(report_w, struct.pack("=II", greeted, refused))
                os.read(self._hold_r, 1)  # until the parent closes its end
                code = 0
            finally:
                os._exit(code)
        os.close(report_w)
        os.close(self._hold_r)
        self._hold_w = hold_w
        ready, _, _ = select.select([report_r], [], [], 60)
        data = os.read(report_r, 8) if ready else b""
        os.close(report_r)
        assert len(data) == 8, "the unprivileged client did not report"
        self.greeted, self.refused = struct.unpack("=II", data)

    def close(self) -> None:
        os.close(self._hold_w)
        os.waitpid(self.pid, 0)


@contextlib.contextmanager
def as_nobody(path: str, count: int, *, flood: bool = False) -> Iterator[Nobody]:
    nobody = Nobody(path, count, flood=flood)
    try:
        yield nobody
    finally:
        nobody.close()


def _connect_many(path: str, count: int) -> tuple[list[socket.socket], int, int]:
    socks, greeted, refused = [], 0, 0
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(5)
        try:
            sock.connect(path)
            data = sock.recv(64)
        except OSError:
            sock.close()
            refused += 1
            continue
        if len(data) >= 16 and NLMSG_HDR.unpack_from(data)[1] == NLMSG_NOOP:
            greeted += 1
            sock.setblocking(False)
            socks.append(sock)
        else:
            refused += 1
            sock.close()
    return socks, greeted, refused


def _lookup(port_id: int = 0) -> bytes:
    payload = genl_payload(
        CTRL_CMD_GETFAMILY, CTRL_VERSION, attr_str(CTRL_ATTR_FAMILY_NAME, "ovs_flow")
    )
    return encode_message(GENL_ID_CTRL, NLM_F_REQUEST, 1, port_id, payload)


def _flood(socks: list[socket.socket]) -> None:
    request = _lookup()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        for sock in socks:
            with contextlib.suppress(OSError):
                for _ in range(50):
                    sock.send(request)


def _timed_list(path: str) -> float:
    start = time.monotonic()
    with Dpif.open(f"unix:{path}") as dpif:
        dpif.list_datapaths()
    return time.monotonic() - start


def _server_sockets(pid: int) -> list[tuple[int, int]]:
    """(bytes queued to send, send buffer size) of each connection of process ``pid``."""
    out = subprocess.run(
        ["ss", "-x", "-m", "-p", "-H", "state", "connected"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    found = []
    for line in out.splitlines():
        if f"pid={pid}," in line and (m := re.search(r"skmem:\(r\d+,rb\d+,t(\d+),tb(\d+)", line)):
            found.append((int(m[1]), int(m[2])))
    return found


def test_connections_of_a_user_are_limited_root_is_not(spawn: Spawn) -> None:
    server = spawn()
    path = _path(server)
    with as_nobody(path, 100) as nobody:
        assert (nobody.greeted, nobody.refused) == (64, 36)
        with as_nobody(path, 1) as one_more:  # the same user, from another process
            assert one_more.greeted == 0
        roots = [Dpif.open(f"unix:{path}") for _ in range(100)]
        try:
            assert all(len(d.list_datapaths()) == 0 for d in roots)
        finally:
            for d in roots:
                d.close()
    with as_nobody(path, 10) as nobody:  # their connections closed: counted no more
        assert nobody.greeted == 10


def test_the_refusal_is_said_to_the_client(spawn: Spawn) -> None:
    server = spawn("--user-connections", "1")
    path = _path(server)
    code = f"""
import os
from odpctl.netlink.transport import UnixTransport
from odpctl.errors import OdpError
os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
first = UnixTransport({path!r})
try:
    UnixTransport({path!r})
except OdpError as exc:
    print(type(exc).__name__, exc.errno, exc.message)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=30,
    )
    assert done.stdout.startswith(f"KernelRefusedError {errno.EUSERS} "), done
    assert "too many connections from uid 65534" in done.stdout


def test_root_keeps_fds_when_a_user_takes_the_rest(spawn: Spawn) -> None:
    server = spawn("--user-connections", "10000", nofile=256)
    path = _path(server)
    with as_nobody(path, 400) as nobody:
        assert nobody.greeted < 256 - 16 and nobody.refused == 400 - nobody.greeted
        took = _timed_list(path)
        assert took < 1.0, f"root's request took {took:.2f} s"


def test_out_of_fds_does_not_spin(spawn: Spawn) -> None:
    server = spawn(nofile=64)
    path = _path(server)
    held = []
    try:
        for _ in range(100):  # root: past the server's file limit
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(path)
            held.append(sock)
        time.sleep(0.5)
        cpu = _cpu(server.pid)
        time.sleep(1.0)
        spent = _cpu(server.pid) - cpu
        assert spent < 0.15, f"the server spent {spent:.2f} s of CPU in 1 s out of fds"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while not _answers(path):
        assert time.monotonic() < deadline, "the server did not recover its fds"
        time.sleep(0.1)


def test_a_client_that_never_reads_pins_little(spawn: Spawn) -> None:
    server = spawn()
    path = _path(server)
    with as_nobody(path, 20, flood=True) as nobody:
        assert nobody.greeted == 20
        sockets = _server_sockets(server.pid)
        assert len(sockets) >= 20, sockets
        pinned = sum(queued for queued, _ in sockets)
        biggest = max(size for _, size in sockets)
        print(f"20 never-reading clients pin {pinned / 1e6:.1f} MB; send buffers <= {biggest}")
        assert biggest <= 512 * 1024 and pinned <= 20 * 512 * 1024
        took = _timed_list(path)
        assert took < 1.0, f"root's request took {took:.2f} s"


@pytest.mark.parametrize("size", [300 * 1024, 800 * 1024, 2 * 1024 * 1024])
def test_every_request_gets_a_reply_whatever_its_size(spawn: Spawn, size: int) -> None:
    server = spawn()
    transport = UnixTransport(_path(server))
    try:
        request = bytearray(_lookup(transport.port_id))
        request += bytes(size - len(request))
        struct.pack_into("=I", request, 0, size)
        sock = transport._sock
        sock.setsockopt(socket.SOL_SOCKET, 32, 4 * size)  # SO_SNDBUFFORCE: it must leave
        sock.send(bytes(request))
        sock.settimeout(5)
        reply = sock.recv(65536)
    finally:
        transport.close()
    (message,) = decode_messages(reply)
    assert message.type == NLMSG_ERROR and message.seq == 1
    assert parse_error(message.payload, message.flags)[0] == errno.EMSGSIZE
    assert _answers(_path(server))


@pytest.mark.usefixtures("socket_dir")
def test_socket_mode_and_group_say_who_may_connect(spawn: Spawn) -> None:
    server = spawn("--socket-mode", "0660", "--socket-group", "4242")
    path = _path(server)
    st = os.stat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, 4242)
    with as_nobody(path, 1) as nobody:
        assert (nobody.greeted, nobody.refused) == (0, 1)
    assert _answers(path)


@pytest.mark.parametrize(
    "args",
    [("--socket-mode", "0999"), ("--socket-group", "no-such-gr"), ("--user-connections", "-1")],
)
def test_bad_access_options_are_one_line(socket_dir: str, args: tuple[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "odpctl.datapath", "--socket", f"{socket_dir}/x.sock", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=30,
    )
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done
    assert args[0] in done.stderr and not os.path.exists(f"{socket_dir}/x.sock")

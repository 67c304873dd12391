"""The userspace datapath server itself: its socket, its protocol, its lifetime.

Userspace only: these poke at what the kernel datapath has no equivalent
of (a server process, a unix socket) or send it raw bytes.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

from odpctl.datapath.server import Server
from odpctl.errors import AlreadyExistsError, UsageError
from odpctl.netlink.attrs import attr, attr_str, attr_u32
from odpctl.netlink.genl import resolve_family
from odpctl.netlink.message import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    decode_messages,
    encode_message,
    parse_error,
)
from odpctl.netlink.transport import UnixTransport
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.header import odp_payload
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.odp.uapi import DATAPATH_FAMILY, FLOW_FAMILY, PACKET_FAMILY, VPORT_FAMILY, VportType
from odpctl.odp.vport import Vport

from .conftest import REPO, Host, RunningServer, start_server_thread
from .test_traffic import ping

R = NLM_F_REQUEST | NLM_F_ACK


class RawClient:
    """A client that sends whatever bytes it is given and reads what comes back."""

    def __init__(self, path: str) -> None:
        self.t = UnixTransport(path)
        self.seq = 100

    def send(self, data: bytes) -> None:
        self.t.send(data)

    def request(self, type_: int, flags: int, payload: bytes) -> list[tuple[int, int]]:
        """(message type, errno or 0) of every reply up to the ACK/error/DONE."""
        self.seq += 1
        self.t.send(encode_message(type_, flags, self.seq, self.t.port_id, payload))
        out: list[tuple[int, int]] = []
        while True:
            for m in decode_messages(self.t.recv()):
                if m.seq != self.seq:
                    continue
                if m.type == NLMSG_ERROR:
                    out.append((m.type, parse_error(m.payload, m.flags)[0]))
                    return out
                if m.type == NLMSG_DONE:
                    out.append((m.type, -struct.unpack_from("=i", m.payload)[0]))
                    return out
                out.append((m.type, 0))

    def close(self) -> None:
        self.t.close()


def family_ids(path: str) -> dict[str, int]:
    with Dpif.open(f"unix:{path}") as d:
        conn = d._conn
        return {
            n: resolve_family(conn, n).id
            for n in (DATAPATH_FAMILY, VPORT_FAMILY, FLOW_FAMILY, PACKET_FAMILY)
        }


def test_families_and_groups_are_found_by_name(dp_server: RunningServer) -> None:
    with Dpif.open(f"unix:{dp_server.path}") as d:
        conn = d._conn
        vport = resolve_family(conn, VPORT_FAMILY)
        assert vport.version == 1 and vport.hdrsize == 4
        assert "ovs_vport" in vport.groups
        assert resolve_family(conn, DATAPATH_FAMILY).version == 2
        assert "ovs_flow" in resolve_family(conn, FLOW_FAMILY).groups
        with pytest.raises(Exception, match="not found"):
            resolve_family(conn, "ovs_meter")


def test_malformed_requests_get_the_kernels_errors(dp_server: RunningServer) -> None:
    ids = family_ids(dp_server.path)
    dp_id, vp_id, fl_id, pk_id = (
        ids[n] for n in (DATAPATH_FAMILY, VPORT_FAMILY, FLOW_FAMILY, PACKET_FAMILY)
    )
    c = RawClient(dp_server.path)
    with Dpif.open(f"unix:{dp_server.path}") as d:
        ifindex = d.create_datapath("dpm").ifindex
    eth_key = attr(1, attr_u32(3, 1) + attr(4, bytes(12)))
    cases = [
        # (family, flags, payload, errno the kernel answers)
        (dp_id, R, b"\x03", errno.EINVAL),  # shorter than genlmsghdr
        (dp_id, R, struct.pack("=BBH", 3, 2, 0), errno.EINVAL),  # no ovs_header
        (dp_id, R, odp_payload(1, 2, 0, attr(1, b"dpm")), errno.EINVAL),  # name without NUL
        (dp_id, R, odp_payload(3, 2, 0, attr_str(1, "dpm") + attr(2, b"\x01")), errno.ERANGE),
        (dp_id, R, odp_payload(1, 2, 0, attr_str(1, "x" * 20) + attr_u32(2, 0)), errno.EINVAL),
        (dp_id, R, odp_payload(1, 2, 0, attr_str(1, "dpz")), errno.EINVAL),  # no upcall PID
        (dp_id, R, odp_payload(9, 2, 0, b""), errno.EOPNOTSUPP),  # no such command
        (0x7FF0, R, odp_payload(3, 2, 0, b""), errno.ENOENT),  # no such family
        (dp_id, R | 0x300, odp_payload(1, 2, 0, b""), errno.EOPNOTSUPP),  # a "dump" of NEW
        (dp_id, R, odp_payload(3, 2, 0, b""), errno.ENODEV),
        (
            vp_id,
            R,
            odp_payload(1, 1, ifindex, attr_str(3, "v") + attr_u32(2, 2) + attr(5, b"")),
            errno.EINVAL,
        ),
        (
            vp_id,
            R,
            odp_payload(1, 1, ifindex, attr_str(3, "v") + attr_u32(2, 200) + attr_u32(5, 0)),
            errno.EAFNOSUPPORT,
        ),
        (fl_id, R, odp_payload(1, 1, ifindex, b""), errno.EINVAL),  # no key
        (fl_id, R, odp_payload(1, 1, ifindex, eth_key), errno.EINVAL),  # no actions
        (fl_id, R, odp_payload(1, 1, ifindex, eth_key + attr(2, b"\x01")), errno.ERANGE),
        (fl_id, R, odp_payload(1, 1, ifindex, eth_key + attr(2, attr(77, b""))), errno.EINVAL),
        (
            fl_id,
            R,
            odp_payload(1, 1, ifindex, eth_key + attr(2, b"") + attr(9, b"")),
            errno.ERANGE,
        ),  # an empty UFID
        (fl_id, R, odp_payload(1, 1, 4242, eth_key + attr(2, b"")), errno.ENODEV),
        (
            fl_id,
            R,
            odp_payload(
                1,
                1,
                ifindex,
                attr(1, attr_u32(3, 1) + attr_u32(3, 1) + attr(4, bytes(12))) + attr(2, b""),
            ),
            errno.EINVAL,
        ),  # a key attribute twice
        (pk_id, R, odp_payload(3, 1, ifindex, b""), errno.EINVAL),
        (
            pk_id,
            R,
            odp_payload(3, 1, ifindex, attr(1, bytes(10)) + attr(2, b"") + attr(3, b"")),
            errno.ERANGE,
        ),  # shorter than Ethernet
        (pk_id, R, odp_payload(1, 1, ifindex, b""), errno.EOPNOTSUPP),  # MISS is not a request
    ]
    for family, flags, payload, expected in cases:
        replies = c.request(family, flags, payload)
        assert replies[-1] == (NLMSG_ERROR, expected), (family, payload.hex(), replies)
    # A dump of a datapath that does not exist ends in DONE with the error.
    assert c.request(fl_id, NLM_F_REQUEST | NLM_F_DUMP, odp_payload(3, 1, 4242, b"")) == [
        (NLMSG_DONE, errno.ENODEV)
    ]
    # Messages without NLM_F_REQUEST, and control messages, are only acknowledged.
    assert c.request(dp_id, NLM_F_ACK, odp_payload(3, 2, 0, b"")) == [(NLMSG_ERROR, 0)]
    assert c.request(3, R, b"") == [(NLMSG_ERROR, 0)]
    c.close()


def test_garbage_never_harms_the_server(dp_server: RunningServer) -> None:
    ids = list(family_ids(dp_server.path).values())
    rng = random.Random(1234)
    c = RawClient(dp_server.path)
    for i in range(3000):
        kind = i % 4
        if kind == 0:  # random bytes
            data = rng.randbytes(rng.randrange(0, 200))
        elif kind == 1:  # a good header, random payload
            body = rng.randbytes(rng.randrange(0, 120))
            data = encode_message(
                rng.choice(ids), R | rng.choice([0, 0x300, 0x600]), i, c.t.port_id, body
            )
        elif kind == 2:  # a good ODP header, random attributes
            body = odp_payload(
                rng.randrange(0, 6),
                1,
                rng.choice([0, 1, 4242]),
                rng.randbytes(rng.randrange(0, 120)),
            )
            data = encode_message(rng.choice(ids), R, i, c.t.port_id, body)
        else:  # a lying nlmsg_len
            data = struct.pack(
                "=IHHII", rng.randrange(0, 1 << 16), rng.choice(ids), R, i, c.t.port_id
            ) + rng.randbytes(rng.randrange(0, 64))
        c.send(data)
        while c.t.recv_nowait() is not None:
            pass
    c.close()
    # Still alive and answering.
    with Dpif.open(f"unix:{dp_server.path}") as d:
        d.create_datapath("alive")
        assert [x.name for x in d.list_datapaths()].count("alive") == 1


def test_a_client_that_goes_away_leaves_the_datapath_as_it_was(dp_server: RunningServer) -> None:
    d = Dpif.open(f"unix:{dp_server.path}")
    dp = d.create_datapath("dpg")
    channel = d.open_upcall_channel()
    d.set_datapath(dp, per_cpu_pids=[channel.port_id])
    key, mask = parse_key("in_port(1),eth(),eth_type(0x0806),arp()")
    d.add_flow(dp, Flow(key, mask, parse_actions("2")))
    # Half-way through a dump, without reading the rest: just gone.
    dump = d.dump_flows(dp)
    next(dump)
    channel.close()
    d._conn.transport.close()
    with Dpif.open(f"unix:{dp_server.path}") as other:
        again = other.get_datapath("dpg")
        assert again.ifindex == dp.ifindex
        assert len(list(other.dump_flows(again))) == 1


def test_many_clients_at_once(dp_server: RunningServer) -> None:
    clients = [Dpif.open(f"unix:{dp_server.path}") for _ in range(40)]
    try:
        ids = {c._conn.port_id for c in clients}
        assert len(ids) == 40 and 0 not in ids
        for i, c in enumerate(clients):
            c.create_datapath(f"m{i}")
        assert len(clients[0].list_datapaths()) == 40
    finally:
        for c in clients:
            c.close()


def test_slow_reader_of_a_big_dump(dp_server: RunningServer) -> None:
    # 20k flows do not fit the socket: the server must wait for the reader,
    # and keep serving others meanwhile.
    with Dpif.open(f"unix:{dp_server.path}") as d, Dpif.open(f"unix:{dp_server.path}") as o:
        dp = d.create_datapath("dpb")
        flows = []
        for i in range(20000):
            k, m = parse_key(
                f"in_port(1),eth(),eth_type(0x0800),"
                f"ipv4(dst=10.{i >> 8 & 255}.{i & 255}.0/255.255.255.0)"
            )
            flows.append(Flow(k, m, parse_actions("2")))
        assert all(r is None for r in d.add_flows(dp, flows))
        dump = d.dump_flows(dp)
        first = [next(dump) for _ in range(10)]
        assert len(first) == 10
        time.sleep(0.3)
        assert o.get_datapath("dpb").flows == 20000  # others are still served
        assert 10 + sum(1 for _ in dump) == 20000


def test_server_refuses_a_socket_already_served(dp_server: RunningServer) -> None:
    with pytest.raises(AlreadyExistsError):
        Server(dp_server.path).start()


def test_stale_socket_is_replaced_and_other_files_are_left(dp_ns: str, socket_dir: str) -> None:
    stale = os.path.join(socket_dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(stale)
    s.close()  # a socket file nobody listens on
    running = start_server_thread(stale, dp_ns)
    try:
        with Dpif.open(f"unix:{stale}") as d:
            d.create_datapath("dps")
    finally:
        running.stop()
    assert not os.path.exists(stale)  # removed on the way out
    plain = os.path.join(socket_dir, "plain")
    with open(plain, "w") as f:
        f.write("not a socket")
    with pytest.raises(UsageError):
        Server(plain).start()
    with open(plain) as f:
        assert f.read() == "not a socket"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_cleanly_on_signals(
    spawn_server: Callable[..., subprocess.Popen[str]],
    dp_ns: str,
    socket_dir: str,
    sig: signal.Signals,
) -> None:
    proc = spawn_server(dp_ns)
    path = os.path.join(socket_dir, "dp.sock")
    with Dpif.open(f"unix:{path}") as d:
        d.create_datapath("dpq")
        d.add_vport("dpq", Vport("intq", VportType.INTERNAL))
    assert _link_exists(dp_ns, "dpq") and _link_exists(dp_ns, "intq")
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    assert not os.path.exists(path)
    # Its devices went with it.
    assert not _link_exists(dp_ns, "dpq") and not _link_exists(dp_ns, "intq")


def test_second_serve_on_the_same_socket_fails(
    spawn_server: Callable[..., subprocess.Popen[str]], dp_ns: str, socket_dir: str
) -> None:
    spawn_server(dp_ns)
    second = spawn_server(dp_ns, wait=False)
    assert second.wait(timeout=30) != 0
    assert second.stderr is not None and "already serves" in second.stderr.read()
    with Dpif.open(f"unix:{socket_dir}/dp.sock") as d:
        d.list_datapaths()  # the first one still answers


def _link_exists(ns: str, name: str) -> bool:
    return (
        subprocess.run(["ip", "-n", ns, "link", "show", name], capture_output=True).returncode == 0
    )


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_found_by_itself_per_namespace(netns: Callable[[], str], socket_dir: str) -> None:
    # With no kernel module, `auto` finds the userspace datapath serving the
    # namespace's default socket; another namespace has its own.
    env = dict(os.environ, PYTHONPATH=str(REPO), ODPCTL_RUNTIME_DIR=socket_dir)
    env.pop("ODPCTL_DATAPATH", None)
    ns_a, ns_b = netns(), netns()
    procs = []
    try:
        for ns in (ns_a, ns_b):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "odpctl.datapath", "--netns", ns],
                    env=env,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        code = """
            import sys
            from odpctl.odp.dpif import Dpif
            from odpctl.odp.endpoint import default_datapath_socket
            ns = sys.argv[1]
            for _ in range(200):
                if default_datapath_socket(ns).exists():
                    break
                __import__("time").sleep(0.05)
            with Dpif.open(netns=ns) as d:
                if sys.argv[2] == "create":
                    d.create_datapath("only-" + ns[-4:])
                print(d.endpoint.kind, sorted(x.name for x in d.list_datapaths()))
        """
        for ns in (ns_a, ns_b):
            out = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code), ns, "create"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
        for ns in (ns_a, ns_b):
            out = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code), ns, "list"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.stdout.split(None, 1) == ["unix", f"['only-{ns[-4:]}']\n"]
        # ODPCTL_DATAPATH=unix:PATH names one explicitly.
        from odpctl.netlink.rundir import runtime_dir

        path_b = os.path.join(socket_dir, runtime_dir(ns_b).name, "datapath.sock")
        env_b = dict(env, ODPCTL_DATAPATH=f"unix:{path_b}")
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from odpctl.odp.dpif import Dpif;"
                "print([x.name for x in Dpif.open().list_datapaths()])",
            ],
            env=env_b,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip() == f"['only-{ns_b[-4:]}']", out.stderr
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=20) == 0
            if p.stderr:
                p.stderr.close()


def test_the_datapath_survives_the_router_that_drives_it(
    spawn_server: Callable[..., subprocess.Popen[str]],
    dp_ns: str,
    socket_dir: str,
    host: Callable[[str], tuple[Host, str]],
) -> None:
    spawn_server(dp_ns)
    path = os.path.join(socket_dir, "dp.sock")
    a, a_if = host("10.6.0.1/24")
    b, b_if = host("10.6.0.2/24")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # A "router" that sets everything up, listens for upcalls, then dies hard.
    router = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from odpctl.odp.dpif import Dpif
        from odpctl.odp.flow import Flow
        from odpctl.odp.vport import Vport
        from odpctl.odp.text.keys import parse_key
        from odpctl.odp.text.actions import parse_actions
        d = Dpif.open("unix:{path}")
        ch = d.open_upcall_channel()
        dp = d.create_datapath("dpr", upcall_pid=ch.port_id)
        pa = d.add_vport(dp, Vport("{a_if}", upcall_pids=(ch.port_id,))).port_no
        pb = d.add_vport(dp, Vport("{b_if}", upcall_pids=(ch.port_id,))).port_no
        for src, dst in ((pa, pb), (pb, pa)):
            k, m = parse_key(f"in_port({{src}}),eth()")
            d.add_flow(dp, Flow(k, m, parse_actions(str(dst))))
        print("ready", flush=True)
        time.sleep(3600)
    """),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert router.stdout is not None and router.stdout.readline().strip() == "ready"
        ping(a, b.ip)
        router.kill()
        router.wait()
    finally:
        if router.poll() is None:
            router.kill()
            router.wait()
        if router.stdout:
            router.stdout.close()
    # The router is gone; its flows keep forwarding.
    ping(a, b.ip)
    with Dpif.open(f"unix:{path}") as d:
        dp = d.get_datapath("dpr")
        assert len(list(d.dump_flows(dp))) == 2
        # A restarted router takes over: new upcall PIDs, and misses reach it.
        with d.open_upcall_channel() as ch:
            for port in d.list_vports(dp):
                d.set_vport(dp, port.port_no or 0, upcall_pids=[ch.port_id])
            d.flush_flows(dp)
            subprocess.run(
                ["ip", "netns", "exec", a.ns, "ping", "-c", "1", "-W", "1", "-I", a.ifname, b.ip],
                capture_output=True,
            )
            assert ch.receive(timeout=5) is not None


def test_only_root_may_change_things(dp_server: RunningServer, socket_dir: str) -> None:
    os.chmod(socket_dir, 0o755)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # The interpreter may not be readable by nobody: drop privileges once running.
    code = f"""
        import os
        from odpctl.odp.dpif import Dpif
        from odpctl.errors import PermissionDeniedError
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        d = Dpif.open("unix:{dp_server.path}")
        print(len(d.list_datapaths()))
        try:
            d.create_datapath("nope")
        except PermissionDeniedError:
            print("EPERM")
    """
    with Dpif.open(f"unix:{dp_server.path}") as d:
        d.create_datapath("dpo")
    out = _python(code, env)
    assert out.stdout.split() == ["1", "EPERM"], out.stderr

"""The fast path encrypted by the kernel (ESP), routers with a password on the kernel datapath.

The underlay is captured on host 0's bridge port with an AF_PACKET socket: the
containers' ping payload must not be on the wire, ESP must be.  Replayed ESP
packets are refused by the receiving state's replay window, a forged one by
its authentication, both counted in status; a plaintext VXLAN
packet forged in a peer's name is dropped by the firewall (and delivered once
the drop rule is taken away, which shows the forgery was a good one).  A
router leaves no state, policy, rule or flow behind on SIGTERM; after SIGKILL the
next start flushes them; a new connection gets new SPIs.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from router.helpers import wait_until

from odpctl.crypto import esp
from odpctl.crypto.firewall import IPT_IN, IPT_OUT
from odpctl.crypto.xfrm import SecurityAssociation, Xfrm
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import Container, OverlayLab
from odpctl.errors import OdpError
from odpctl.netlink.netns import netns
from odpctl.odp.dpif import Dpif

from .router_fixtures import router_logs

pytestmark = pytest.mark.timeout(300)

PATTERN = "6f64706374657374"  # "odpctest"
PAYLOAD = bytes.fromhex(PATTERN)
ETH_P_ALL = 0x0003
IPPROTO_ESP = 50
VXLAN_PORT = 6784


@pytest.fixture(name="overlay")
def esp_overlay_fixture(request: pytest.FixtureRequest) -> Iterator[OverlayLab]:
    """2 hosts (or as many as the test's indirect parameter says) x 1 container,
    routers not started; all removed afterwards."""
    lab = Lab("odpe")
    try:
        built = OverlayLab(lab, hosts=getattr(request, "param", 2), containers=1, datapath="kernel")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def start(overlay: OverlayLab, i: int) -> None:
    password = overlay.tmp / "password"
    if not password.exists():
        password.write_text(secrets.token_hex(16))
    overlay.start_router(i, extra=("--password-file", str(password)))


def esp_of(overlay: OverlayLab, i: int) -> list[dict[str, Any]]:
    """Router ``i``'s connections' ESP states (empty while it does not answer)."""
    try:
        fastdp = overlay.status(i)["overlay"]["fastdp"]
    except OdpError:
        return []
    return [c["esp"] for c in fastdp["connections"].values() if c.get("esp")]


def wait_esp(overlay: OverlayLab, hosts: list[int], timeout: float = 60) -> None:
    def ready() -> bool:
        return all(
            len(states := esp_of(overlay, i)) == len(overlay.hosts) - 1
            and all(s["mode"] == "esp" for s in states)
            for i in hosts
        )

    if not wait_until(ready, timeout):
        raise AssertionError(
            f"ESP not up: {[esp_of(overlay, i) for i in hosts]}\n{router_logs(overlay)}"
        )
    overlay.wait_ready(timeout=timeout, hosts=hosts, overlay="fastdp")


def ping(overlay: OverlayLab, src: Container, dst: Container, count: int = 3) -> bool:
    result = overlay.lab.run(
        src.ns,
        "ping",
        "-c",
        str(count),
        "-i",
        "0.2",
        "-W",
        "2",
        "-p",
        PATTERN,
        dst.address,
        timeout=30,
    )
    return result.returncode == 0


@dataclass
class Capture:
    """Every frame seen on one interface of a namespace, on a thread."""

    ns: str
    iface: str
    frames: list[bytes] = field(default_factory=list)
    sock: socket.socket | None = None
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Capture:
        with netns(self.ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((self.iface, 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        assert self.sock is not None
        while not self.done.is_set():
            with contextlib.suppress(TimeoutError):
                self.frames.append(self.sock.recv(65535))

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(5)
        if self.sock is not None:
            self.sock.close()

    def ip_packets(self, proto: int, src: str, dst: str) -> list[bytes]:
        """Ethernet frames carrying IPv4 ``proto`` from ``src`` to ``dst``."""
        want = socket.inet_aton(src) + socket.inet_aton(dst)
        return [
            f
            for f in self.frames
            if len(f) > 34 and f[12:14] == b"\x08\x00" and f[23] == proto and f[26:34] == want
        ]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0,
        0x4000,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _mac(overlay: OverlayLab, ns: str, iface: str) -> bytes:
    text = overlay.lab.run(ns, "cat", f"/sys/class/net/{iface}/address").stdout.strip()
    return bytes.fromhex(text.replace(":", ""))


def send_frames(ns: str, iface: str, frames: list[bytes]) -> None:
    with netns(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((iface, 0))
        for frame in frames:
            sock.send(frame)


def xfrm_in(ns: str) -> tuple[list[SecurityAssociation], list[Any]]:
    with netns(ns):
        xfrm = Xfrm()
    with xfrm:
        return list(xfrm.states()), list(xfrm.policies())


def ipt_rules(overlay: OverlayLab, ns: str) -> str:
    done = overlay.lab.run(ns, "iptables-legacy", "-w", "-t", "mangle", "-S")
    assert done.returncode == 0, done.stderr
    return done.stdout


def listen_udp(ns: str, address: str, port: int) -> tuple[socket.socket, Callable[[], bytes]]:
    with netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    sock.settimeout(3)

    def receive() -> bytes:
        try:
            return sock.recv(2048)
        except TimeoutError:
            return b""

    return sock, receive


@pytest.mark.parametrize("overlay", [3], indirect=True)
def test_encrypted_on_the_wire_replays_and_forgeries_refused(overlay: OverlayLab) -> None:
    h0, h1, h2 = overlay.hosts
    c0, c1, c2 = (h.containers[0] for h in overlay.hosts)
    for i in range(3):
        start(overlay, i)
    wait_esp(overlay, [0, 1, 2])
    status = overlay.status(0)
    assert status["router"]["esp"]["available"] is True
    assert status["router"]["esp"]["firewall"] == "iptables"

    # The routers' views (what their misses decide on) follow the connections at
    # their next tick: frames may take the fallback until then.
    time.sleep(1.5)
    assert ping(overlay, c0, c1, count=1), router_logs(overlay)
    with Capture(overlay.underlay, "u0") as wire:
        assert ping(overlay, c0, c1), router_logs(overlay)
        assert ping(overlay, c1, c0), router_logs(overlay)
        assert ping(overlay, c2, c0), router_logs(overlay)
        time.sleep(0.3)
    assert wire.frames, "nothing captured"
    assert not [f for f in wire.frames if PAYLOAD in f], "the ping payload is on the wire"
    esp_0_to_1 = wire.ip_packets(IPPROTO_ESP, h0.address, h1.address)
    assert len(esp_0_to_1) >= 3, "no ESP from host 0 to host 1"
    assert wire.ip_packets(IPPROTO_ESP, h1.address, h0.address)
    assert wire.ip_packets(IPPROTO_ESP, h2.address, h0.address)
    plain = [
        f
        for f in wire.ip_packets(socket.IPPROTO_UDP, h0.address, h1.address)
        if f[36:38] == struct.pack("!H", VXLAN_PORT)
    ]
    assert not plain, "plaintext VXLAN between the hosts"

    # Replay: host 1's inbound state counts the packets its window refuses.
    def inbound() -> SecurityAssociation:
        (sa,) = [
            s
            for s in xfrm_in(h1.ns)[0]
            if s.src == h0.address and s.dst == h1.address and esp.ours(s.reqid)
        ]
        return sa

    before = inbound()
    send_frames(overlay.underlay, "u1", esp_0_to_1)
    assert wait_until(lambda: inbound().replayed >= before.replayed + len(esp_0_to_1), 10), (
        before,
        inbound(),
    )
    # A packet with a sequence number not seen yet, but not the one it was sealed
    # with (the number is authenticated): refused, and counted as such.
    frame = bytearray(esp_0_to_1[-1])
    seq = struct.unpack_from("!I", frame, 38)[0]
    struct.pack_into("!I", frame, 38, seq + 500)
    send_frames(overlay.underlay, "u1", [bytes(frame)])
    assert wait_until(lambda: inbound().integrity_failed == before.integrity_failed + 1, 10), (
        before,
        inbound(),
    )
    shown = [
        c["esp"]
        for c in overlay.status(1)["overlay"]["fastdp"]["connections"].values()
        if c["ip"] == h0.address
    ]
    assert shown[0]["replays"] == inbound().replayed, shown
    assert shown[0]["auth_failures"] == inbound().integrity_failed, shown

    # Forgery: plaintext VXLAN in host 0's name, carrying a datagram to container 1.
    mac0, mac1 = _mac(overlay, c0.ns, "eth0"), _mac(overlay, c1.ns, "eth0")
    ids = {i: overlay.status(i)["short_id"] for i in (0, 1)}
    vni = ids[0] | ids[1] << 12
    inner = (
        mac1
        + mac0
        + b"\x08\x00"
        + _ipv4(c0.address, c1.address, socket.IPPROTO_UDP, _udp(4000, 9999, b"forged"))
    )
    vxlan = struct.pack("!II", 0x08000000, vni << 8) + inner
    outer = (
        _mac(overlay, h1.ns, "eth0")
        + _mac(overlay, overlay.underlay, "u1")
        + b"\x08\x00"
        + _ipv4(h0.address, h1.address, socket.IPPROTO_UDP, _udp(50000, VXLAN_PORT, vxlan))
    )
    sock, receive = listen_udp(c1.ns, c1.address, 9999)
    with sock:
        send_frames(overlay.underlay, "u1", [outer])
        assert receive() == b"", "a forged plaintext VXLAN frame reached the container"
        # Without the drop rule the same frame gets through: it was the rule.
        rule = next(
            line
            for line in ipt_rules(overlay, h1.ns).splitlines()
            if line.startswith(f"-A {IPT_IN} -s {h0.address}/32")
        )
        done = overlay.lab.run(
            h1.ns, "iptables-legacy", "-w", "-t", "mangle", "-D", *rule.split()[1:]
        )
        assert done.returncode == 0, done.stderr
        send_frames(overlay.underlay, "u1", [outer])
        assert receive() == b"forged", "the forged frame was not a good one"
    assert ping(overlay, c0, c1), router_logs(overlay)
    assert ping(overlay, c2, c1), router_logs(overlay)


def _ours(ns: str) -> tuple[list[SecurityAssociation], list[Any]]:
    states, policies = xfrm_in(ns)
    return (
        [s for s in states if esp.ours(s.reqid)],
        [p for p in policies if p.mark.value == esp.MARK],
    )


def test_no_state_left_after_sigterm_killed_leftovers_flushed_new_spis(overlay: OverlayLab) -> None:
    h0, h1 = overlay.hosts
    c0, c1 = h0.containers[0], h1.containers[0]
    for i in (0, 1):
        start(overlay, i)
    wait_esp(overlay, [0, 1])
    (first,) = esp_of(overlay, 0)
    states, policies = _ours(h1.ns)
    assert len(states) == 2 and len(policies) == 1, (states, policies)
    assert IPT_OUT in ipt_rules(overlay, h1.ns)

    # SIGTERM: nothing of ours is left in host 1.
    assert overlay.stop_router(1) == 0, router_logs(overlay)
    assert _ours(h1.ns) == ([], [])
    assert "ODPCTL" not in ipt_rules(overlay, h1.ns)
    # Nor a flow that would now carry frames to host 0 in clear.
    with Dpif.open("kernel", netns=h1.ns) as dpif:
        assert list(dpif.dump_flows("odp-router")) == []

    # A new connection has new SPIs.
    start(overlay, 1)
    wait_esp(overlay, [0, 1])
    (second,) = esp_of(overlay, 0)
    assert {second["spi_in"], second["spi_out"]}.isdisjoint({first["spi_in"], first["spi_out"]})
    assert ping(overlay, c0, c1), router_logs(overlay)

    # SIGKILL leaves everything; the next start flushes it.
    assert overlay.stop_router(1, signal.SIGKILL) == -signal.SIGKILL
    stale, _ = _ours(h1.ns)
    assert len(stale) == 2
    start(overlay, 1)
    wait_esp(overlay, [0, 1])
    # The killed router's flows went too: without their states they were plaintext.
    assert overlay.status(1)["router"]["flushes"] >= 1
    states, policies = _ours(h1.ns)
    assert len(states) == 2 and len(policies) == 1, (states, policies)
    assert {s.spi for s in states}.isdisjoint({s.spi for s in stale})
    rules = ipt_rules(overlay, h1.ns)
    assert rules.count(f"-j {IPT_OUT}") == 1 and rules.count(f"-A {IPT_IN} ") == 1, rules
    assert ping(overlay, c0, c1), router_logs(overlay)

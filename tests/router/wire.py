"""The underlay as an attacker sees it: capture frames on the bridge's ports, and
inject frames (replayed, or forged from a spoofed address) into a host's link."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass

from odpctl.netlink.netns import netns
from odpctl.overlay.flows import vni

ETH_P_ALL = 0x0003
_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


@dataclass(frozen=True)
class Datagram:
    frame: bytes  # the whole Ethernet frame, as captured
    src: str
    dst: str
    dport: int
    payload: bytes

    @property
    def replay(self) -> bytes:
        """The frame to send again: byte for byte, but for the UDP checksum, left
        out (a veth's sender may have left it to offload, unfinished)."""
        at = 14 + (self.frame[14] & 0x0F) * 4 + 6
        return self.frame[:at] + b"\0\0" + self.frame[at + 2 :]


def parse_udp(frame: bytes) -> Datagram | None:
    """The IPv4/UDP datagram in an Ethernet frame, or None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    _, dport, length, _ = _UDP.unpack_from(frame, 14 + ihl)
    start = 14 + ihl + 8
    return Datagram(
        frame,
        socket.inet_ntoa(frame[26:30]),
        socket.inet_ntoa(frame[30:34]),
        dport,
        frame[start : 14 + ihl + length],
    )


class Capture:
    """Every frame on every link of namespace ``ns``, from now until `close`."""

    def __init__(self, ns: str) -> None:
        with netns(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                self.frames.append(self.sock.recv(65535))

    def datagrams(self, since: int = 0) -> list[Datagram]:
        """The UDP datagrams captured (after the first ``since`` frames), each once."""
        seen: dict[bytes, Datagram] = {}
        for frame in self.frames[since:]:
            datagram = parse_udp(frame)
            if datagram is not None:
                seen.setdefault(frame, datagram)
        return list(seen.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def inject(ns: str, ifname: str, frames: list[bytes]) -> None:
    """Send ``frames`` byte for byte out of ``ifname`` in namespace ``ns``."""
    with netns(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((ifname, 0))
        for frame in frames:
            sock.send(frame)


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def udp_frame(
    src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int, payload: bytes
) -> bytes:
    """An Ethernet/IPv4/UDP frame (UDP checksum left out, as IPv4 allows)."""
    udp = _UDP.pack(sport, dport, 8 + len(payload), 0) + payload
    ip = _IP.pack(
        0x45,
        0,
        20 + len(udp),
        0x1234,
        0,
        64,
        17,
        0,
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return _mac(dst_mac) + _mac(src_mac) + b"\x08\x00" + ip + udp


def vxlan(src_short: int, dst_short: int, inner: bytes) -> bytes:
    """A VXLAN payload whose VNI names the two peers, as the routers' tunnels write it."""
    return struct.pack("!II", 0x08000000, vni(src_short, dst_short) << 8) + inner


def plaintext_fallback(src_short: int, dst_short: int, inner: bytes) -> bytes:
    return struct.pack("!2sHH", b"OS", src_short, dst_short) + inner


_LISTENER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    print(s.recv(65535).hex(), flush=True)
"""


class Listener:
    """A UDP socket in a container: the payloads it received, in order."""

    def __init__(self, ns: str, port: int) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.received: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.received.append(bytes.fromhex(line.strip()))

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(5)


def send_udp(run_ns: list[str], dst: str, port: int, payload: bytes) -> None:
    """Send one UDP datagram from a container (``run_ns``: its `ip netns exec` prefix)."""
    code = (
        f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        f".sendto(bytes.fromhex({payload.hex()!r}), ({dst!r}, {port}))"
    )
    subprocess.run([*run_ns, sys.executable, "-c", code], check=True, timeout=30)

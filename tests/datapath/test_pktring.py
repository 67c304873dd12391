"""The rings of a packet socket, against real devices.

RX: a burst of thousands of small frames fits the ring while nobody reads;
a frame bigger than a slot comes whole, in its turn; an overrun is counted
exactly.  TX: the kernel refuses a frame with ENOBUFS when the device's queue is full (a
traffic shaper with a tiny queue stands for a busy device here) or when the
other end of a veth has a smaller MTU; a device that is down refuses
everything.  None of them may lose, reorder or wedge the frames queued
after the one refused.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from odpctl.datapath.pktring import PACKET_AUXDATA, SOL_PACKET, VNET_LEN, Rings, rx_frame_size
from odpctl.netlink.netns import netns as in_netns

PACKET_VNET_HDR = 15
ETH_P_EXPERIMENTAL = 0x88B5
FRAMES = 64  # as many as the ring has slots: a second round wraps around it


@dataclass
class Pair:
    """Rings on ``va``; a socket receiving what arrives on its peer ``vb``."""

    ns: str
    rings: Rings
    receiver: socket.socket

    def received(self) -> list[int]:
        """The sequence numbers of the frames that arrived, until none for a while."""
        seqs = []
        while True:
            try:
                seqs.append(int.from_bytes(self.receiver.recv(4096)[14:18], "big"))
            except TimeoutError:
                return seqs

    def send(self, seqs: range, size: Callable[[int], int] = lambda _seq: 1000) -> None:
        """Queue a frame for each of ``seqs``, then flush until the ring is done."""
        for seq in seqs:
            assert self.rings.queue(_frame(seq, size(seq))), f"no room for frame {seq}"
        deadline = time.monotonic() + 10
        while not self.rings.flush():
            assert time.monotonic() < deadline, "queued frames never went out"
            time.sleep(0.002)


def _frame(seq: int, size: int) -> bytes:
    header = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETH_P_EXPERIMENTAL.to_bytes(2, "big")
    return bytes(VNET_LEN) + header + seq.to_bytes(4, "big") + bytes(size - 4)


def _wait_running(run: Callable[..., str], ns: str) -> None:
    # Until the link watcher has seen the carrier, the device's queue drops
    # every frame and says nothing.
    deadline = time.monotonic() + 10
    while "state UP" not in run("ip", "link", "show", "va", netns=ns):
        assert time.monotonic() < deadline, "va never came up"
        time.sleep(0.05)


@pytest.fixture
def make_pair(netns: Callable[[], str], run: Callable[..., str]) -> Iterator[Callable[..., Pair]]:
    """Factory: a veth pair ``va``/``vb`` in a new namespace, ``va`` behind a
    shaper that holds about two frames if ``shaped``, ``vb`` of ``peer_mtu``."""
    opened: list[socket.socket] = []

    def make(shaped: bool = False, peer_mtu: int = 1500) -> Pair:
        ns = netns()
        run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", netns=ns)
        run("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", netns=ns)
        run("ip", "link", "set", "vb", "mtu", str(peer_mtu), netns=ns)
        if shaped:
            run(
                "tc",
                "qdisc",
                "add",
                "dev",
                "va",
                "root",
                "tbf",
                "rate",
                "2mbit",
                "burst",
                "1600",
                "limit",
                "3000",
                netns=ns,
            )
        for dev in ("va", "vb"):
            run("ip", "link", "set", dev, "up", netns=ns)
        _wait_running(run, ns)
        with in_netns(ns):
            sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            opened.append(sender)
            receiver = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_EXPERIMENTAL)
            )
            opened.append(receiver)
        sender.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        rings = Rings(sender)
        sender.bind(("va", 0))
        receiver.bind(("vb", ETH_P_EXPERIMENTAL))
        receiver.settimeout(0.5)
        return Pair(ns, rings, receiver)

    yield make
    for sock in opened:
        sock.close()


def test_frames_a_busy_device_refuses_are_dropped_and_the_rest_go_out_in_order(
    make_pair: Callable[..., Pair],
) -> None:
    pair = make_pair(shaped=True)
    for start in (0, FRAMES):
        dropped = pair.rings.tx_dropped
        pair.send(range(start, start + FRAMES))
        got = pair.received()
        assert pair.rings.tx_dropped > dropped, "the shaper took everything: this proves nothing"
        assert got == sorted(got) and set(got) <= set(range(start, start + FRAMES))
        assert len(got) + pair.rings.tx_dropped - dropped == FRAMES
    assert pair.rings.tx_failed == 0


def test_frames_too_big_for_the_peer_are_dropped_alone(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair(peer_mtu=1000)
    too_big = {seq for seq in range(2 * FRAMES) if seq % 5 == 2}
    for start in (0, FRAMES):  # twice round the ring
        pair.send(range(start, start + FRAMES), lambda seq: 1200 if seq in too_big else 600)
        assert pair.received() == [s for s in range(start, start + FRAMES) if s not in too_big]
    assert pair.rings.tx_dropped == len(too_big)
    assert pair.rings.tx_failed == 0


def test_frames_for_a_device_that_is_down_fail_and_the_ring_goes_on(
    make_pair: Callable[..., Pair], run: Callable[..., str]
) -> None:
    pair = make_pair()
    run("ip", "link", "set", "va", "down", netns=pair.ns)
    pair.send(range(3))  # nothing to retry on a device that is down
    assert pair.rings.tx_failed == 3
    run("ip", "link", "set", "va", "up", netns=pair.ns)
    _wait_running(run, pair.ns)
    # Round the whole ring: had the failed frames stayed queued, this wedges.
    for start in range(100, 100 + FRAMES, 16):
        pair.send(range(start, start + 16))
    assert pair.received() == list(range(100, 100 + FRAMES))
    assert pair.rings.tx_failed == 3


def _rx_pair(run: Callable[..., str], ns: str, mtu: int = 1500) -> tuple[Rings, socket.socket]:
    """RX rings on ``vb`` (sized for ``mtu``); a plain socket sending on its peer ``va``."""
    run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", netns=ns)
    run("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", netns=ns)
    for dev in ("va", "vb"):
        run("ip", "link", "set", dev, "mtu", "9000", "up", netns=ns)
    _wait_running(run, ns)
    with in_netns(ns):
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        receiver = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    receiver.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    receiver.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    rings = Rings(receiver, mtu)
    receiver.bind(("vb", ETH_P_EXPERIMENTAL))
    receiver.setblocking(False)
    sender.bind(("va", 0))
    return rings, sender


def _drain(rings: Rings, want: int) -> list[bytes]:
    """Frames from the ring (virtio-net header off) until ``want`` or none for a while."""
    got: list[bytes] = []
    quiet = time.monotonic() + 0.5
    while len(got) < want and time.monotonic() < quiet:
        batch = rings.receive(256)
        if batch:
            quiet = time.monotonic() + 0.5
        got.extend(data[VNET_LEN:] for data, _status, _tci, _tpid in batch)
    return got


@pytest.fixture
def rx_pair(
    netns: Callable[[], str], run: Callable[..., str]
) -> Iterator[Callable[..., tuple[Rings, socket.socket]]]:
    opened: list[tuple[Rings, socket.socket]] = []

    def make(mtu: int = 1500) -> tuple[Rings, socket.socket]:
        pair = _rx_pair(run, netns(), mtu)
        opened.append(pair)
        return pair

    yield make
    for rings, sender in opened:
        rings.close()
        sender.close()


def test_slots_are_sized_to_the_mtu() -> None:
    assert rx_frame_size(1500) == 2048
    assert rx_frame_size(1900) == 4096
    assert rx_frame_size(9000) == 16384


def test_a_burst_of_two_thousand_small_frames_fits_the_ring_unread(
    rx_pair: Callable[..., tuple[Rings, socket.socket]],
) -> None:
    rings, sender = rx_pair()
    for seq in range(2000):  # nobody reads meanwhile
        sender.send(_frame(seq, 60)[VNET_LEN:])
    got = _drain(rings, 2000)
    assert rings.dropped() == 0
    assert [int.from_bytes(f[14:18], "big") for f in got] == list(range(2000))


def test_a_frame_bigger_than_a_slot_comes_whole_in_its_turn(
    rx_pair: Callable[..., tuple[Rings, socket.socket]],
) -> None:
    rings, sender = rx_pair(mtu=1500)  # slots for 1500, a device that carries 9000
    sizes = [60, 5000, 60, 8000, 1400, 3000]
    for seq, size in enumerate(sizes):
        sender.send(_frame(seq, size)[VNET_LEN:])
    got = _drain(rings, len(sizes))
    assert [int.from_bytes(f[14:18], "big") for f in got] == list(range(len(sizes)))
    assert [len(f) - 14 for f in got] == sizes
    assert rings.truncated == 0


def test_an_overrun_is_counted_exactly(
    rx_pair: Callable[..., tuple[Rings, socket.socket]],
) -> None:
    rings, sender = rx_pair()
    sent = 6000  # past the ring's 4,096 slots, unread
    for seq in range(sent):
        sender.send(_frame(seq, 60)[VNET_LEN:])
    got = _drain(rings, sent)
    dropped = rings.dropped()
    assert dropped > 0, "the ring took everything: this proves nothing"
    assert len(got) + dropped == sent

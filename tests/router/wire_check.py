"""The wire with a mesh password, as an attacker on the underlay sees it: on the host's
userspace datapath and the guest's kernel datapath alike.

Three routers share a password; their containers ping with a recognisable
payload while the test captures every frame of the underlay's bridge ports.
Then it plays the attacker on that underlay: replays captured datagrams byte
for byte, forges VXLAN and plaintext fallback frames from a spoofed peer
address, restarts a router with a wrong password, and replays the old
captures once the connection has new keys.  None of it reaches a container.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import NetNS

from odpctl.demo.overlaylab import OverlayLab

from .helpers import wait_until
from .wire import Capture, Listener, inject, plaintext_fallback, send_udp, udp_frame, vxlan

PAYLOAD = "6f64706374657374"  # "odpctest", as ping -p repeats it
PORT = 7777
FORGED_MAC = "02:66:6f:72:67:65"


@pytest.fixture(name="capture")
def capture_fixture(overlay: OverlayLab) -> Iterator[Capture]:
    capture = Capture(overlay.underlay)
    try:
        yield capture
    finally:
        capture.close()


def _password(tmp_path: Path, text: str) -> tuple[str, str]:
    path = tmp_path / f"pw-{text}"
    path.write_text(text + "\n")
    return ("--password-file", str(path))


def _links(overlay: OverlayLab, i: int) -> dict[str, dict[str, Any]]:
    """Router ``i``'s established connections, by peer nickname."""
    conns = overlay.status(i)["router"]["connections"]
    return {c["nickname"]: c for c in conns if c["state"] == "established"}


def _drops(overlay: OverlayLab, i: int) -> dict[str, int]:
    drops: dict[str, int] = overlay.status(i)["router"]["encryption"]["drops"]
    return drops


def _mac(ns: str, ifname: str) -> str:
    with NetNS(ns) as ipr:
        (link,) = ipr.get_links(ifname=ifname)
        return str(link.get_attr("IFLA_ADDRESS"))


def _ping(overlay: OverlayLab, a: int, b: int) -> bool:
    src, dst = overlay.hosts[a].containers[0], overlay.hosts[b].containers[0]
    result = overlay.lab.run(
        src.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-p", PAYLOAD, dst.address, timeout=20
    )
    return result.returncode == 0


def _odpctl(overlay: OverlayLab, *argv: str) -> str:
    host = overlay.hosts[0]
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("odpctl")),
            "--netns",
            host.ns,
            *argv,
            "--control",
            str(host.control),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _check_faces(overlay: OverlayLab) -> None:
    """What `peer list`, `router status` and `watch stats` show of it, on host 0."""
    conns = json.loads(_odpctl(overlay, "peer", "list", "--json"))["connections"]
    host1 = next(c for c in conns if c["nickname"] == "host1")
    assert host1["encryption"] == "sealed" and host1["replays"] >= 1, host1
    assert host1["auth_failures"] == 0 and host1["spis"] is None
    table = _odpctl(overlay, "peer", "list")
    assert "encryption sealed: fast path needs kernel ESP (esp4, gcm)" in table, table
    assert overlay.status(0)["router"]["warnings"] == []  # a password, and a private network
    status = _odpctl(overlay, "router", "status")
    assert (
        "encryption: sealed (fast path needs kernel ESP (esp4, gcm): using sealed fallback)"
    ) in status, status
    assert "vxlan: plaintext VXLAN 1" in status
    (line,) = _odpctl(overlay, "watch", "stats", "--json", "--count", "1").splitlines()
    assert json.loads(line)["refused"]["fallback: plaintext fallback"] == 1, line


def check_sealed_wire(overlay: OverlayLab, capture: Capture, tmp_path: Path) -> None:
    """Pings sealed; replays, forgeries, a wrong password and old keys refused."""
    password = _password(tmp_path, "right")
    for host in overlay.hosts:
        overlay.start_router(host.index, extra=password)
    overlay.wait_ready(timeout=60)
    h0, h1 = overlay.hosts[0], overlay.hosts[1]
    c0 = h0.containers[0]
    for i in range(3):
        for link in _links(overlay, i).values():
            assert link["encryption"] == "sealed", link
            assert link["overlay"] == "fallback", link
            assert link["encryption_reason"] == (
                "fast path needs kernel ESP (esp4, gcm): using sealed fallback"
            )

    # Pings cross, and their payload is nowhere on the wire.
    assert _ping(overlay, 0, 1) and _ping(overlay, 2, 0) and _ping(overlay, 1, 2)
    assert capture.frames
    assert not [f for f in capture.frames if bytes.fromhex(PAYLOAD) in f]
    carried = [d for d in capture.datagrams() if d.dport == 6783]
    assert carried and all(d.payload[:2] == b"OE" for d in carried)

    # A probe from host 1's container arrives once; its replays never.
    listener = Listener(c0.ns, PORT)
    try:
        mark = len(capture.frames)
        send_udp(["ip", "netns", "exec", h1.containers[0].ns], c0.address, PORT, b"probe")
        assert wait_until(lambda: listener.received == [b"probe"], 10), listener.received
        to_h0 = [
            d.replay
            for d in capture.datagrams(mark)
            if d.dst == h0.address and d.src == h1.address and d.dport == 6783
        ]
        assert to_h0
        inject(overlay.underlay, "u0", to_h0)
        assert wait_until(lambda: _links(overlay, 0)["host1"]["replays"] >= len(to_h0), 10), (
            len(to_h0),
            _links(overlay, 0)["host1"],
            _drops(overlay, 0),
        )

        # Forgeries from host 1's address: VXLAN and a plaintext fallback datagram.
        macs_before = overlay.status(0)["router"]["mac_cache"]
        short = {i: overlay.status(i)["short_id"] for i in (0, 1)}
        inner = udp_frame(
            FORGED_MAC,
            _mac(c0.ns, "eth0"),
            h1.containers[0].address,
            c0.address,
            4000,
            PORT,
            b"forged",
        )
        spoof = (_mac(overlay.underlay, "u1"), _mac(h0.ns, "eth0"), h1.address, h0.address)
        inject(
            overlay.underlay,
            "u0",
            [
                udp_frame(*spoof, 4789, 6784, vxlan(short[1], short[0], inner)),
                udp_frame(*spoof, 6783, 6783, plaintext_fallback(short[1], short[0], inner)),
                udp_frame(*spoof, 6783, 6783, b"XX" + bytes(4) + inner),
            ],
        )
        assert wait_until(
            lambda: (
                {"vxlan: plaintext VXLAN", "fallback: plaintext fallback", "fallback: bad magic"}
                <= set(_drops(overlay, 0))
            ),
            10,
        ), _drops(overlay, 0)
        assert overlay.status(0)["router"]["mac_cache"] == macs_before
        assert _ping(overlay, 1, 0)
        assert listener.received == [b"probe"]
        _check_faces(overlay)

        # A router with the wrong password is refused; with the right one it gets
        # new keys, under which the old captures no longer open.
        overlay.stop_router(1)
        overlay.start_router(1, extra=_password(tmp_path, "wrong"))
        assert wait_until(lambda: "password" in overlay.log_tail(1, 200), 30), overlay.log_tail(1)
        assert "host1" not in _links(overlay, 0)
        overlay.stop_router(1)
        overlay.start_router(1, extra=password)
        overlay.wait_ready(timeout=60)
        assert _ping(overlay, 1, 0)
        inject(overlay.underlay, "u0", to_h0)
        assert wait_until(lambda: _links(overlay, 0)["host1"]["auth_failures"] >= len(to_h0), 10), (
            _links(overlay, 0)["host1"]
        )
        assert _links(overlay, 0)["host1"]["replays"] == 0
        assert listener.received == [b"probe"]
    finally:
        listener.close()


def check_trusted_subnets(overlay: OverlayLab, capture: Capture, tmp_path: Path) -> None:
    """With a password, hosts in --trusted-subnets exchange plaintext VXLAN."""
    for host in overlay.hosts:
        overlay.start_router(
            host.index,
            extra=(
                *_password(tmp_path, "right"),
                "--trusted-subnets",
                "10.9.0.0/16,192.168.77.0/24",
            ),
        )
    overlay.wait_ready(timeout=60, overlay="fastdp")
    link = _links(overlay, 0)["host1"]
    assert link["encryption"] == "none", link
    assert link["encryption_reason"] == "192.168.77.2 is in a trusted subnet"
    assert _ping(overlay, 0, 1)
    vxlan_payload = [
        d for d in capture.datagrams() if d.dport == 6784 and bytes.fromhex(PAYLOAD) in d.payload
    ]
    assert vxlan_payload
    assert not _drops(overlay, 1)


def check_relay(overlay: OverlayLab, capture: Capture, tmp_path: Path) -> None:
    """Hosts 0 and 2 cannot reach each other: host 1 relays, opening with one
    connection's keys and sealing with the other's."""
    h0, h2 = overlay.hosts[0], overlay.hosts[2]
    for host, other in ((h0, h2), (h2, h0)):
        for rule in (
            ("add", "table", "inet", "odpcut"),
            ("add", "chain", "inet", "odpcut", "in", "{ type filter hook input priority 0 ; }"),
            ("add", "rule", "inet", "odpcut", "in", "ip", "saddr", other.address, "drop"),
        ):
            done = overlay.lab.run(host.ns, "nft", *rule)
            assert done.returncode == 0, done.stderr
    password = _password(tmp_path, "right")
    for host in overlay.hosts:
        overlay.start_router(host.index, extra=password)
    overlay.wait_ready(timeout=60, hosts=[0, 1])
    overlay.wait_ready(timeout=60, hosts=[1, 2])
    assert wait_until(lambda: _ping(overlay, 0, 2), 30), overlay.log_tail(1, 40)
    assert set(_links(overlay, 0)) == {"host1"} and set(_links(overlay, 2)) == {"host1"}
    relay = overlay.status(1)["router"]
    assert relay["relayed"] > 0 and relay["encryption"]["drops"] == {}, relay
    assert not [f for f in capture.frames if bytes.fromhex(PAYLOAD) in f]
    assert _ping(overlay, 2, 0)

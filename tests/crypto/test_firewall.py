"""The firewall backends for ESP, each in a network namespace of its own.

nftables runs on this host's kernel; iptables-legacy too (the kernel guest has
only the latter, and the router tests there use it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from collections.abc import Callable

import pytest

from odpctl.crypto.esp import MARK, MASK
from odpctl.crypto.firewall import (
    IPT_IN,
    IPT_OUT,
    NFT_SET,
    NFT_TABLE,
    IptablesFirewall,
    NftFirewall,
    install_firewall,
)
from odpctl.errors import KernelRefusedError
from odpctl.netlink.netns import netns as inside

PEER, OTHER = "192.168.77.2", "192.168.77.3"


def _nft_table(run: Callable[..., str], ns: str) -> dict[str, list[dict[str, object]]]:
    listing = json.loads(run("nft", "-j", "list", "ruleset", netns=ns))["nftables"]
    out: dict[str, list[dict[str, object]]] = {}
    for item in listing:
        for kind, body in item.items():
            if kind != "metainfo" and body.get("table", body.get("name")) == NFT_TABLE:
                out.setdefault(kind, []).append(body)
    return out


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian package nftables)")
def test_nftables_table_set_and_rules(netns: Callable[[], str], run: Callable[..., str]) -> None:
    ns = netns()
    fw = NftFirewall(6784, MARK, MASK)
    with inside(ns):
        assert install_firewall(6784, MARK, MASK).name == "nftables"
        fw.install()
        fw.protect(PEER)
        fw.protect(OTHER)
        fw.unprotect(OTHER)
    table = _nft_table(run, ns)
    (peers,) = [s for s in table["set"] if s["name"] == NFT_SET]
    assert peers["elem"] == [PEER]
    chains = {c["name"]: c for c in table["chain"]}
    assert chains["esp-out"]["type"] == "route" and chains["esp-out"]["hook"] == "output"
    assert chains["esp-in"]["hook"] == "input"
    rules = json.dumps(table["rule"])
    assert '"drop"' in rules and '"ipsec"' in rules and str(MARK) in rules

    # A second install (a restarted router) starts from nothing; remove leaves nothing.
    with inside(ns):
        fw.install()
    assert "elem" not in _nft_table(run, ns)["set"][0]
    with inside(ns):
        fw.remove()
        fw.remove()
    assert _nft_table(run, ns) == {}


def _mangle(run: Callable[..., str], ns: str) -> list[str]:
    return run("iptables-legacy", "-w", "-t", "mangle", "-S", netns=ns).splitlines()


@pytest.mark.skipif(
    shutil.which("iptables-legacy") is None,
    reason="needs iptables-legacy (Debian package iptables)",
)
def test_iptables_chains_and_rules(netns: Callable[[], str], run: Callable[..., str]) -> None:
    ns = netns()
    fw = IptablesFirewall(6784, MARK, MASK)
    with inside(ns):
        fw.install()
        fw.protect(PEER)
        fw.protect(OTHER)
        fw.unprotect(OTHER)
    rules = _mangle(run, ns)
    assert f"-A OUTPUT -j {IPT_OUT}" in rules and f"-A INPUT -j {IPT_IN}" in rules
    (mark,) = [r for r in rules if r.startswith(f"-A {IPT_OUT}")]
    assert PEER in mark and "--dport 6784" in mark and "0x6f640000/0xffff0000" in mark
    (drop,) = [r for r in rules if r.startswith(f"-A {IPT_IN}")]
    assert PEER in drop and "--pol none" in drop and drop.endswith("-j DROP")

    # A killed router's chains (even a doubled jump) go at the next install.
    run("iptables-legacy", "-w", "-t", "mangle", "-I", "OUTPUT", "-j", IPT_OUT, netns=ns)
    with inside(ns):
        fw.install()
    rules = _mangle(run, ns)
    assert rules.count(f"-A OUTPUT -j {IPT_OUT}") == 1
    assert not [r for r in rules if r.startswith((f"-A {IPT_OUT}", f"-A {IPT_IN}"))]
    with inside(ns):
        fw.remove()
        with pytest.raises(KernelRefusedError, match="ESP rule for"):
            fw.unprotect(PEER)
    assert not [r for r in _mangle(run, ns) if "ODPCTL" in r]


US, THEM = "10.61.0.1", "10.61.0.2"


def _udp(ns: str, address: str, port: int) -> socket.socket:
    with inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    sock.settimeout(0.5)
    return sock


def _arrives(src_ns: str, dst_ns: str, dst: str, port: int) -> bool:
    """Whether a datagram sent from ``src_ns`` to ``dst``:``port`` gets there."""
    anywhere = "0.0.0.0"  # noqa: S104 - the sender's address, in its own namespace
    with _udp(dst_ns, dst, port) as receiver, _udp(src_ns, anywhere, 0) as sender:
        with contextlib.suppress(OSError):  # a blackhole route may refuse it at once
            sender.sendto(b"probe", (dst, port))
        try:
            return receiver.recv(100) == b"probe"
        except TimeoutError:
            return False


BACKENDS = [
    pytest.param(NftFirewall, "nft", id="nftables"),
    pytest.param(IptablesFirewall, "iptables-legacy", id="iptables"),
]


@pytest.mark.parametrize(("backend", "tool"), BACKENDS)
def test_rules_mark_outbound_and_drop_inbound_vxlan(
    backend: type[NftFirewall | IptablesFirewall],
    tool: str,
    netns: Callable[[], str],
    run: Callable[..., str],
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"needs {tool}")
    us, them = netns(), netns()
    run(
        "ip",
        "link",
        "add",
        "eth0",
        "netns",
        us,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        them,
    )
    for ns, address in ((us, US), (them, THEM)):
        run("ip", "addr", "add", f"{address}/24", "dev", "eth0", netns=ns)
        run("ip", "link", "set", "eth0", "up", netns=ns)
    # Marked packets are routed into a blackhole: what the xfrm policy does with
    # the mark (send it through ESP) cannot be seen on a kernel without ESP, but
    # that the mark makes the kernel route the packet again can.
    run("ip", "rule", "add", "fwmark", f"{MARK:#x}/{MASK:#x}", "table", "100", netns=us)
    run("ip", "route", "add", "blackhole", THEM, "table", "100", netns=us)
    assert _arrives(us, them, THEM, 6784) and _arrives(them, us, US, 6784)

    fw = backend(6784, MARK, MASK)
    with inside(us):
        fw.install()
        fw.protect(THEM)
    assert not _arrives(us, them, THEM, 6784), "VXLAN to the peer was not marked"
    assert not _arrives(them, us, US, 6784), "plaintext VXLAN from the peer was not dropped"
    assert _arrives(us, them, THEM, 6785) and _arrives(them, us, US, 6785)  # not VXLAN
    with inside(us):
        fw.unprotect(THEM)
    assert _arrives(us, them, THEM, 6784) and _arrives(them, us, US, 6784)
    with inside(us):
        fw.remove()

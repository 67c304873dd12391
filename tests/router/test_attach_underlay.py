"""`router attach` refuses the interface that carries the mesh's own traffic (the underlay)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from odpctl.cli import run
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.netlink.netns import netns
from odpctl.overlay.underlay import underlay_use

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

# The mesh listening on every address (a listen address underlay_use judges; nothing binds).
ANY = "0.0.0.0"  # noqa: S104


@pytest.fixture(name="overlay")
def overlay_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpa")
    try:
        built = OverlayLab(lab, hosts=2, containers=1, datapath="userspace")
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def test_attach_refuses_the_underlay_interface(
    overlay: OverlayLab, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay.start_routers()
    overlay.wait_ready(timeout=60, overlay="fastdp")
    host = overlay.hosts[0]
    capsys.readouterr()
    assert run(["router", "attach", "eth0", "--control", str(host.control)]) == 2
    err = capsys.readouterr().err
    assert "eth0 carries the underlay" in err and overlay.hosts[1].address in err, err
    assert len(err.strip().splitlines()) == 1, err
    router = overlay.status(0)["router"]
    assert sorted(router["datapath"]["ifaces"]) == ["c0"]
    a, b = host.containers[0], overlay.hosts[1].containers[0]
    assert overlay.ping(a, b), overlay.log_tail(0, 40)
    # A container's interface is still welcome.
    extra = overlay.add_container(0, 5)
    assert run(["router", "attach", extra.iface, "--control", str(host.control)]) == 0


def test_the_listen_address_and_the_route_to_a_peer_are_found(overlay: OverlayLab) -> None:
    host, peer = overlay.hosts[0], overlay.hosts[1]
    with netns(host.ns):
        assert underlay_use("eth0", [peer.address], ANY) is not None
        assert underlay_use("c0", [peer.address], ANY) is None
        listen = underlay_use("eth0", [], host.address)
        assert listen is not None and "listen address" in listen
        assert underlay_use("lo", [], "127.0.0.1") is not None
        assert underlay_use("c0", ["not-an-address", "10.40.0.99"], ANY) is None
        assert socket.if_nametoindex("c0") > 0

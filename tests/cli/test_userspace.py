"""The command suite against the userspace datapath (`odpctl dp serve`), on this machine.

The userspace datapath needs no kernel module, so its run of the commands
happens here, in a network namespace of its own; the kernel suite runs the
same commands against both datapaths where the guest allows.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from odpctl.errors import EXIT_NOT_FOUND, EXIT_REFUSED

from .conftest import Result

ODPCTL = str(Path(sys.executable).with_name("odpctl"))


def _serve_exists() -> bool:
    try:
        return hasattr(importlib.import_module("odpctl.datapath"), "serve")
    except ImportError:
        return False


pytestmark = [
    pytest.mark.skipif(not _serve_exists(), reason="no userspace datapath (odpctl.datapath.serve)"),
    pytest.mark.skipif(not Path("/dev/net/tun").exists(), reason="no /dev/net/tun here"),
]


@pytest.fixture
def served(netns: Callable[[], str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(namespace, socket) of a userspace datapath started with `odpctl dp serve`."""
    ns = netns()
    sock = tmp_path / "dp.sock"
    server = subprocess.Popen(
        [ODPCTL, "--netns", ns, "dp", "serve", "--socket", str(sock)],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"odpctl dp serve did not start: {server.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield ns, str(sock)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def odpctl(cli: Callable[..., Result], served: tuple[str, str]) -> Callable[..., Result]:
    ns, sock = served
    return lambda *argv: cli("--netns", ns, "--datapath", f"unix:{sock}", *argv)


def _veth(run: Callable[..., str], ns: str, name: str) -> None:
    run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p", netns=ns)
    for end in (name, name + "p"):
        run("ip", "link", "set", end, "up", netns=ns)


def test_datapaths_and_ports(
    odpctl: Callable[..., Result], served: tuple[str, str], run: Callable[..., str]
) -> None:
    ns, _ = served
    _veth(run, ns, "ua")
    assert odpctl("dp", "add", "udp0", "ua").code == 0
    assert odpctl("dp", "list", "-f", "odp").out == "userspace@udp0\n"
    lines = odpctl("dp", "show", "-f", "odp").out.splitlines()
    assert lines[0] == "userspace@udp0:" and "  port 1: ua" in lines
    assert odpctl("vport", "add", "udp0", "uin", "-t", "internal", "--port-no", "9").code == 0
    ports = {p["name"]: p for p in json.loads(odpctl("vport", "list", "--json").out)["ports"]}
    assert ports["uin"]["port_no"] == 9 and ports["uin"]["type"] == "internal"
    assert odpctl("vport", "del", "udp0", "uin").code == 0
    assert odpctl("vport", "del", "udp0", "uin").code == EXIT_NOT_FOUND
    assert odpctl("dp", "add", "udp0").code == EXIT_REFUSED
    assert odpctl("dp", "del", "udp0").code == 0
    assert json.loads(odpctl("dp", "list", "--json").out) == {"datapaths": []}


def test_flows(
    odpctl: Callable[..., Result], served: tuple[str, str], run: Callable[..., str], tmp_path: Path
) -> None:
    ns, _ = served
    for name in ("fa", "fb"):
        _veth(run, ns, name)
    assert odpctl("dp", "add", "udp1", "fa", "fb").code == 0
    match = "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.1,frag=no)"
    assert odpctl("flow", "add", match, "2").code == 0
    line = f"{match}, packets:0, bytes:0, used:never, actions:2"
    assert odpctl("flow", "dump", "-f", "odp").out == line + "\n"
    assert odpctl("flow", "get", match, "-f", "odp").out == line + "\n"
    assert odpctl("flow", "add", match, "2").code == EXIT_REFUSED
    assert odpctl("flow", "mod", match, "fa").code == 0
    assert json.loads(odpctl("flow", "get", match, "--json").out)["flow"]["actions"] == "1"
    assert odpctl("flow", "del", match, "-s").out == "packets:0, bytes:0, used:never\n"
    flows = tmp_path / "flows"
    flows.write_text(
        "".join(
            f"in_port(1),eth(),eth_type(0x0800),ipv4(src=10.9.0.{i},frag=no) 2\n" for i in range(50)
        )
    )
    assert odpctl("flow", "add", "--file", str(flows)).out == "50 added\n"
    picked = json.loads(odpctl("flow", "dump", "--filter", "ipv4.src=10.9.0.7", "--json").out)
    assert [f["match"] for f in picked["flows"]] == [
        "in_port(1),eth(),eth_type(0x0800),ipv4(src=10.9.0.7,frag=no)"
    ]
    assert picked["total"] == 50
    assert odpctl("flow", "flush").code == 0
    assert json.loads(odpctl("flow", "dump", "--json").out)["total"] == 0

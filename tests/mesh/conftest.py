"""Mesh routers in network namespaces: a lab of hosts on one bridged underlay.

``mesh_lab(n)`` makes a bridge namespace (the underlay switch) and ``n`` host
namespaces, each with an ``eth0`` on 10.77.0.0/24 whose other end is a port
of the bridge (``p1``..``pn``, in the bridge namespace: ``link_down(i)`` cuts
host i off).  ``lab.start(i, ...)`` runs a bare mesh node in host i
(``tests/mesh/bare_node.py``) with a control socket and a log file.

Everything lives in the namespaces the ``netns`` fixture makes and deletes
(with every process inside), so nothing outlives a test, passed or failed;
the nodes are also stopped explicitly, so that their logs end cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from odpctl.control.client import ControlClient

REPO = Path(__file__).resolve().parents[2]
BARE_NODE = Path(__file__).with_name("bare_node.py")
# Quick heartbeats and retries: a partition is noticed in about a second.
FAST_ARGS = [
    "--heartbeat",
    "0.3",
    "--gossip-interval",
    "1",
    "--backoff-initial",
    "0.2",
    "--backoff-max",
    "1",
]


def host_ip(i: int) -> str:
    return f"10.77.0.{i}"


def host_name(i: int) -> str:
    return f"02:77:00:00:00:{i:02x}"


@dataclass
class Node:
    index: int
    ns: str
    control: Path
    log: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{host_ip(self.index)}:6783"

    def ask(self, cmd: str, **args: Any) -> Any:
        return ControlClient(self.control, timeout=5).request(cmd, **args)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Lab:
    bridge: str
    hosts: list[str]
    tmp: Path
    run: Callable[..., str]
    nodes: dict[int, Node] = field(default_factory=dict)

    def start(
        self,
        i: int,
        *extra: str,
        peers: tuple[int, ...] = (),
        control: bool = True,
        env: dict[str, str] | None = None,
    ) -> Node:
        ns = self.hosts[i - 1]
        log = self.tmp / f"node{i}.log"
        args = [
            "--listen",
            f"{host_ip(i)}:6783",
            "--name",
            host_name(i),
            "--nickname",
            f"host{i}",
            *FAST_ARGS,
            *extra,
            *(a for p in peers for a in ("--peer", host_ip(p))),
        ]
        node = self.nodes.get(i) or Node(i, ns, self.tmp / f"node{i}.sock", log, args)
        node.args = args
        if control:
            args += ["--control", str(node.control)]
        with open(log, "ab") as out:
            node.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, str(BARE_NODE), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )
        self.nodes[i] = node
        if control:
            wait(lambda: node.control.exists(), 10, f"node {i}'s control socket")
        return node

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[i]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(sig)
            node.proc.wait(10)
        if sig == signal.SIGKILL:
            # A killed node leaves its socket behind (as a crashed router does).
            assert node.control.exists()

    def link(self, i: int, state: str) -> None:
        self.run("ip", "link", "set", f"p{i}", state, netns=self.bridge)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.proc is not None:
                try:
                    node.proc.wait(5)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(5)


def wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < end:
        try:
            value = pred()
        except Exception as exc:  # e.g. the control socket not up yet
            last = exc
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout:g} s waiting for {what}"
        + (f" (last error: {last})" if last else "")
    )


@pytest.fixture
def mesh_lab(
    netns: Callable[[], str], run: Callable[..., str], tmp_path: Path
) -> Iterator[Callable[[int], Lab]]:
    labs: list[Lab] = []

    def make(n: int) -> Lab:
        bridge = netns()
        run("ip", "link", "add", "br0", "type", "bridge", netns=bridge)
        run("ip", "link", "set", "br0", "up", netns=bridge)
        hosts = []
        for i in range(1, n + 1):
            host = netns()
            # Both ends made in namespaces the test owns: nothing in the machine's own.
            run(
                "ip",
                "link",
                "add",
                f"p{i}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host,
                netns=bridge,
            )
            run("ip", "link", "set", f"p{i}", "master", "br0", "up", netns=bridge)
            run("ip", "addr", "add", f"{host_ip(i)}/24", "dev", "eth0", netns=host)
            run("ip", "link", "set", "eth0", "up", netns=host)
            hosts.append(host)
        lab = Lab(bridge, hosts, tmp_path, run)
        labs.append(lab)
        return lab

    yield make

    for lab in labs:
        with contextlib.suppress(Exception):
            lab.stop_all()
        # pytest shows this only for a test that failed: the routers' own story.
        for node in lab.nodes.values():
            sys.stderr.write(f"--- {node.log.name} ---\n{node.log_text()[-3000:]}\n")

"""A datapath with traffic, for the watch tests on both datapaths.

``Bed``: a datapath in a namespace of its own, with host namespaces plugged
into it by veth pairs (one port each), flows between them, and ping for
traffic.  The same code drives the kernel datapath (in the test-bed guest,
tests/kernel/test_watch_*.py) and the userspace one (``odpctl dp serve``,
on this machine, tests/watch/test_watch_userspace.py).

Imported as ``watch.bed`` (the suites' rootdir, tests/, is on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from odpctl.errors import OdpError
from odpctl.odp.actions import Output
from odpctl.odp.dpif import Dpif
from odpctl.odp.flow import Flow
from odpctl.odp.text.keys import parse_key
from odpctl.odp.vport import Vport

REPO = Path(__file__).resolve().parents[2]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Bed:
    dpif: Dpif
    ns: str  # where the datapath lives
    dp: str
    options: list[str]  # odpctl's global options that reach this datapath
    hosts: dict[str, int] = field(default_factory=dict)  # host namespace -> port number
    addresses: dict[str, str] = field(default_factory=dict)  # host namespace -> address

    def plug(self, host_ns: str, address: str, upcall_pid: int = 0) -> int:
        """A veth from ``host_ns`` (with ``address``/24, IPv6 off) into the datapath."""
        outer = f"w{len(self.hosts)}{os.getpid() % 10000}"
        ip(
            "-n",
            self.ns,
            "link",
            "add",
            outer,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            host_ns,
        )
        ip("-n", self.ns, "link", "set", outer, "up")
        # No IPv6 chatter: the only traffic is the test's own.
        subprocess.run(
            ["ip", "netns", "exec", host_ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            check=True,
            capture_output=True,
        )
        ip("-n", host_ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", host_ns, "link", "set", "eth0", "up")
        port = self.dpif.add_vport(self.dp, Vport(outer, upcall_pids=(upcall_pid,)))
        assert port.port_no is not None
        self.hosts[host_ns] = port.port_no
        self.addresses[host_ns] = address
        return port.port_no

    def connect(self, a: str, b: str, proto: str = "ipv4()", eth_type: int = 0x0800) -> None:
        """Flows carrying ARP and ``proto`` both ways between hosts ``a`` and ``b``."""
        pa, pb = self.hosts[a], self.hosts[b]
        for src, dst in ((pa, pb), (pb, pa)):
            for text in (
                f"in_port({src}),eth(),eth_type(0x0806),arp()",
                f"in_port({src}),eth(),eth_type({eth_type:#06x}),{proto}",
            ):
                key, mask = parse_key(text)
                self.dpif.add_flow(self.dp, Flow(key, mask, [Output(dst)]))

    def ping(self, a: str, b: str, count: int = 3, interval: float = 0.2) -> None:
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                a,
                "ping",
                "-c",
                str(count),
                "-i",
                str(interval),
                "-W",
                "2",
                self.addresses[b],
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    @contextlib.contextmanager
    def pinging(self, a: str, b: str, interval: float = 0.05) -> Iterator[None]:
        """Ping from ``a`` to ``b`` in the background while the block runs.

        The block starts once packets hit flows (a process is slow to start in
        the guest), so the flows between the two must be there.
        """
        hits = self.dpif.get_datapath(self.dp).hit
        proc = subprocess.Popen(
            ["ip", "netns", "exec", a, "ping", "-i", str(interval), "-W", "1", self.addresses[b]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: self.dpif.get_datapath(self.dp).hit > hits + 2,
                timeout=30,
                what="ping's packets to hit the flows",
            )
            yield
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def userspace_datapath(ns: str, socket_dir: str) -> Iterator[str]:
    """``python -m odpctl.datapath`` serving in ``ns``; yields its --datapath spec."""
    path = os.path.join(socket_dir, "dp.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "odpctl.datapath", "--socket", path, "--netns", ns],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"unix:{path}", ns):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"odpctl.datapath did not start: {proc.communicate()[1]}")
            time.sleep(0.05)
        yield f"unix:{path}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _answers(spec: str, ns: str) -> bool:
    if not os.path.exists(spec[len("unix:") :]):
        return False
    try:
        with Dpif.open(spec, netns=ns):
            return True
    except OdpError:
        return False


def wait_for(check: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

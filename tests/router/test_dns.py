"""DNS across a 3-host mesh (userspace datapath, network namespaces): names registered
on one host resolve from containers on the others, through glibc and dig.

Each host's router serves DNS on 10.53.0.1, an address on the host's loopback;
each host has one container, a namespace linked to its host by a veth
(169.254.53.0/30) with a route to that address, and a resolv.conf naming it.
The hosts' own resolv.conf names a fake upstream server in the underlay
namespace, so that nothing is ever forwarded to the machine's resolver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.dns.resolvconf import NETNS_ETC, write_resolv_conf

from .helpers import wait_until

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        shutil.which("dig") is None,
        reason="needs dig (Debian bind9-dnsutils, installed by ./setup)",
    ),
]

SERVER = "10.53.0.1"
UPSTREAM = "192.168.77.254"
DOMAIN = "odpctl.local"
ODPCTL = Path(sys.executable).with_name("odpctl")


@dataclass
class Mesh:
    overlay: OverlayLab
    containers: list[str]  # per host, its container's namespace

    def control(self, i: int) -> ControlClient:
        return ControlClient(self.overlay.hosts[i].control, timeout=5)

    def odpctl(self, i: int, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(ODPCTL),
                "--netns",
                self.overlay.hosts[i].ns,
                *argv,
                "--control",
                str(self.overlay.hosts[i].control),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def getent(self, i: int, name: str) -> str:
        result = self.overlay.lab.run(self.containers[i], "getent", "hosts", name, timeout=10)
        return result.stdout.split()[0] if result.returncode == 0 and result.stdout else ""

    def dig(self, i: int, name: str, *extra: str) -> str:
        result = self.overlay.lab.run(
            self.containers[i], "dig", f"@{SERVER}", "+tries=1", "+time=2", name, *extra, timeout=15
        )
        return result.stdout

    def resolves(self, i: int, name: str, address: str) -> bool:
        return self.getent(i, name) == address

    def nxdomain(self, i: int, name: str) -> bool:
        return _status(self.dig(i, name)) == "NXDOMAIN"

    def start_router(self, i: int) -> None:
        self.overlay.start_router(i, extra=("--dns-listen", SERVER))


def _status(dig_output: str) -> str:
    for line in dig_output.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return ""


# One mesh for the module's tests (each uses names of its own): building one costs
# seconds of routers starting and connecting.
@pytest.fixture(name="mesh", scope="module")
def mesh_fixture() -> Iterator[Mesh]:
    lab = Lab("odpd")
    written: list[Path] = []
    upstream: subprocess.Popen[bytes] | None = None
    overlay: OverlayLab | None = None
    try:
        overlay = OverlayLab(lab, containers=0, datapath="userspace")
        lab.address(overlay.underlay, "br0", f"{UPSTREAM}/24")
        upstream = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                overlay.underlay,
                sys.executable,
                str(Path(__file__).with_name("dns_upstream.py")),
                UPSTREAM,
                "53",
            ],
            stdout=subprocess.PIPE,
        )
        assert upstream.stdout is not None and upstream.stdout.readline() == b"ready\n"
        containers = []
        for host in overlay.hosts:
            lab.address(host.ns, "lo", f"{SERVER}/32")
            cns = lab.namespace(f"h{host.index}d")
            lab.veth(host.ns, "d0", cns, "eth0")
            lab.address(host.ns, "d0", "169.254.53.1/30")
            lab.address(cns, "eth0", "169.254.53.2/30")
            subprocess.run(
                ["ip", "netns", "exec", cns, "ip", "route", "add", SERVER, "via", "169.254.53.1"],
                check=True,
            )
            written.append(write_resolv_conf(cns, SERVER, DOMAIN))
            # The router's own upstream: the fake one (ip netns exec mounts this file).
            hosts_conf = NETNS_ETC / host.ns / "resolv.conf"
            hosts_conf.parent.mkdir(parents=True, exist_ok=True)
            hosts_conf.write_text(f"nameserver {UPSTREAM}\n")
            written.append(hosts_conf)
            containers.append(cns)
        mesh = Mesh(overlay, containers)
        for host in overlay.hosts:
            mesh.start_router(host.index)
        overlay.wait_ready(timeout=60)
        yield mesh
    finally:
        if upstream is not None:
            upstream.kill()
            upstream.wait()
        for path in written:
            shutil.rmtree(path.parent, ignore_errors=True)
        if overlay is not None:
            overlay.close()  # its lab's namespaces and routers too
        else:
            lab.close()


def test_names_resolve_across_hosts_and_go_when_removed(mesh: Mesh) -> None:
    added = mesh.odpctl(0, "dns", "add", "web2", "10.40.0.12")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added web2.odpctl.local. 10.40.0.12"
    assert mesh.odpctl(2, "dns", "add", "db", "10.40.0.31").returncode == 0
    for i in range(3):
        assert wait_until(partial(mesh.resolves, i, "web2", "10.40.0.12"), 10), (
            f"host {i}: {mesh.dig(i, 'web2.odpctl.local')}"
        )
        assert mesh.dig(i, "db.odpctl.local", "+short").strip() == "10.40.0.31"
        reverse = mesh.dig(i, "-x", "10.40.0.12", "+short").strip()
        assert reverse == "web2.odpctl.local."
    listed = mesh.odpctl(1, "dns", "list", "--json")
    assert '"hostname": "web2.odpctl.local."' in listed.stdout
    table = mesh.odpctl(1, "dns", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESS", "ORIGIN", "CONTAINER", "STATE"]
    assert "web2.odpctl.local.  10.40.0.12  host0" in table[2] and table[2].endswith("live")
    status = mesh.odpctl(1, "router", "status").stdout
    assert "2 name(s), 0 removed; serving odpctl.local. on 10.53.0.1:53" in status
    looked = mesh.odpctl(1, "dns", "lookup", "db")
    assert looked.stdout.split() == ["10.40.0.31", "db.odpctl.local."]
    # Only its origin removes a name.
    refused = mesh.odpctl(1, "dns", "remove", "web2")
    assert refused.returncode == 2 and "registered by peer" in refused.stderr
    assert mesh.odpctl(0, "dns", "remove", "web2").returncode == 0
    for i in range(3):
        assert wait_until(partial(mesh.nxdomain, i, "web2.odpctl.local"), 5), (
            f"host {i} still answers web2"
        )
    assert mesh.getent(1, "web2") == ""
    missing = mesh.odpctl(1, "dns", "lookup", "web2")
    assert missing.returncode == 3 and "no such name" in missing.stderr


def test_other_names_go_upstream(mesh: Mesh) -> None:
    assert mesh.dig(1, "example.org", "+short").strip() == "192.0.2.1"
    assert mesh.getent(2, "www.example.org") == "192.0.2.1"
    counters = mesh.control(1).request("dns_status")["server"]["counters"]
    assert counters["forwarded"] >= 1


def test_a_restarted_router_gets_its_names_back(mesh: Mesh) -> None:
    assert mesh.odpctl(0, "dns", "add", "web1", "10.40.0.11").returncode == 0
    assert wait_until(lambda: mesh.getent(2, "web1") == "10.40.0.11", 10)
    mesh.overlay.stop_router(0)
    mesh.start_router(0)
    mesh.overlay.wait_ready(timeout=60)
    assert wait_until(lambda: mesh.getent(0, "web1") == "10.40.0.11", 10), mesh.overlay.log_tail(
        0, 30
    )
    assert wait_until(lambda: mesh.getent(2, "web1") == "10.40.0.11", 10)
    [record] = mesh.control(0).request("dns_lookup", name="web1")["records"]
    assert record["local"] is True
    # And its removal after the restart still travels.
    assert mesh.odpctl(0, "dns", "remove", "web1").returncode == 0
    assert wait_until(partial(mesh.nxdomain, 2, "web1.odpctl.local"), 5)

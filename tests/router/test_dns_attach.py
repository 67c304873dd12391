"""`router attach --netns NS --name NAME` across a 3-host mesh (userspace datapath):
the first attach wanting DNS exposes its router (an address from IPAM on the
datapath's own port), which serves DNS there; each attach registers
the container's name and writes /etc/netns/NS/resolv.conf, so that glibc in a
container on another host resolves it with nothing else to do.

Nothing is forwarded upstream: every name asked is in the domain.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.dns.resolvconf import NETNS_ETC

from .helpers import wait_until

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

ODPCTL = Path(sys.executable).with_name("odpctl")


@dataclass
class Bed:
    overlay: OverlayLab
    containers: list[str]  # one per host, and a fourth for --without-dns

    def odpctl(self, i: int, *argv: str) -> subprocess.CompletedProcess[str]:
        host = self.overlay.hosts[i]
        return subprocess.run(
            [str(ODPCTL), "--netns", host.ns, *argv, "--control", str(host.control)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def exposed(self, i: int) -> bool:
        return bool(self.overlay.status(i)["router"]["exposed"])

    def resolves(self, i: int, name: str, address: str) -> bool:
        return self.getent(i, name) == address

    def getent(self, i: int, name: str) -> str:
        result = self.overlay.lab.run(self.containers[i], "getent", "hosts", name, timeout=10)
        return result.stdout.split()[0] if result.returncode == 0 and result.stdout else ""


@pytest.fixture(name="bed")
def bed_fixture() -> Iterator[Bed]:
    lab = Lab("odpa")
    overlay: OverlayLab | None = None
    try:
        overlay = OverlayLab(lab, containers=0, datapath="userspace")
        containers = [lab.namespace(f"w{i}") for i in range(4)]
        for host in overlay.hosts:
            overlay.start_router(host.index)
        overlay.wait_ready(timeout=60)
        yield Bed(overlay, containers)
    finally:
        for ns in lab.namespaces:
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        if overlay is not None:
            overlay.close()
        else:
            lab.close()


def test_attached_names_resolve_on_every_host_through_glibc(bed: Bed) -> None:
    # --without-dns: no name, no resolv.conf, and no DNS server wanted (no expose).
    quiet = bed.containers[3]
    attached = bed.odpctl(
        0, "router", "attach", "--netns", quiet, "--name", "quiet", "--without-dns"
    )
    assert attached.returncode == 0, attached.stderr
    assert not (NETNS_ETC / quiet).exists()
    assert bed.odpctl(0, "dns", "lookup", "quiet").returncode == 3
    ips = []
    for i, ns in enumerate(bed.containers[:3]):
        # The router is not exposed yet: the first container wanting DNS exposes it.
        assert not bed.exposed(i)
        attached = bed.odpctl(i, "router", "attach", "--netns", ns, "--name", f"web{i}", "--json")
        assert attached.returncode == 0, attached.stderr
        ips.append(json.loads(attached.stdout)["ip"].split("/")[0])
        exposed = bed.overlay.status(i)["router"]["exposed"].split("/")[0]
        conf = (NETNS_ETC / ns / "resolv.conf").read_text()
        assert f"nameserver {exposed}\n" in conf and "search odpctl.local\n" in conf
    for i in range(3):
        for j in range(3):
            assert wait_until(partial(bed.resolves, i, f"web{j}", ips[j]), 15), (
                f"web{j} from container {i}: {bed.overlay.log_tail(i)}"
            )
    # Detach: the name goes everywhere, and the resolv.conf we wrote with it.
    assert bed.odpctl(1, "router", "detach", "--netns", bed.containers[1]).returncode == 0
    assert not (NETNS_ETC / bed.containers[1]).exists()
    for i in (0, 2):
        assert wait_until(partial(bed.resolves, i, "web1", ""), 5)
    listed = json.loads(bed.odpctl(0, "dns", "list", "--json").stdout)
    states = {r["hostname"]: r["tombstone"] is None for r in listed["records"]}
    assert states == {
        "web0.odpctl.local.": True,
        "web1.odpctl.local.": False,
        "web2.odpctl.local.": True,
    }

"""`odpctl router attach --netns` on one host, userspace datapath: veth, IPAM, rollback.

Needs root (network namespaces); skipped otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError

from .helpers import wait_until

ODPCTL = str(Path(sys.executable).parent / "odpctl")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


@pytest.fixture(name="host")
def host_fixture() -> Iterator[OverlayLab]:
    lab = Lab("odpa")
    try:
        built = OverlayLab(lab, hosts=1, containers=0, datapath="userspace")
        built.start_router(0, extra=("--ipalloc-range", "10.44.0.0/24"))
        assert wait_until(lambda: _ipam(built)["state"] == "ready", 20), built.log_tail(0)
    except BaseException:
        lab.close()
        raise
    try:
        yield built
    finally:
        built.close()


def _client(host: OverlayLab) -> ControlClient:
    return ControlClient(host.hosts[0].control, timeout=20)


def _ipam(host: OverlayLab) -> dict[str, object]:
    try:
        result = _client(host).request("ipam_status")
    except OdpError:
        return {"state": None}
    assert isinstance(result, dict)
    return result


def odpctl(host: OverlayLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host.hosts[0].ns,
            ODPCTL,
            *args,
            "--control",
            str(host.hosts[0].control),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def links(host: OverlayLab, ns: str) -> str:
    return host.lab.run(ns, "ip", "-o", "link", "show").stdout


def test_attach_by_netns_gives_a_working_address_and_detach_undoes_it(host: OverlayLab) -> None:
    lab = host.lab
    web, db = lab.namespace("web"), lab.namespace("db")
    out = odpctl(host, "router", "attach", "--netns", web, "--name", "web1", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"ip", "mac", "ifname", "port_no", "gateway", "netns", "id"}
    assert ipaddress.IPv4Interface(result["ip"]).ip in ipaddress.IPv4Network("10.44.0.0/24")
    assert result["ip"].endswith("/24") and result["ifname"] == "eth0"
    inside = lab.run(web, "ip", "-o", "addr", "show", "eth0").stdout
    assert result["ip"] in inside and "mtu 1376" in links(host, web)
    assert result["mac"] in links(host, web)
    # The same container again: the same answer, nothing new made.
    again = _client(host).request("attach", netns=web, name="web1")
    assert again["ip"] == result["ip"] and again["port_no"] == result["port_no"]
    plain = odpctl(host, "router", "attach", "--netns", db)
    assert plain.returncode == 0, plain.stderr
    db_ip = plain.stdout.strip().split("/")[0]
    assert db_ip != result["ip"].split("/")[0]
    ping = lab.run(web, "ping", "-c", "2", "-i", "0.2", "-W", "2", db_ip)
    assert ping.returncode == 0, ping.stdout + host.log_tail(0)
    status = _client(host).request("status")["router"]
    assert result["host_iface"] in status["datapath"]["ifaces"]

    gone = odpctl(host, "router", "detach", "--netns", web)
    assert gone.returncode == 0 and result["ip"] in gone.stdout, gone.stderr
    assert result["host_iface"] not in links(host, host.hosts[0].ns)
    assert "eth0" not in links(host, web)
    assert result["id"] not in _ipam(host)["allocations"]  # type: ignore[operator]
    # Idempotent: detaching again is no error.
    assert odpctl(host, "router", "detach", "--netns", web).returncode == 0


def test_a_given_address_is_claimed_and_a_taken_one_refused(host: OverlayLab) -> None:
    lab = host.lab
    a, b = lab.namespace("a"), lab.namespace("b")
    out = odpctl(host, "router", "attach", "--netns", a, "--id", "ctr-a", "--ip", "10.44.0.77/24")
    assert out.returncode == 0 and out.stdout.strip() == "10.44.0.77/24", out.stderr
    assert _ipam(host)["allocations"]["ctr-a"] == "10.44.0.77"  # type: ignore[index]
    clash = odpctl(host, "router", "attach", "--netns", b, "--id", "ctr-b", "--ip", "10.44.0.77")
    assert clash.returncode != 0
    assert "10.44.0.77 is in use by container ctr-a" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1
    # Nothing half made: no veth in b, no port, no address held for ctr-b.
    assert "eth0" not in links(host, b)
    assert "ctr-b" not in _ipam(host)["allocations"]  # type: ignore[operator]


def test_a_failed_attach_leaves_nothing_behind(host: OverlayLab) -> None:
    lab = host.lab
    ns = lab.namespace("busy")
    lab.run(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0")  # taken
    # Exposed first: an attach that wants DNS exposes the router before it starts.
    assert odpctl(host, "router", "expose").returncode == 0
    before = links(host, host.hosts[0].ns)
    out = odpctl(host, "router", "attach", "--netns", ns, "--id", "busy")
    assert out.returncode != 0 and "exists" in out.stderr.lower(), out.stderr
    assert links(host, host.hosts[0].ns) == before
    assert "busy" not in _ipam(host)["allocations"]  # type: ignore[operator]
    missing = odpctl(host, "router", "attach", "--netns", "odpctl-no-such-ns")
    assert missing.returncode == 3 and "not found" in missing.stderr


def test_expose_puts_the_host_on_the_overlay(host: OverlayLab) -> None:
    lab = host.lab
    web = lab.namespace("web")
    out = odpctl(host, "router", "expose")
    assert out.returncode == 0, out.stderr
    exposed = out.stdout.strip().split("/")[0]
    attached = _client(host).request("attach", netns=web)
    assert attached["gateway"] == exposed
    ping = lab.run(web, "ping", "-c", "2", "-i", "0.2", "-W", "2", exposed)
    assert ping.returncode == 0, ping.stdout + host.log_tail(0)


def test_the_same_container_attached_twice_at_once_gets_one_address(host: OverlayLab) -> None:
    ns = host.lab.namespace("twice")

    def attach() -> dict[str, object]:
        result = _client(host).request("attach", netns=ns, id="retried")
        assert isinstance(result, dict)
        return result

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: attach(), range(2))
    assert first["ip"] == second["ip"] and first["port_no"] == second["port_no"]
    assert _ipam(host)["allocations"]["retried"] == str(first["ip"]).split("/")[0]  # type: ignore[index]
    assert links(host, ns).count("eth0") == 1


def test_after_a_restart_a_container_gone_meanwhile_is_forgotten(host: OverlayLab) -> None:
    lab = host.lab
    stays, goes = lab.namespace("stays"), lab.namespace("goes")
    kept = _client(host).request("attach", netns=stays, id="stays")
    _client(host).request("attach", netns=goes, id="goes")
    assert host.stop_router(0) == 0
    lab.namespaces.remove(goes)
    assert subprocess.run(["ip", "netns", "del", goes]).returncode == 0
    host.start_router(0, extra=("--ipalloc-range", "10.44.0.0/24"))
    assert wait_until(lambda: _ipam(host)["state"] == "ready", 20), host.log_tail(0)
    allocations = _ipam(host)["allocations"]
    assert "goes" not in allocations  # type: ignore[operator]
    assert allocations["stays"] == kept["ip"].split("/")[0]  # type: ignore[index]
    status = _client(host).request("status")["router"]
    assert kept["host_iface"] in status["datapath"]["ifaces"]

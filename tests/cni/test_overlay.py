"""libcni drives odpctl-cni on two hosts of a real overlay (routers on the userspace
datapath, in namespaces): addresses from the routers' IPAM, a cross-host ping, CHECK
that passes and then fails, DEL that is idempotent, and Debian's `tuning` chained after."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from odpctl.demo.overlaylab import OverlayLab

from .hosts import two_hosts

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

RANGE = "10.46.0.0/24"
Outcome = tuple[int, Any, str]


@pytest.fixture(scope="module")
def overlay() -> Iterator[OverlayLab]:
    with two_hosts("odpcni", RANGE) as built:
        yield built


def conflist(overlay: OverlayLab, host: int, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": f"odpt-overlay-{host}",
        "plugins": [
            {"type": "odpctl-cni", "control": str(overlay.hosts[host].control)},
            # Chained: tuning reads our result as its prevResult, and sets this in eth0's netns;
            # portmap (no mappings asked) passes it on. (Not bandwidth: Debian's 1.1.1
            # panics in CHECK when no limit is set, and limits need the ifb module.)
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.accept_local": "1"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def test_two_containers_on_two_hosts(overlay: OverlayLab, libcni: Callable[..., Outcome]) -> None:
    lab = overlay.lab
    web, db = lab.namespace("web"), lab.namespace("db")
    results = {}
    for ns, host, version in ((web, 0, "1.0.0"), (db, 1, "0.4.0")):
        status, out, err = libcni(
            "add",
            conflist(overlay, host, version),
            netns=f"/run/netns/{ns}",
            container=f"ctr-{ns}",
            runs_in=overlay.hosts[host].ns,
        )
        assert status == 0, (out, err, overlay.log_tail(host))
        assert out["cniVersion"] == version
        host_end, iface = out["interfaces"]
        assert "sandbox" not in host_end
        assert host_end["name"] in lab.run(overlay.hosts[host].ns, "ip", "-o", "link").stdout
        assert iface["name"] == "eth0" and iface["sandbox"] == f"/run/netns/{ns}"
        (ip,) = out["ips"]
        assert ip["interface"] == 1
        assert ipaddress.ip_interface(ip["address"]) in ipaddress.ip_network(RANGE)
        assert ("version" in ip) == (version == "0.4.0")
        assert {"dst": RANGE} in out["routes"]
        inside = lab.run(ns, "ip", "-o", "addr", "show", "eth0").stdout
        assert ip["address"] in inside and iface["mac"] in lab.run(ns, "ip", "link").stdout
        # tuning ran after us, on our interface
        sysctl = lab.run(ns, "sysctl", "-n", "net.ipv4.conf.eth0.accept_local").stdout
        assert sysctl.strip() == "1"
        results[ns] = out
    web_ip = results[web]["ips"][0]["address"].split("/")[0]
    db_ip = results[db]["ips"][0]["address"].split("/")[0]
    assert web_ip != db_ip
    ping = lab.run(web, "ping", "-c", "3", "-i", "0.2", "-W", "2", db_ip)
    assert ping.returncode == 0, ping.stdout + overlay.log_tail(0) + overlay.log_tail(1)

    # CHECK (libcni hands the cached result to each plugin as prevResult)
    status, out, _ = libcni(
        "check",
        conflist(overlay, 0),
        netns=f"/run/netns/{web}",
        container=f"ctr-{web}",
        runs_in=overlay.hosts[0].ns,
    )
    assert status == 0, out
    lab.run(web, "ip", "addr", "del", results[web]["ips"][0]["address"], "dev", "eth0")
    status, out, _ = libcni(
        "check",
        conflist(overlay, 0),
        netns=f"/run/netns/{web}",
        container=f"ctr-{web}",
        runs_in=overlay.hosts[0].ns,
    )
    assert status == 1 and out["code"] == 102 and web_ip in out["msg"], out

    # DEL, twice: both succeed, and the address goes back to IPAM.
    for _ in range(2):
        status, out, _ = libcni(
            "del",
            conflist(overlay, 0),
            netns=f"/run/netns/{web}",
            container=f"ctr-{web}",
            runs_in=overlay.hosts[0].ns,
        )
        assert status == 0, out
    assert "eth0" not in lab.run(web, "ip", "-o", "link").stdout
    # DEL once the namespace is gone (the container died first) succeeds too.
    subprocess.run(["ip", "netns", "del", db], check=True)
    lab.namespaces.remove(db)
    status, out, _ = libcni(
        "del",
        conflist(overlay, 1, "0.4.0"),
        netns=f"/run/netns/{db}",
        container=f"ctr-{db}",
        runs_in=overlay.hosts[1].ns,
    )
    assert status == 0, out


def test_add_of_an_existing_interface_through_libcni(
    overlay: OverlayLab, libcni: Callable[..., Outcome]
) -> None:
    ns = overlay.lab.namespace("twice")
    config = {**conflist(overlay, 0, "0.3.1"), "name": "odpt-twice"}
    config["plugins"] = config["plugins"][:1]
    status, out, _ = libcni("add", config, netns=f"/run/netns/{ns}", container="ctr-a")
    assert status == 0, out
    assert out["cniVersion"] == "0.3.1" and out["ips"][0]["version"] == "4"
    address = out["ips"][0]["address"]
    # Another container ID, same namespace and interface: refused, the first untouched.
    status, out, _ = libcni("add", config, netns=f"/run/netns/{ns}", container="ctr-b")
    assert status == 1 and out["code"] == 101, out
    assert address in overlay.lab.run(ns, "ip", "-o", "addr", "show", "eth0").stdout
    assert libcni("del", config, netns=f"/run/netns/{ns}", container="ctr-a")[0] == 0


def test_delegated_ipam_host_local(
    overlay: OverlayLab, libcni: Callable[..., Outcome], tmp_path: Path
) -> None:
    lab = overlay.lab
    ns = lab.namespace("hl")
    data = tmp_path / "host-local"
    config = {
        "cniVersion": "1.0.0",
        "name": "odpt-hostlocal",
        "plugins": [
            {
                "type": "odpctl-cni",
                "control": str(overlay.hosts[0].control),
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.46.1.0/24",
                    "dataDir": str(data),
                    "routes": [{"dst": "10.99.0.0/16"}],
                },
            }
        ],
    }
    status, out, _ = libcni("add", config, netns=f"/run/netns/{ns}", container="ctr-hl")
    assert status == 0, (out, overlay.log_tail(0))
    (ip,) = out["ips"]
    assert ip["address"].startswith("10.46.1.") and ip["interface"] == 1
    assert out["routes"] == [{"dst": "10.99.0.0/16"}]
    assert ip["address"] in lab.run(ns, "ip", "-o", "addr", "show", "eth0").stdout
    assert "10.99.0.0/16 dev eth0" in lab.run(ns, "ip", "route").stdout
    held = ip["address"].split("/")[0]
    assert (data / "odpt-hostlocal" / held).exists()  # host-local's own record
    status, out, _ = libcni("check", config, netns=f"/run/netns/{ns}", container="ctr-hl")
    assert status == 0, out
    status, out, _ = libcni("del", config, netns=f"/run/netns/{ns}", container="ctr-hl")
    assert status == 0, out
    assert not (data / "odpt-hostlocal" / held).exists()  # handed back to host-local
    assert "eth0" not in lab.run(ns, "ip", "-o", "link").stdout


def test_gc_detaches_what_the_runtime_no_longer_lists(
    overlay: OverlayLab, cni: Callable[..., Outcome]
) -> None:
    lab = overlay.lab
    config = {
        "cniVersion": "1.1.0",
        "name": "odpt-gc",
        "type": "odpctl-cni",
        "control": str(overlay.hosts[0].control),
    }
    other = {**config, "name": "odpt-gc-other"}
    kept, dropped, elsewhere = (lab.namespace(n) for n in ("gckeep", "gcdrop", "gcother"))
    for ns, conf in ((kept, config), (dropped, config), (elsewhere, other)):
        status, out, _ = cni(
            "ADD",
            conf,
            CNI_CONTAINERID=f"ctr-{ns}",
            CNI_NETNS=f"/run/netns/{ns}",
            CNI_IFNAME="eth0",
        )
        assert status == 0, out
    valid = [{"containerID": f"ctr-{kept}", "ifname": "eth0"}]
    status, out, _ = cni("GC", {**config, "cni.dev/valid-attachments": valid})
    assert status == 0 and out is None, out
    assert "eth0" in lab.run(kept, "ip", "-o", "link").stdout
    assert "eth0" not in lab.run(dropped, "ip", "-o", "link").stdout
    assert "eth0" in lab.run(elsewhere, "ip", "-o", "link").stdout  # another network's
    status, out, _ = cni("GC", {**config, "cni.dev/valid-attachments": "all"})
    assert status == 1 and out["code"] == 7
    status, out, _ = cni("GC", {**config, "cniVersion": "1.0.0", "cni.dev/valid-attachments": []})
    assert status == 1 and out["code"] == 1

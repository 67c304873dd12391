"""libcni drives odpctl-cni with routers on the kernel datapath (in the guest): two
containers on two hosts get addresses, ping across the overlay, and are deleted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from odpctl.demo.overlaylab import OverlayLab

from .hosts import two_hosts

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

Outcome = tuple[int, Any, str]


@pytest.fixture
def overlay() -> Iterator[OverlayLab]:
    with two_hosts("odpkcni", "10.46.2.0/24", datapath="kernel") as built:
        yield built


def test_containers_on_the_kernel_datapath(
    overlay: OverlayLab, libcni: Callable[..., Outcome]
) -> None:
    lab = overlay.lab
    addresses, added = [], []
    for host in range(2):
        ns = lab.namespace(f"k{host}")
        conflist = {
            "cniVersion": "1.0.0",
            "name": f"odpt-kernel-{host}",
            "plugins": [{"type": "odpctl-cni", "control": str(overlay.hosts[host].control)}],
        }
        status, out, err = libcni("add", conflist, netns=f"/run/netns/{ns}", container=f"ctr-{ns}")
        assert status == 0, (out, err, overlay.log_tail(host))
        addresses.append(out["ips"][0]["address"].split("/")[0])
        added.append((conflist, ns))
    ping = lab.run(added[0][1], "ping", "-c", "3", "-i", "0.2", "-W", "2", addresses[1])
    assert ping.returncode == 0, ping.stdout + overlay.log_tail(0) + overlay.log_tail(1)
    for conflist, ns in added:
        status, out, _ = libcni("del", conflist, netns=f"/run/netns/{ns}", container=f"ctr-{ns}")
        assert status == 0, out
        assert "eth0" not in lab.run(ns, "ip", "-o", "link").stdout

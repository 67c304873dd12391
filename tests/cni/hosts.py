"""Two hosts in namespaces, each running a router (userspace datapath, or the kernel's
in the guest) with IPAM ready:
the overlay the CNI and Docker tests put their containers on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

from router.helpers import wait_until

from odpctl.control.client import ControlClient
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError


def ipam_state(overlay: OverlayLab, i: int) -> object:
    try:
        status = ControlClient(overlay.hosts[i].control, timeout=5).request("ipam_status")
    except OdpError:
        return None
    return status.get("state") if isinstance(status, dict) else None


def ipam_ready(overlay: OverlayLab, i: int) -> bool:
    return ipam_state(overlay, i) == "ready"


@contextlib.contextmanager
def two_hosts(prefix: str, ipalloc_range: str, datapath: str = "userspace") -> Iterator[OverlayLab]:
    lab = Lab(prefix)
    try:
        overlay = OverlayLab(lab, hosts=2, containers=0, datapath=datapath)
        for i in range(2):
            overlay.start_router(i, extra=("--ipalloc-range", ipalloc_range))
        overlay.wait_ready(60)
        for i in range(2):
            assert wait_until(partial(ipam_ready, overlay, i), 30), overlay.log_tail(i)
    except BaseException:
        lab.close()
        raise
    try:
        yield overlay
    finally:
        overlay.close()

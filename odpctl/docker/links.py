"""Handing a container's interface to Docker: out of the sandbox, into our namespace.

The router attaches a container into its namespace (the sandbox), as it does
for any container.  libnetwork wants the interface in the driver's namespace
instead, to move into the sandbox itself under its own name (eth0, eth1, ...),
with the address and routes it then sets; so the driver brings it out.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from odpctl.errors import OdpError, error_from_errno
from odpctl.netlink.netns import netns
from odpctl.netlink.pyroute import IPRoute


def bring_out(sandbox: str, ifname: str) -> None:
    """Move ``ifname`` from namespace ``sandbox`` into the calling thread's."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with netns(sandbox):
            ipr: Any = IPRoute()  # its socket is the sandbox's, for life
        try:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise OdpError(f"no interface {ifname} in {sandbox}", errno=errno.ENODEV)
            ipr.link("set", index=found[0], net_ns_fd=here)
        except OdpError:
            raise
        except Exception as exc:  # pyroute2's NetlinkError
            code = getattr(exc, "code", None)
            raise error_from_errno(code or errno.EIO, f"move {ifname} out of {sandbox}") from None
        finally:
            ipr.close()
    finally:
        os.close(here)

"""Where a datapath is reached: the kernel, or a userspace datapath's socket.

An `Endpoint` opens netlink connections; everything above it (the `Dpif`,
upcall channels, event listeners) speaks the same generic-netlink messages
whichever one it is — the way httpx keeps one client over swappable
transports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from odpctl.errors import DatapathUnavailableError, NotFoundError, UsageError
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.genl import resolve_family
from odpctl.netlink.netns import netns
from odpctl.netlink.rundir import runtime_dir
from odpctl.netlink.transport import KernelTransport, Transport, UnixTransport
from odpctl.odp.uapi import DATAPATH_FAMILY

NO_DATAPATH_HINT = (
    "the openvswitch kernel module is not loaded: modprobe openvswitch, "
    "or run `odpctl dp serve` for the userspace datapath"
)


def default_datapath_socket(netns_name: str | None = None) -> Path:
    return runtime_dir(netns_name) / "datapath.sock"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach a datapath: ``kind`` is "kernel" or "unix"."""

    kind: str
    path: str | None = None
    netns: str | None = None

    def connect(self) -> NetlinkConnection:
        """A new netlink connection, inside ``netns`` when one is named."""
        with netns(self.netns):
            transport: Transport = (
                KernelTransport() if self.kind == "kernel" else UnixTransport(str(self.path))
            )
        return NetlinkConnection(transport)

    def describe(self) -> str:
        where = "kernel datapath" if self.kind == "kernel" else f"userspace datapath at {self.path}"
        return f"{where} in netns {self.netns}" if self.netns else where


def _kernel_has_openvswitch(netns_name: str | None) -> bool:
    # Asking for the family makes the kernel try to autoload the module.
    try:
        with Endpoint("kernel", netns=netns_name).connect() as conn:
            resolve_family(conn, DATAPATH_FAMILY)
    except NotFoundError:
        return False
    return True


def resolve_endpoint(spec: str | None = None, *, netns_name: str | None = None) -> Endpoint:
    """Turn ``--datapath`` (or ``$ODPCTL_DATAPATH``) into an endpoint.

    ``auto`` (the default) means the kernel datapath where the module is,
    else the userspace datapath serving this namespace's default socket.
    """
    spec = spec or os.environ.get("ODPCTL_DATAPATH") or "auto"
    if spec == "kernel":
        return Endpoint("kernel", netns=netns_name)
    if spec.startswith("unix:"):
        return Endpoint("unix", spec[len("unix:") :], netns_name)
    if spec == "userspace":
        return Endpoint("unix", str(default_datapath_socket(netns_name)), netns_name)
    if spec != "auto":
        raise UsageError(f"unknown datapath '{spec}': use auto, kernel, userspace or unix:PATH")
    if _kernel_has_openvswitch(netns_name):
        return Endpoint("kernel", netns=netns_name)
    socket_path = default_datapath_socket(netns_name)
    if socket_path.exists():
        return Endpoint("unix", str(socket_path), netns_name)
    raise DatapathUnavailableError("no datapath available", hint=NO_DATAPATH_HINT)

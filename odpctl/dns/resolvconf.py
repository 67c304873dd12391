"""A container's resolv.conf: ``/etc/netns/NS/resolv.conf``, which `ip netns exec`
bind-mounts over /etc/resolv.conf, so that glibc in the container asks our server."""

from __future__ import annotations

import contextlib
from pathlib import Path

from odpctl.errors import UsageError, error_from_errno
from odpctl.netlink.rundir import write_atomic

NETNS_ETC = Path("/etc/netns")
MARK = "# written by odpctl router: the overlay's DNS server\n"


def netns_resolv_conf(netns: str, root: Path = NETNS_ETC) -> Path:
    if not netns or "/" in netns or netns in (".", ".."):
        raise UsageError(f"{netns!r} is not a network namespace name")
    return root / netns / "resolv.conf"


def write_resolv_conf(netns: str, nameserver: str, domain: str, root: Path = NETNS_ETC) -> Path:
    path = netns_resolv_conf(netns, root)
    text = f"{MARK}nameserver {nameserver}\nsearch {domain.rstrip('.')}\noptions ndots:1\n"
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise error_from_errno(exc.errno or 5, f"write {path}") from None
    return path


def remove_resolv_conf(netns: str, root: Path = NETNS_ETC) -> bool:
    """Remove the file if we wrote it (and its directory if that leaves it empty)."""
    path = netns_resolv_conf(netns, root)
    try:
        if not path.read_text().startswith(MARK):
            return False
        path.unlink()
    except OSError:
        return False
    with contextlib.suppress(OSError):  # other files of the namespace's /etc live there
        path.parent.rmdir()
    return True

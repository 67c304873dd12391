"""Throwaway network namespaces and veth pairs, for the demo.

A `Lab` names everything it makes after one prefix and removes all of it on
`close` (also when the demo is interrupted), killing whatever was left
running inside its namespaces first, so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from types import TracebackType
from typing import Self

from odpctl.dns.resolvconf import NETNS_ETC
from odpctl.errors import OdpError
from odpctl.netlink.pyroute import NetNS, netns


class Lab:
    def __init__(self, prefix: str = "odplab") -> None:
        self.prefix = f"{prefix}{secrets.token_hex(2)}"
        self.namespaces: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def namespace(self, role: str) -> str:
        """A new namespace ``<prefix>-<role>`` with its loopback up."""
        name = f"{self.prefix}-{role}"
        try:
            netns.create(name)
        except OSError as exc:
            raise OdpError(
                f"cannot create network namespace {name}: {exc.strerror}",
                errno=exc.errno,
                hint="run as root",
            ) from None
        self.namespaces.append(name)
        self.link_up(name, "lo")
        return name

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        """A veth pair with ``name_a`` in ``ns_a`` and ``name_b`` in ``ns_b``, both up."""
        with NetNS(ns_a) as ipr:
            ipr.link("add", ifname=name_a, kind="veth", peer={"ifname": name_b, "net_ns_fd": ns_b})
        self.link_up(ns_a, name_a)
        self.link_up(ns_b, name_b)

    def address(self, ns: str, ifname: str, cidr: str) -> None:
        address, prefixlen = cidr.split("/")
        with NetNS(ns) as ipr:
            (index,) = ipr.link_lookup(ifname=ifname)
            ipr.addr("add", index=index, address=address, prefixlen=int(prefixlen))

    def link_up(self, ns: str, ifname: str) -> None:
        with NetNS(ns) as ipr:
            (index,) = ipr.link_lookup(ifname=ifname)
            ipr.link("set", index=index, state="up")

    def run(self, ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command inside ``ns``; the result, whatever its exit status."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout
        )

    def close(self) -> None:
        for name in reversed(self.namespaces):
            _kill_processes_in(name)
            with contextlib.suppress(OSError):
                netns.remove(name)
            # Files `ip netns exec` mounts in it (a router writes resolv.conf there).
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        self.namespaces.clear()


def _kill_processes_in(name: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)

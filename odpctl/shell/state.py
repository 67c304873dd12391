"""What the shell knows between commands: where the datapath is, the current
one, and the names completion offers (asked of the datapath, cached briefly).

Completion runs at every key press, so names are kept for ``ttl`` seconds
and forgotten after each command (which may have added or deleted some).
A datapath that cannot be asked gives no names rather than an error: a key
press never prints one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

from odpctl.errors import OdpError
from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.dpif import Dpif

T = TypeVar("T")


class ShellState:
    def __init__(
        self,
        *,
        netns: str | None = None,
        datapath: str | None = None,
        current: str | None = None,
        ttl: float = 2.0,
        opener: Callable[[], Dpif] | None = None,
    ) -> None:
        self.netns = netns
        self.datapath = datapath  # --datapath: where (kernel, userspace, unix:PATH)
        self._current = current
        self.ttl = ttl
        self._dpif: Dpif | None = None
        self._opener = opener or (lambda: Dpif.open(self.datapath, netns=self.netns))
        self._cache: dict[tuple[str, str | None], tuple[float, list[str]]] = {}

    # --- the current datapath ---------------------------------------------------------

    @property
    def current(self) -> str | None:
        return self._current

    def use(self, dp: str | None) -> None:
        """Make ``dp`` current (None: none); it must exist."""
        if dp is not None:
            self.dpif().get_datapath(dp)  # raises NotFoundError for a wrong name
        self._current = dp

    def global_options(self) -> list[str]:
        """The options that send a command where the shell points."""
        out = []
        if self.netns is not None:
            out += ["--netns", self.netns]
        if self.datapath is not None:
            out += ["--datapath", self.datapath]
        return out

    # --- the datapath client --------------------------------------------------------------

    def open_dpif(self) -> Dpif:
        """A new client of the datapath (for another thread: a client is not shared)."""
        return self._opener()

    def dpif(self) -> Dpif:
        """This thread's client, opened once."""
        if self._dpif is None:
            self._dpif = self.open_dpif()
        return self._dpif

    def close(self) -> None:
        if self._dpif is not None:
            self._dpif.close()
            self._dpif = None

    def forget(self) -> None:
        """Drop cached names (after a command, which may have changed them)."""
        self._cache.clear()

    def _cached(self, what: str, dp: str | None, fetch: Callable[[], list[str]]) -> list[str]:
        key = (what, dp)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            value = fetch()
        except (OdpError, OSError):
            self.close()  # a broken connection is reopened next time
            value = []
        self._cache[key] = (now, value)
        return value

    # --- names (the completer's `Names`) --------------------------------------------------

    def datapaths(self) -> list[str]:
        return self._cached(
            "dp", None, lambda: sorted(d.name for d in self.dpif().list_datapaths())
        )

    def _dp_or_only(self, dp: str | None) -> str | None:
        if dp is not None:
            return dp
        if self._current is not None:
            return self._current
        dps = self.datapaths()
        return dps[0] if len(dps) == 1 else None

    def ports(self, dp: str | None) -> list[str]:
        name = self._dp_or_only(dp)
        if name is None:
            return []
        return self._cached("port", name, lambda: [v.name for v in self.dpif().list_vports(name)])

    def port_numbers(self, dp: str | None) -> list[str]:
        name = self._dp_or_only(dp)
        if name is None:
            return []
        return self._cached(
            "port_no",
            name,
            lambda: [
                str(v.port_no) for v in self.dpif().list_vports(name) if v.port_no is not None
            ],
        )

    def interfaces(self) -> list[str]:
        def fetch() -> list[str]:
            with in_netns(self.netns):
                return sorted(name for _, name in socket.if_nameindex())

        return self._cached("iface", None, fetch)

"""IPAM state kept across restarts: the ring, and the addresses we handed out.

The ring is rewritten whole when it changes (it is small); allocations are
appended to a log as they happen (a router serves thousands a second) and
the log is compacted when the state is loaded.  Both live in the router's
per-namespace state directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import IO, Any

from odpctl.netlink.rundir import make_parent, write_atomic

log = logging.getLogger("odpctl.ipam")


class Store:
    def __init__(self, directory: Path, name: str) -> None:
        self.ring_path = directory / f"ipam-{name}.ring.json"
        self.log_path = directory / f"ipam-{name}.allocations"
        self._log: IO[str] | None = None

    def load(self) -> tuple[Any, dict[str, int]]:
        """The saved ring's encoding (None: none) and the allocations, by container ID."""
        ring = None
        try:
            ring = json.loads(self.ring_path.read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.ring_path, exc)
        allocations: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError), self.log_path.open() as f:
            for line in f:
                op, _, rest = line.rstrip("\n").partition(" ")
                if op == "+":
                    addr, _, ident = rest.partition(" ")
                    with contextlib.suppress(ValueError):
                        allocations[ident] = int(addr)
                elif op == "-":
                    allocations.pop(rest, None)
        self._rewrite(allocations)
        return ring, allocations

    def _rewrite(self, allocations: dict[str, int]) -> None:
        self.close()
        write_atomic(self.log_path, "".join(f"+ {a} {i}\n" for i, a in allocations.items()))

    def _append(self, line: str) -> None:
        if self._log is None:
            make_parent(self.log_path)
            self._log = self.log_path.open("a")
        self._log.write(line)
        self._log.flush()

    def allocated(self, ident: str, addr: int) -> None:
        self._append(f"+ {addr} {ident}\n")

    def released(self, ident: str) -> None:
        self._append(f"- {ident}\n")

    def save_ring(self, encoded: Any) -> None:
        try:
            write_atomic(self.ring_path, json.dumps(encoded))
        except OSError as exc:
            log.warning("cannot save %s: %s", self.ring_path, exc)

    def forget(self) -> None:
        """We left for good: nothing to claim back next time."""
        self.close()
        for path in (self.ring_path, self.log_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

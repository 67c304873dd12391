"""What the driver remembers between Docker's calls, kept in a file if given one
(so that a restarted driver still knows the endpoints Docker will join and leave)."""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odpctl.netlink.rundir import write_atomic


@dataclass
class State:
    path: Path | None = None
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    # address (A.B.C.D) -> the router IPAM's ID that holds it
    addresses: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path | None) -> State:
        state = cls(path)
        if path is not None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                saved = json.loads(path.read_text())
                state.endpoints = dict(saved.get("endpoints", {}))
                state.addresses = dict(saved.get("addresses", {}))
        return state

    def save(self) -> None:
        if self.path is None:
            return
        data = {"endpoints": self.endpoints, "addresses": self.addresses}
        write_atomic(self.path, json.dumps(data))

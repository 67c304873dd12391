"""What the driver remembers between Docker's calls, kept in a file if given one
(so that a restarted driver still knows the endpoints Docker will join and leave)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class State:
    path: Path | None = None
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
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
                state.networks = dict(saved.get("networks", {}))
                state.endpoints = dict(saved.get("endpoints", {}))
                state.addresses = dict(saved.get("addresses", {}))
        return state

    def save(self) -> None:
        if self.path is None:
            return
        data = {"networks": self.networks, "endpoints": self.endpoints, "addresses": self.addresses}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)  # never half a file

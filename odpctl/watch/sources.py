"""Where `watch upcalls` gets upcalls from: a router's mirror, or a tap.

``auto`` asks the router of the namespace for its upcall mirror first (the
router keeps handling every upcall; the watcher gets copies).  With no
router there, it borrows the datapath's upcall PIDs (`odpctl.watch.tap`),
which refuses, naming the owner, if a live socket holds them.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from odpctl.control.protocol import ControlError, RouterUnavailableError, default_socket_path
from odpctl.errors import UsageError
from odpctl.odp.dpif import Dpif
from odpctl.odp.packet import Upcall

from .subscription import MirrorSubscription
from .tap import UpcallTap


class Source(StrEnum):
    auto = "auto"
    router = "router"
    tap = "tap"


class UpcallSource(Protocol):
    description: str  # what it does, in a sentence, for the operator

    def receive(self, timeout: float | None) -> tuple[float, Upcall] | None: ...

    def close(self) -> list[str]: ...

    @property
    def ended(self) -> bool: ...


class TapSource:
    def __init__(self, dpif: Dpif, dp: str, *, force: bool) -> None:
        self.tap = UpcallTap(dpif, dp, force=force).open()
        borrowed = self.tap.borrowed
        what = (
            "its per-CPU upcall PIDs"
            if borrowed.per_cpu is not None
            else f"the upcall PIDs of its {len(borrowed.ports)} ports"
        )
        before = (
            "they pointed at sockets that are gone, so upcalls were being lost"
            if borrowed.dead
            else "nobody was receiving its upcalls"
        )
        self.description = (
            f"receiving the misses of {dp} by borrowing {what} ({before}); packets are not "
            "forwarded; the PIDs are given back on exit"
        )

    @property
    def ended(self) -> bool:
        return False

    def receive(self, timeout: float | None) -> tuple[float, Upcall] | None:
        upcall = self.tap.receive(timeout)
        return None if upcall is None else (time.time(), upcall)

    def close(self) -> list[str]:
        return self.tap.close()


class MirrorSource:
    def __init__(self, path: Path, dp: str) -> None:
        self.sub = MirrorSubscription(path, dp)
        self.description = (
            f"receiving copies of the upcalls of {dp} from the router's upcall mirror "
            f"({path}); the router keeps handling them"
        )

    @property
    def ended(self) -> bool:
        return self.sub.ended

    def receive(self, timeout: float | None) -> tuple[float, Upcall] | None:
        got = self.sub.receive(timeout)
        return None if got is None else (got.time, got.upcall)

    def close(self) -> list[str]:
        self.sub.close()
        return []


def open_source(
    dpif: Dpif,
    dp: str,
    source: Source,
    *,
    force: bool = False,
    control: Path | None = None,
) -> UpcallSource:
    """The upcall source ``source`` names (see the module for ``auto``)."""
    path = control or default_socket_path(dpif.endpoint.netns)
    if source is Source.tap:
        return TapSource(dpif, dp, force=force)
    try:
        return MirrorSource(path, dp)
    except RouterUnavailableError:
        if source is Source.router:
            raise
    except ControlError as exc:
        if source is Source.router:
            raise UsageError(f"the router at {path} has no upcall mirror: {exc}") from None
        # A router without a mirror: the tap will find its sockets and name it.
    return TapSource(dpif, dp, force=force)

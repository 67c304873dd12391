"""Receiving a datapath's upcalls by borrowing its upcall PIDs, and giving them back.

The datapath sends each upcall to exactly one netlink port id: the input
port's upcall PID, or with per-CPU dispatch the PID of the CPU that saw the
packet.  A second listener cannot get a copy.  So the tap only works where
nobody handles the upcalls: it checks that every PID in use is 0 or a port
id no live socket holds (kernel datapath; see `owners`), points them at a
socket of its own, and on `close` puts back each one it still holds,
leaving alone any PID someone else set meanwhile (a router that started).
Ports added while the tap is open and left without a handler are borrowed
too, and given back alike.

While the tap holds them, misses are received here and nothing more: the
packets are not forwarded, as they were not before (a miss nobody receives
is dropped and counted as lost).
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass, field

from odpctl.errors import AlreadyExistsError, NotFoundError, OdpError
from odpctl.odp.datapath import Datapath
from odpctl.odp.dpif import Dpif
from odpctl.odp.packet import Upcall
from odpctl.odp.uapi import DpFeature
from odpctl.odp.upcalls import UpcallChannel, VportEvents

from .owners import find_owners

MIRROR_HINT = (
    "an odpctl router that owns the datapath will show its upcalls to `odpctl watch upcalls` "
    "through its upcall mirror"
)


@dataclass(slots=True)
class Borrowed:
    """The PIDs the tap replaced, to put back: per port number, and per CPU."""

    ports: dict[int, tuple[int, ...]] = field(default_factory=dict)
    per_cpu: tuple[int, ...] | None = None
    # Port ids that were set but held by no socket (upcalls were being lost).
    dead: set[int] = field(default_factory=set)


def _per_cpu(dp: Datapath) -> bool:
    return bool(dp.features & DpFeature.DISPATCH_UPCALL_PER_CPU) and bool(dp.per_cpu_pids)


class UpcallTap:
    """Borrow the upcall PIDs of datapath ``dp`` (see the module); a context manager.

    ``force`` takes PIDs whose owner cannot be checked (a userspace datapath's).
    """

    def __init__(self, dpif: Dpif, dp: str, *, force: bool = False) -> None:
        self.dpif = dpif
        self.dp = dp
        self.force = force
        self.borrowed = Borrowed()
        self.channel: UpcallChannel | None = None
        self._events: VportEvents | None = None
        self._dp_ifindex = 0
        self.problems: list[str] = []

    # --- taking -----------------------------------------------------------------------

    def open(self) -> UpcallTap:
        dp = self.dpif.get_datapath(self.dp)
        self._dp_ifindex = dp.ifindex
        ports = self.dpif.list_vports(self.dp)
        per_cpu = _per_cpu(dp)
        in_use = set(dp.per_cpu_pids) if per_cpu else {p for v in ports for p in v.upcall_pids}
        in_use.discard(0)
        self._check_free(in_use)
        # Listen for new ports before borrowing, so that none slips between.
        self._events = self.dpif.watch_vports()
        self.channel = self.dpif.open_upcall_channel()
        ours = self.channel.port_id
        try:
            if per_cpu:
                self.borrowed.per_cpu = dp.per_cpu_pids
                self.dpif.set_datapath(self.dp, per_cpu_pids=[ours] * len(dp.per_cpu_pids))
            else:
                for vport in ports:
                    if vport.port_no is not None:
                        self._borrow_port(vport.port_no, vport.upcall_pids)
        except BaseException:
            self.close()
            raise
        return self

    def _check_free(self, in_use: set[int]) -> None:
        if not in_use:
            return
        if self.dpif.endpoint.kind != "kernel":
            if self.force:
                return
            raise AlreadyExistsError(
                f"datapath {self.dp} sends its upcalls to port ids {_ids(in_use)} of a client "
                "of the userspace datapath, which cannot be checked from here: watching would "
                "take them from it",
                hint="--force takes them anyway (and gives them back on exit); " + MIRROR_HINT,
            )
        owners = find_owners(in_use, self.dpif.endpoint.netns)
        if owners:
            who = "; ".join(f"port id {o.port_id}: {o.describe()}" for o in owners.values())
            raise AlreadyExistsError(
                f"datapath {self.dp} sends its upcalls to live sockets ({who}): watching "
                "would steal them from that handler",
                hint=MIRROR_HINT,
            )
        self.borrowed.dead = in_use

    def _borrow_port(self, port_no: int, previous: tuple[int, ...]) -> None:
        assert self.channel is not None
        self.borrowed.ports[port_no] = previous
        self.dpif.set_vport(self.dp, port_no, upcall_pids=[self.channel.port_id])

    def _adopt_new_ports(self) -> None:
        """Borrow the PIDs of ports added without a handler since the tap opened."""
        if self._events is None or self.borrowed.per_cpu is not None:
            return
        while (event := self._events.receive(timeout=0)) is not None:
            vport = event.vport
            if vport.dp_ifindex != self._dp_ifindex or vport.port_no is None:
                continue
            if event.kind == "del":
                self.borrowed.ports.pop(vport.port_no, None)
            elif event.kind == "new" and not any(vport.upcall_pids):
                try:
                    self._borrow_port(vport.port_no, vport.upcall_pids)
                except NotFoundError:  # deleted again already
                    self.borrowed.ports.pop(vport.port_no, None)

    # --- receiving ------------------------------------------------------------------------

    def receive(self, timeout: float | None = None) -> Upcall | None:
        """The next upcall, or None after ``timeout`` seconds."""
        assert self.channel is not None and self._events is not None, "open() first"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            upcall = self.channel.receive(timeout=0)
            if upcall is not None:
                return upcall
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            ready, _, _ = select.select([self.channel, self._events], [], [], wait)
            if self._events in ready:
                self._adopt_new_ports()

    # --- giving back ---------------------------------------------------------------------

    def close(self) -> list[str]:
        """Put back every PID still ours; what could not be put back, as messages."""
        problems: list[str] = []
        if self.channel is not None:
            ours = self.channel.port_id
            if self.borrowed.per_cpu is not None:
                problems += self._restore_per_cpu(ours, self.borrowed.per_cpu)
            for port_no, previous in sorted(self.borrowed.ports.items()):
                problems += self._restore_port(ours, port_no, previous)
            self.borrowed = Borrowed()
            self.channel.close()
            self.channel = None
        if self._events is not None:
            self._events.close()
            self._events = None
        self.problems += problems
        return problems

    def _restore_per_cpu(self, ours: int, previous: tuple[int, ...]) -> list[str]:
        try:
            now = self.dpif.get_datapath(self.dp).per_cpu_pids
            if now and all(p == ours for p in now):
                self.dpif.set_datapath(self.dp, per_cpu_pids=previous)
        except NotFoundError:
            return []  # the datapath went away: nothing to give back to
        except OdpError as exc:
            return [f"per-CPU upcall PIDs of {self.dp}: {exc}"]
        return []

    def _restore_port(self, ours: int, port_no: int, previous: tuple[int, ...]) -> list[str]:
        try:
            now = self.dpif.get_vport(self.dp, port_no).upcall_pids
            if now == (ours,):
                self.dpif.set_vport(self.dp, port_no, upcall_pids=previous or (0,))
        except NotFoundError:
            return []  # the port went away
        except OdpError as exc:
            return [f"upcall PIDs of port {port_no} of {self.dp}: {exc}"]
        return []

    def __enter__(self) -> UpcallTap:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _ids(pids: set[int]) -> str:
    return ", ".join(str(p) for p in sorted(pids))

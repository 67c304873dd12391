"""Listening to a datapath: upcall channels and vport events.

Each listener owns its own netlink socket.  Upcalls are the datapath's
unsolicited messages to a port id; losing them silently is how a router
dies (Weave's worst production failure was a dead miss socket), so every
drop this side can see is counted: kernel receive-buffer overruns, and
messages that did not decode.  The datapath's own count of upcalls it could
not deliver is ``Datapath.lost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from odpctl.errors import DecodeError
from odpctl.netlink.connection import NetlinkConnection, ReceiveOverrun
from odpctl.netlink.genl import Family
from odpctl.odp.header import split_odp
from odpctl.odp.packet import Upcall, decode_upcall
from odpctl.odp.uapi import VPORT_MCGROUP, VportCmd
from odpctl.odp.vport import Vport, decode_vport


class _Listener:
    def __init__(self, conn: NetlinkConnection) -> None:
        self._conn = conn

    def fileno(self) -> int:
        return self._conn.fileno()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class UpcallChannel(_Listener):
    """A socket the datapath sends misses and ``userspace()`` upcalls to."""

    def __init__(self, conn: NetlinkConnection, *, rcvbuf: int) -> None:
        super().__init__(conn)
        conn.set_rcvbuf(rcvbuf)
        self.received = 0
        self.overruns = 0
        self.malformed = 0

    @property
    def port_id(self) -> int:
        return self._conn.port_id

    def receive(self, timeout: float | None = None) -> Upcall | None:
        """The next upcall, or None when ``timeout`` seconds pass without one.

        An overrun (the kernel dropped upcalls because this socket's buffer
        was full) is counted in ``overruns`` and reading goes on: the caller
        sees the count, not an exception in its miss loop.
        """
        while True:
            malformed = self.malformed
            got = self.receive_many(1, timeout)
            if got:
                return got[0]
            if self.malformed == malformed:
                return None

    def receive_many(self, limit: int, timeout: float | None = None) -> list[Upcall]:
        """Up to ``limit`` upcalls: the first waited for (up to ``timeout``
        seconds; none: []), then those already waiting, read without blocking.

        Overruns are counted as in `receive`; messages that do not decode are
        counted in ``malformed`` and left out.
        """
        while True:
            try:
                messages = self._conn.recv_notifications(limit, timeout)
            except ReceiveOverrun:
                self.overruns += 1
                continue
            break
        upcalls = []
        for message in messages:
            try:
                cmd, dp_ifindex, attrs = split_odp(message.payload)
                upcalls.append(decode_upcall(cmd, dp_ifindex, attrs))
            except DecodeError:
                self.malformed += 1
        self.received += len(upcalls)
        return upcalls


@dataclass(frozen=True, slots=True)
class VportEvent:
    """``kind`` is "new", "del" or "set"."""

    kind: str
    vport: Vport


_EVENT_KINDS = {VportCmd.NEW: "new", VportCmd.DEL: "del", VportCmd.SET: "set"}


class VportEvents(_Listener):
    """Vport notifications from the ``ovs_vport`` multicast group."""

    def __init__(self, conn: NetlinkConnection, family: Family) -> None:
        super().__init__(conn)
        group = family.groups.get(VPORT_MCGROUP)
        if group is None:
            raise DecodeError(f"the {family.name} family has no '{VPORT_MCGROUP}' group")
        conn.add_membership(group)
        self.overruns = 0

    def receive(self, timeout: float | None = None) -> VportEvent | None:
        while True:
            try:
                message = self._conn.recv_notification(timeout)
            except ReceiveOverrun:
                self.overruns += 1
                continue
            if message is None:
                return None
            cmd, dp_ifindex, attrs = split_odp(message.payload)
            kind = _EVENT_KINDS.get(VportCmd(cmd)) if cmd in _EVENT_KINDS else None
            if kind is not None:
                return VportEvent(kind, decode_vport(dp_ifindex, attrs))

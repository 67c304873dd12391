"""Which peers to connect to, and when: the connection maker.

Targets are addresses.  Direct targets are the ones we were given (``--peer``,
`odpctl peer connect`); discovered targets are the listening addresses that
other peers report for peers we are not connected to (so the mesh becomes
a full mesh where the network allows).  A target is satisfied while we have a
connection to the peer at that address, whichever end opened it.

A failed attempt is retried after an interval that doubles up to a maximum,
with ±50% jitter so that peers cut off together do not come back in lockstep.
A connection that lasted a while (``reset_after``) starts over from the
initial interval when it breaks.  A refusal that no retry cures (ourself,
a name collision) stops the retries until someone asks again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from odpctl.errors import UsageError

from .connection import format_address
from .names import PeerName, format_peer_name
from .topology import Topology

log = logging.getLogger("odpctl.mesh")

DEFAULT_PORT = 6783
OVERLOAD_PAUSE = 0.5  # how long dials wait while the event loop lags


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"invalid address {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"invalid address {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        try:  # a bare IPv6 address
            ipaddress.IPv6Address(text)
        except ValueError:
            raise UsageError(f"invalid address {text!r}: write IPv6 as [addr]:port") from None
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"invalid address {text!r}: expected HOST[:PORT]")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"invalid address {text!r}: bad port {port_text!r}")
        return host, int(port_text)
    return host, default_port


def normalize_address(text: str, default_port: int = DEFAULT_PORT) -> str:
    host, port = parse_address(text, default_port)
    return format_address(host, port)


class TargetState(StrEnum):
    WAITING = "waiting"  # to be tried (after try_after)
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"  # the last attempt failed; retrying later
    STOPPED = "stopped"  # a refusal no retry cures


@dataclass(slots=True)
class Target:
    address: str
    direct: bool
    state: TargetState = TargetState.WAITING
    last_error: str | None = None
    try_after: float = 0.0
    interval: float = 0.0
    attempts: int = 0
    peer: PeerName | None = None  # who answered at this address last time
    connected_since: float | None = None


class MakerHost(Protocol):
    """What the connection maker needs of the node."""

    @property
    def name(self) -> PeerName: ...

    @property
    def topology(self) -> Topology: ...

    def connected_peers(self) -> dict[PeerName, str]:
        """Peers we have a (registered) connection to -> their listening address."""
        ...

    def can_dial(self) -> bool: ...

    def overloaded(self) -> bool:
        """The event loop lags behind: start nothing new."""
        ...

    def dial(self, address: str) -> None:
        """Start connecting to ``address``; report through attempt_failed/connection_* calls."""
        ...


class ConnectionMaker:
    def __init__(
        self,
        host: MakerHost,
        *,
        discovery: bool = True,
        initial_interval: float = 1.0,
        max_interval: float = 120.0,
        reset_after: float = 60.0,
        default_port: int = DEFAULT_PORT,
        max_dials: int = 2,
    ) -> None:
        self.host = host
        self.discovery = discovery
        self.initial_interval = initial_interval
        self.max_interval = max_interval
        self.reset_after = reset_after
        self.default_port = default_port
        self.max_dials = max_dials  # connection attempts under way at once
        self.targets: dict[str, Target] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._refresh_pending = False
        self._stopped = False
        self._discovered_key: tuple[int, int] | None = None
        self._discovered_at = 0.0
        self.rediscover_interval = 2.0

    # --- requests -----------------------------------------------------------

    def add_direct(self, addresses: Iterable[str]) -> list[str]:
        """Connect to ``addresses`` (and keep reconnecting); their normalized forms."""
        added = [normalize_address(a, self.default_port) for a in addresses]
        for address in added:
            target = self.targets.get(address)
            if target is None:
                self.targets[address] = Target(address, direct=True)
            else:
                # Asked again: try now, whatever the backoff said.
                target.direct = True
                if target.state in (TargetState.FAILED, TargetState.STOPPED, TargetState.WAITING):
                    target.state = TargetState.WAITING
                    target.try_after = 0.0
                    target.interval = 0.0
        self.refresh()
        return added

    def forget(self, addresses: Iterable[str]) -> list[str]:
        """Stop connecting to ``addresses``; those that were direct targets."""
        forgotten = []
        for text in addresses:
            address = normalize_address(text, self.default_port)
            target = self.targets.get(address)
            if target is not None and target.direct:
                target.direct = False
                if target.state != TargetState.CONNECTING:
                    # Discovery may bring it back if peers still report it.
                    del self.targets[address]
                forgotten.append(address)
        self.refresh()
        return forgotten

    def direct_targets(self) -> list[str]:
        return sorted(a for a, t in self.targets.items() if t.direct)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    # --- events from the node -------------------------------------------------

    def attempt_failed(
        self, address: str, reason: str, *, peer: PeerName | None = None, permanent: bool = False
    ) -> None:
        target = self.targets.get(address)
        if target is None:
            return
        if peer is not None:
            target.peer = peer
        target.last_error = reason
        target.connected_since = None
        if permanent:
            target.state = TargetState.STOPPED
        else:
            target.state = TargetState.FAILED
            self._backoff(target)
        self.refresh()

    def connection_created(self, address: str | None, peer: PeerName) -> None:
        if address is not None and (target := self.targets.get(address)) is not None:
            target.peer = peer
            target.state = TargetState.CONNECTED
            target.last_error = None
            target.connected_since = time.monotonic()
        self.refresh()

    def connection_closed(
        self, address: str | None, reason: str, *, lived: float, permanent: bool = False
    ) -> None:
        if address is not None and (target := self.targets.get(address)) is not None:
            target.last_error = reason
            target.connected_since = None
            if permanent:
                target.state = TargetState.STOPPED
            else:
                target.state = TargetState.FAILED
                if lived >= self.reset_after:
                    target.interval = 0.0  # a long-lived connection broke: start over
                self._backoff(target)
        self.refresh()

    def _backoff(self, target: Target) -> None:
        target.interval = (
            self.initial_interval
            if target.interval <= 0
            else min(target.interval * 2, self.max_interval)
        )
        # jitter, not a secret
        target.try_after = time.monotonic() + target.interval * random.uniform(0.5, 1.5)  # noqa: S311

    # --- the loop -------------------------------------------------------------

    def refresh(self) -> None:
        """Look at the targets again soon (coalesced: many events, one look)."""
        if self._refresh_pending or self._stopped:
            return
        self._refresh_pending = True
        asyncio.get_running_loop().call_soon(self._check)

    def _check(self) -> None:
        self._refresh_pending = False
        if self._stopped:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = time.monotonic()
        connected = self.host.connected_peers()
        connected_addresses = set(connected.values())
        if self.discovery:
            self._discover(connected)
        wake: float | None = None
        dialling = sum(t.state == TargetState.CONNECTING for t in self.targets.values())
        for address, target in list(self.targets.items()):
            if target.state == TargetState.CONNECTING:
                continue
            if target.peer in connected or address in connected_addresses:
                if target.state != TargetState.CONNECTED:
                    target.state = TargetState.CONNECTED
                    target.last_error = None
                    target.connected_since = target.connected_since or now
                continue
            if target.state == TargetState.CONNECTED:
                # Its connection went away without telling us (another end's).
                target.state = TargetState.WAITING
                target.connected_since = None
                target.interval = 0.0
                # jitter, not a secret
                target.try_after = now + self.initial_interval * random.uniform(0.0, 0.5)  # noqa: S311
            if target.state == TargetState.STOPPED:
                continue
            if target.try_after <= now:
                if not self.host.can_dial():
                    target.last_error = "connection limit reached"
                    self._backoff(target)
                elif dialling >= self.max_dials:
                    # Enough handshakes under way; this one goes when one ends.
                    continue
                elif self.host.overloaded():
                    # The event loop lags: a handshake started now would time
                    # out half done, and its peer's with it.  Later.
                    wake = now + OVERLOAD_PAUSE if wake is None else min(wake, now + OVERLOAD_PAUSE)
                    continue
                else:
                    target.state = TargetState.CONNECTING
                    target.attempts += 1
                    dialling += 1
                    self.host.dial(address)
                    continue
            wake = target.try_after if wake is None else min(wake, target.try_after)
        if wake is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(wake - now, 0.01), self._check)

    def _discover(self, connected: dict[PeerName, str]) -> None:
        """Targets for the peers others are connected to and we are not."""
        topology = self.host.topology
        # Worth a look when peers come or go (or we connect to one), else now
        # and then: it walks every connection of every peer.
        key = (len(topology.peers), len(connected))
        now = time.monotonic()
        if key == self._discovered_key and now - self._discovered_at < self.rediscover_interval:
            return
        self._discovered_key, self._discovered_at = key, now
        ourself = self.host.name
        wanted: dict[str, PeerName] = {}
        for peer in topology.peers.values():
            if peer.name == ourself:
                continue
            remotes, addresses, _ = peer.links()
            for remote, address in zip(remotes, addresses, strict=True):
                if address and remote != ourself and remote not in connected:
                    wanted.setdefault(address, remote)
        for address, target in list(self.targets.items()):
            if (
                not target.direct
                and address not in wanted
                and target.state != TargetState.CONNECTING
            ):
                del self.targets[address]
        for address, remote in wanted.items():
            if address not in self.targets:
                # Of two peers that discover each other, the one with the lower
                # name dials first: its connection is the one the duplicate
                # tie-break keeps, so the other one's attempt would be wasted.
                jitter = random.uniform(1, 2)  # noqa: S311 - not a secret
                delay = 0.0 if ourself < remote else self.initial_interval * jitter
                self.targets[address] = Target(
                    address, direct=False, peer=remote, try_after=now + delay
                )

    # --- status ---------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for address, t in sorted(self.targets.items()):
            out.append(
                {
                    "address": address,
                    "direct": t.direct,
                    "state": t.state.value,
                    "peer": format_peer_name(t.peer) if t.peer is not None else None,
                    "attempts": t.attempts,
                    "last_error": t.last_error,
                    "retry_in": (
                        round(max(t.try_after - now, 0.0), 1)
                        if t.state in (TargetState.FAILED, TargetState.WAITING)
                        else None
                    ),
                }
            )
        return out

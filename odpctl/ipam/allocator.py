"""The allocator: one peer's IPAM, on the mesh's event loop.

It hands out addresses from the ranges the ring gives this peer, asks a live
peer for space (drawn with weights their free counts) when it has none left
in the window asked for, answers such requests by giving away half of its
longest free run, makes the ring when the bootstrap says so, and gossips
its state (ring, and Paxos claims until the ring is made) on the ``ipam``
channel: to its neighbours when something changed, as the mesh's periodic
gossip otherwise.  Everything runs on the loop, so nothing needs a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any

from odpctl.errors import NotFoundError, OdpError, UsageError
from odpctl.mesh.errors import MeshError
from odpctl.mesh.gossip import GossipChannel, GossipData, RawGossipData
from odpctl.mesh.names import PeerName, format_peer_name, parse_peer_name
from odpctl.mesh.node import MeshNode
from odpctl.mesh.wire import pack, unpack

from .addr import Cidr, format_ip
from .bootstrap import Bootstrap
from .errors import AddressInUse, NoSpace, NotReady, Refused
from .paxos import NONE, Paxos, decode_claims
from .ring import Removal, Ring, describe
from .space import Space
from .store import Store

log = logging.getLogger("odpctl.ipam")

CHANNEL = "ipam"
DEFAULT_RANGE = "10.32.0.0/12"
_ID = re.compile(r"[\x21-\x7e]{1,256}")

IDLE, AWAITING, READY, NO_SPACE = "idle", "awaiting consensus", "ready", "no space"
PATIENCE = 2.0  # seconds of no Paxos progress before a peer proposes (again)
STUCK = 1.0  # seconds of no Paxos progress before a peer asks its neighbours


@dataclass(frozen=True)
class IpamConfig:
    range: Cidr = field(default_factory=lambda: Cidr.parse(DEFAULT_RANGE))
    bootstrap: Bootstrap = field(default_factory=lambda: Bootstrap("consensus", 1))
    timeout: float = 10.0  # how long a request waits for the ring or for space
    settle: float = 1.0  # how long rmpeer waits to hear of a competing taker
    tick: float = 0.2  # consensus and request retries


class _State:
    """Our whole state on the channel: encoded when sent, so always the latest."""

    __slots__ = ("allocator",)

    def __init__(self, allocator: Allocator) -> None:
        self.allocator = allocator

    def encode(self) -> list[bytes]:
        return [self.allocator.encode_state()]

    def merge(self, _other: GossipData) -> GossipData:
        return self


class _Delta:
    """What changed: ring entries, removals, Paxos claims (by peer); encoded at their
    latest when sent, and deltas waiting for a busy connection merged into one."""

    __slots__ = ("allocator", "claims", "tokens", "victims")

    def __init__(
        self, allocator: Allocator, tokens: set[int], victims: set[PeerName], claims: set[PeerName]
    ) -> None:
        self.allocator = allocator
        self.tokens = tokens
        self.victims = victims
        self.claims = claims

    def encode(self) -> list[bytes]:
        return [self.allocator.encode_delta(self)]

    def merge(self, other: GossipData) -> GossipData:
        if not isinstance(other, _Delta):
            return other  # the whole state: it holds everything a delta would
        return _Delta(
            self.allocator,
            self.tokens | other.tokens,
            self.victims | other.victims,
            self.claims | other.claims,
        )


class Allocator:
    def __init__(self, node: MeshNode, config: IpamConfig, store: Store | None = None) -> None:
        self.node = node
        self.ourself = node.name
        self.config = config
        self.cidr = config.range
        self.ring = Ring(self.cidr.start, self.cidr.end)
        self.space = Space()
        self.store = store
        boot = config.bootstrap
        self.paxos: Paxos | None = (
            Paxos(self.ourself, boot.peers) if boot.mode == "consensus" else None
        )
        self.refusals: dict[PeerName, str] = {}
        self.nicknames: dict[PeerName, str] = {}
        self.counters = {
            "allocated": 0,
            "released": 0,
            "space_asked": 0,
            "space_given": 0,
            "gossip_sent": 0,
            "gossip_bytes": 0,
            "gossip_received": 0,
            "delta_bytes_received": 0,
        }
        self._changed = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - jitter and a donor's choice, not secrets
        self._asked_at = -1e9
        self._proposed_at = -1e9
        self._pushed_at = -1e9
        self._progress_at = 0.0
        self._patience = PATIENCE * self._rng.uniform(1.5, 3.0)
        self._task: asyncio.Task[None] | None = None
        self._state = _State(self)
        self.channel: GossipChannel = node.gossip_channel(CHANNEL, self)
        self._load()

    # --- lifecycle -------------------------------------------------------------------

    def _load(self) -> None:
        if self.store is not None:
            self._restore(self.store)
        boot = self.config.bootstrap
        if not self.ring.made and boot.mode == "seed":
            self.ring.make(boot.seeds)

    def _restore(self, store: Store) -> None:
        saved, allocations = store.load()
        if saved is not None:
            try:
                ring = Ring.decode(saved)
                self.ring.check_compatible(ring, "the saved state")
                self.ring.merge(ring)
            except OdpError as exc:
                log.warning("IPAM: not using the saved ring (%s)", exc)
        # Our containers' addresses first: nothing new is handed out before they are back.
        for ident, addr in allocations.items():
            if addr in self.cidr and addr not in self.space.by_addr:
                self.space.add(ident, addr)
        if allocations:
            log.info("IPAM: %d address(es) claimed back from the saved state", len(self.space))

    def start(self) -> None:
        self._progress_at = asyncio.get_running_loop().time()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.store is not None:
            self.store.close()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick * self._rng.uniform(0.8, 1.2))
            try:
                self._bootstrap_step()
            except Exception:  # a bug must not end IPAM's clock
                log.exception("IPAM tick")

    # --- bootstrap -----------------------------------------------------------------------

    def _bootstrap_step(self) -> None:
        paxos = self.paxos
        if self.ring.made or paxos is None:
            return
        now = asyncio.get_running_loop().time()
        accepted = paxos.knows[self.ourself].accepted != NONE
        if accepted and now - max(self._progress_at, self._pushed_at) > STUCK:
            # We accepted a value, but heard of no decision: maybe its broadcast
            # passed us by.  Our whole state to some neighbours; one that has the
            # ring answers with it.
            self._pushed_at = now
            self.channel.gossip_neighbour_subset(self._state)
        if paxos.heard() < paxos.quorum:
            return
        # The lowest-named peer heard proposes at once; the others only when
        # nothing has moved for a while, so that proposers seldom duel.  A
        # proposal under way is left alone while the claims keep changing.
        if min(paxos.knows) == self.ourself:
            promised = paxos.knows[self.ourself].promise != NONE
            patience = PATIENCE if promised else 0.0
        else:
            patience = self._patience
        if now - max(self._progress_at, self._proposed_at) < patience:
            return
        paxos.propose()
        self._proposed_at = now
        self._after_paxos_change()
        self._announce()

    def _after_paxos_change(self) -> None:
        assert self.paxos is not None
        self.paxos.think()
        value = self.paxos.consensus()
        if value is not None and not self.ring.made:
            self.ring.make(value)
            log.info("IPAM: consensus reached; ring made for %d peer(s)", len(value))
            self._ring_changed()
            if self.paxos.knows[self.ourself].promise[1] == self.ourself:
                # We proposed: the acceptances came to us alone; now all learn of them.
                self._announce_decision(self.paxos)
        self._progress_at = asyncio.get_running_loop().time()
        self._patience = PATIENCE * self._rng.uniform(1.5, 3.0)
        self._changed.set()

    # --- the gossip channel ---------------------------------------------------------------

    def encode_state(self) -> bytes:
        self._report_free()
        body: dict[str, Any] = {"v": 1, "range": [self.cidr.start, self.cidr.end]}
        if self.ring.made or self.ring.removals:
            body["ring"] = self.ring.encode()
        if self.paxos is not None and not self.ring.made:
            body["paxos"] = self.paxos.encode()
            body["n"] = self.paxos.quorum_of
        return self._count(pack(body))

    def encode_delta(self, delta: _Delta) -> bytes:
        body: dict[str, Any] = {"v": 1, "range": [self.cidr.start, self.cidr.end], "delta": True}
        if self.ring.made and (delta.tokens or delta.victims):
            body["ring"] = self.ring.encode_partial(delta.tokens, delta.victims)
        if self.paxos is not None and delta.claims:
            body["paxos"] = self.paxos.encode(delta.claims)
            body["n"] = self.paxos.quorum_of
        return self._count(pack(body))

    def _count(self, data: bytes) -> bytes:
        self.counters["gossip_sent"] += 1
        self.counters["gossip_bytes"] += len(data)
        return data

    def _announce(self) -> None:
        """Our own changes, to every peer along our broadcast tree: each hears each
        change once (periodic gossip of the whole state repairs what trees miss)."""
        tokens, victims = self.ring.take_touched()
        if tokens or victims:
            self.channel.gossip_broadcast(_Delta(self, tokens, victims, set()))
        if self.paxos is not None and self.paxos.take_touched():
            self._announce_claims(self.paxos)

    def _announce_claims(self, paxos: Paxos) -> None:
        """A promise or an acceptance matters to its proposer alone: it goes there
        (n messages a phase, where broadcasting them all would cost n²); the
        proposer's own claims, and the quorum that decided, go to everyone."""
        promise = paxos.knows[self.ourself].promise
        proposer = PeerName(promise[1])
        if promise != NONE and proposer != self.ourself:
            delta = _Delta(self, set(), set(), {self.ourself})
            try:
                self.channel.gossip_unicast(proposer, pack({"state": self.encode_delta(delta)}))
                return
            except (MeshError, OdpError):
                pass  # no route to it now: everyone hears, and it will too
        self.channel.gossip_broadcast(_Delta(self, set(), set(), {self.ourself}))

    def _announce_decision(self, paxos: Paxos) -> None:
        chosen = paxos.knows[self.ourself].accepted
        deciders = {p for p, c in paxos.knows.items() if c.accepted == chosen}
        self.channel.gossip_broadcast(_Delta(self, set(), set(), deciders))

    def gossip(self) -> GossipData | None:
        self._report_free()
        self._announce()
        return self._state

    def on_gossip(self, src: PeerName, msg: bytes) -> GossipData | None:
        # A repair, or a new neighbour's state: merged, not spread (the others repair
        # themselves the same way); what we do about it is ours to announce.
        if self._receive(src, msg):
            self._announce()
        return None

    def on_gossip_broadcast(self, src: PeerName, update: bytes) -> GossipData | None:
        if self._receive(src, update):
            self._announce()
        # Passed on along the sender's tree whatever it was to us: the peers below
        # us hear it from no one else.
        return RawGossipData([update])

    def on_gossip_unicast(self, src: PeerName, msg: bytes) -> None:
        try:
            body = unpack(msg, "IPAM request")
            if not isinstance(body, dict):
                raise UsageError("not a map")
            state = body.get("state")
            if isinstance(state, bytes) and self._receive(src, state):
                self._announce()
            ask = body.get("ask")
            if ask is not None:
                if (
                    not isinstance(ask, list)
                    or len(ask) != 2
                    or not all(isinstance(x, int) for x in ask)
                ):
                    raise UsageError(f"bad window {ask!r}")
                self._give_space(src, ask[0], ask[1])
        except OdpError as exc:
            log.warning("IPAM: bad request from %s: %s", format_peer_name(src), exc)

    def _receive(self, src: PeerName, payload: bytes) -> bool:
        """Merge a peer's state; whether ours changed (and so is news to pass on)."""
        self.counters["gossip_received"] += 1
        try:
            body = unpack(payload, "IPAM state")
            if not isinstance(body, dict) or body.get("v") != 1:
                raise UsageError("not IPAM state version 1")
            if body.get("delta") is True:
                self.counters["delta_bytes_received"] += len(payload)
            if body.get("range") != [self.cidr.start, self.cidr.end]:
                other = body.get("range")
                where = (
                    describe(*other)
                    if isinstance(other, list)
                    and len(other) == 2
                    and all(isinstance(x, int) for x in other)
                    else repr(other)
                )
                raise Refused(
                    f"it allocates from {where}, we from {self.cidr}",
                    hint="give every router the same --ipalloc-range",
                )
            changed = False
            if self.ring.made and "ring" not in body and body.get("delta") is not True:
                # A peer still bootstrapping that we can help: it gets the ring.
                self.channel.send_down(src, self._state)
            if "ring" in body:
                ring = Ring.decode(body["ring"])
                self.ring.check_compatible(ring, "the peer")
                # A delta completes a ring we have, never makes one.
                if (self.ring.made or not ring.partial) and self.ring.merge(ring):
                    changed = True
                    self._ring_changed()
            if "paxos" in body and self.paxos is not None and not self.ring.made:
                n = body.get("n")
                if n != self.paxos.quorum_of:
                    raise Refused(
                        f"it bootstraps with consensus={n}, we with "
                        f"consensus={self.paxos.quorum_of}",
                        hint="give every router the same --ipalloc-init",
                    )
                if self.paxos.merge(decode_claims(body["paxos"])):
                    self._after_paxos_change()
                    changed = True
        except Refused as exc:
            if self.refusals.get(src) != exc.message:
                log.warning("IPAM: refusing peer %s: %s", format_peer_name(src), exc)
            self.refusals[src] = exc.message
            return False
        except OdpError as exc:
            log.warning("IPAM: bad state from %s: %s", format_peer_name(src), exc)
            return False
        self.refusals.pop(src, None)
        if changed:
            self._changed.set()
        return changed

    def _ring_changed(self) -> None:
        if self.store is not None:
            self.store.save_ring(self.ring.encode())
        self._changed.set()

    def _report_free(self) -> None:
        free = {}
        lo_use, hi_use = self.cidr.usable()
        for token, lo, hi, entry in self.ring.ranges():
            if entry.peer == self.ourself:
                lo, hi = max(lo, lo_use), min(hi, hi_use)
                free[token] = max(hi - lo, 0) - self.space.count_in(lo, hi)
        if self.ring.report_free(self.ourself, free) and self.store is not None:
            self.store.save_ring(self.ring.encode())

    # --- space from others ---------------------------------------------------------------

    def _ask_for_space(self, lo: int, hi: int) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._asked_at < 0.5:
            return
        alive = self.node.routes.reachable()
        donor = self.ring.choose_donor(self.ourself, alive, self._rng)
        if donor is None:
            return
        self._asked_at = now
        self.counters["space_asked"] += 1
        try:
            self.channel.gossip_unicast(donor, pack({"ask": [lo, hi]}))
        except (MeshError, OdpError) as exc:
            log.debug("IPAM: cannot ask %s for space: %s", format_peer_name(donor), exc)

    def _give_space(self, to: PeerName, lo: int, hi: int) -> None:
        if not self.ring.made:
            return
        gap = self.space.largest_gap(self._windows(lo, hi))
        if gap is None:
            log.info("IPAM: %s asked for space; we have none free", format_peer_name(to))
            return
        start, stop = gap
        half = start + (stop - start) // 2
        # Keep the lower half: our own allocations continue from the cursor there.
        given = (half, stop)
        for a, b in self._split_by_entry(*given):
            self.ring.grant(a, b, self.ourself, to)
        self.counters["space_given"] += 1
        log.info(
            "IPAM: gave %s-%s (%d addresses) to %s",
            format_ip(given[0]),
            format_ip(given[1] - 1),
            given[1] - given[0],
            format_peer_name(to),
        )
        self._ring_changed()
        self._unicast_state(to)
        self._announce()

    def _unicast_state(self, to: PeerName) -> None:
        """Our state straight to ``to``, which waits for it (gossip may take a detour)."""
        with contextlib.suppress(MeshError, OdpError):
            self.channel.gossip_unicast(to, pack({"state": self.encode_state()}))

    def _split_by_entry(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """[lo, hi) cut where ring entries start (a grant is within one entry)."""
        cuts = [t for t in self.ring.tokens if lo < t < hi]
        bounds = [lo, *cuts, hi]
        return list(itertools.pairwise(bounds))

    # --- allocation ----------------------------------------------------------------------

    def _window(self, subnet: Cidr | None) -> tuple[int, int]:
        lo, hi = self.cidr.usable()
        if subnet is not None:
            if not self.cidr.covers(subnet):
                raise UsageError(f"{subnet} is not inside the allocation range {self.cidr}")
            s_lo, s_hi = subnet.usable()
            lo, hi = max(lo, s_lo), min(hi, s_hi)
        return lo, hi

    def _windows(self, lo: int, hi: int) -> list[tuple[int, int]]:
        out = []
        for a, b in self.ring.owned(self.ourself):
            a, b = max(a, lo), min(b, hi)
            if a < b:
                out.append((a, b))
        return out

    @staticmethod
    def check_id(ident: Any) -> str:
        if not isinstance(ident, str) or not _ID.fullmatch(ident):
            raise UsageError(
                f"invalid container ID {ident!r}: 1 to 256 printable characters, no spaces"
            )
        return ident

    def prefixlen(self, subnet: Cidr | None = None) -> int:
        return (subnet or self.cidr).prefixlen

    def lookup(self, ident: str) -> int | None:
        return self.space.by_id.get(ident)

    async def allocate(self, ident: str, subnet: Cidr | None = None) -> int:
        """An address for container ``ident`` (the same one if it has one already)."""
        self.check_id(ident)
        lo, hi = self._window(subnet)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout
        while True:
            addr = self.space.by_id.get(ident)
            if addr is not None:
                return addr
            if self.ring.made:
                addr = self.space.find_free(self._windows(lo, hi))
                if addr is not None:
                    self._record(ident, addr)
                    return addr
                self._ask_for_space(lo, hi)
            await self._wait(deadline, subnet)

    async def claim(self, ident: str, addr: int) -> int:
        """``addr`` for container ``ident``: granted if it is free and ours to give."""
        self.check_id(ident)
        if addr not in self.cidr:
            # Outside the range: not ours to manage, the caller's business.
            return addr
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout
        while True:
            holder = self.space.by_addr.get(addr)
            if holder == ident:
                return addr
            if holder is not None:
                raise AddressInUse(f"{format_ip(addr)} is in use by container {holder}")
            if self.space.by_id.get(ident) is not None:
                raise AddressInUse(
                    f"container {ident} already has {format_ip(self.space.by_id[ident])}",
                    hint="release it first",
                )
            if self.ring.made:
                owner = self.ring.owner(addr)
                if owner == self.ourself:
                    self._record(ident, addr)
                    return addr
                assert owner is not None
                raise AddressInUse(
                    f"{format_ip(addr)} belongs to peer {self.describe_peer(owner)}",
                    hint="claim it on that peer's router, or let IPAM choose",
                )
            await self._wait(deadline, None)

    def release(self, ident: str) -> int | None:
        self.check_id(ident)
        addr = self.space.remove(ident)
        if addr is not None:
            self.counters["released"] += 1
            if self.store is not None:
                self.store.released(ident)
        return addr

    def _record(self, ident: str, addr: int) -> None:
        self.space.add(ident, addr)
        self.counters["allocated"] += 1
        if self.store is not None:
            self.store.allocated(ident, addr)

    async def _wait(self, deadline: float, subnet: Cidr | None) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            _state, message = self.state()
            if not self.ring.made:
                raise NotReady(f"IPAM is not ready: {message}", hint=self._not_ready_hint())
            raise NoSpace(
                f"no free address in {subnet or self.cidr} on this peer, and no live peer gave any",
                hint="see `odpctl ipam status`",
            )
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    def _not_ready_hint(self) -> str:
        boot = self.config.bootstrap
        if boot.mode == "observer":
            return "an observer waits for a peer that has the ring: connect one"
        return "start the other routers, or connect them (`odpctl peer connect`)"

    # --- peers leaving ---------------------------------------------------------------------

    def resolve(self, text: str) -> PeerName:
        """A peer named by its name or nickname."""
        self._learn_nicknames()
        matches = [p for p, nick in self.nicknames.items() if nick == text]
        if len(matches) == 1:
            return matches[0]
        try:
            return parse_peer_name(text)
        except UsageError:
            raise NotFoundError(
                f"no peer named {text!r} is known", hint="see `odpctl ipam status`"
            ) from None

    async def rmpeer(self, text: str) -> dict[str, Any]:
        """Take over the ranges of a dead peer, unless it lives or another is taking them."""
        victim = self.resolve(text)
        who = self.describe_peer(victim)
        if victim == self.ourself:
            raise Refused(
                "a peer cannot remove itself",
                hint="stop the router with --shutdown to hand its ranges over",
            )
        if not self.ring.made:
            raise NotReady(f"IPAM is not ready: {self.state()[1]}")
        alive = self.node.routes.reachable()
        if victim in alive or victim in self._seen_by_live(alive):
            raise Refused(
                f"peer {who} is alive (reachable in the mesh): it keeps its ranges",
                hint="stop its router with --shutdown, or rmpeer it once it is gone",
            )
        lease = self.ring.removals.get(victim)
        if lease is not None and lease.taker != self.ourself and lease.taker in alive:
            verb = "took" if lease.done else "is taking"
            raise Refused(f"peer {self.describe_peer(lease.taker)} {verb} {who}'s ranges")
        if victim not in self.ring.peers():
            raise NotFoundError(f"peer {who} owns no addresses")
        counter = (lease.counter + 1) if lease is not None else 1
        self.ring.lease(victim, Removal(counter, self.ourself))
        self._ring_changed()
        self._announce()
        await asyncio.sleep(self.config.settle)
        lease = self.ring.removals[victim]
        if lease.taker != self.ourself:
            raise Refused(f"peer {self.describe_peer(lease.taker)} is taking {who}'s ranges")
        if victim in self.node.routes.reachable():
            raise Refused(f"peer {who} came back: it keeps its ranges")
        moved = self.ring.transfer(victim, self.ourself)
        self.ring.lease(victim, Removal(lease.counter, self.ourself, True))
        self._ring_changed()
        self._announce()
        log.info("IPAM: took over %d address(es) of %s", moved, who)
        return {
            "peer": format_peer_name(victim),
            "nickname": self.nicknames.get(victim),
            "addresses": moved,
        }

    def _seen_by_live(self, alive: set[PeerName]) -> set[PeerName]:
        """Peers a live peer still holds an established connection to."""
        seen: set[PeerName] = set()
        for peer in alive:
            entry = self.node.topology.get(peer)
            if entry is not None:
                seen.update(p for p, c in entry.connections.items() if c.established)
        return seen

    async def leave(self) -> dict[str, Any]:
        """Hand all our ranges to a live peer: we leave for good."""
        owned = sum(b - a for a, b in self.ring.owned(self.ourself))
        if not owned:
            if self.store is not None:
                self.store.forget()
            return {"to": None, "addresses": 0}
        alive = sorted(self.node.routes.reachable() - {self.ourself})
        if not alive:
            raise Refused(
                f"no live peer to hand {owned} address(es) to",
                hint="stop without --shutdown, and rmpeer this peer from another later",
            )
        to = alive[0]
        moved = self.ring.transfer(self.ourself, to)
        self.space = Space()
        self._ring_changed()
        self._unicast_state(to)
        self._announce()
        await asyncio.sleep(0.3)  # for the writers to put it on the wire
        if self.store is not None:
            self.store.forget()
        log.info("IPAM: handed %d address(es) to %s", moved, self.describe_peer(to))
        return {"to": format_peer_name(to), "nickname": self.nicknames.get(to), "addresses": moved}

    # --- status ----------------------------------------------------------------------------

    def _learn_nicknames(self) -> None:
        for name, peer in self.node.topology.peers.items():
            if peer.nickname:
                self.nicknames[name] = peer.nickname

    def describe_peer(self, peer: PeerName) -> str:
        if peer not in self.nicknames:
            self._learn_nicknames()
        nick = self.nicknames.get(peer)
        return f"{format_peer_name(peer)} ({nick})" if nick else format_peer_name(peer)

    def state(self) -> tuple[str, str]:
        if not self.ring.made:
            if self.paxos is None:
                return IDLE, (
                    "idle: waiting for a peer's ring"
                    if self.config.bootstrap.mode == "observer"
                    else IDLE
                )
            return AWAITING, (
                f"awaiting consensus ({self.paxos.heard()} of {self.paxos.quorum_of} peers heard)"
            )
        self._report_free()
        alive = self.node.routes.reachable()
        free = self.ring.free_counts()
        if not any(free.get(p, 0) for p in alive | {self.ourself}):
            return NO_SPACE, NO_SPACE
        return READY, READY

    def status(self) -> dict[str, Any]:
        self._learn_nicknames()
        state, message = self.state()
        alive = self.node.routes.reachable()
        owned = self.ring.owned_counts()
        free = self.ring.free_counts()
        peers = []
        for peer in sorted(set(owned) | (alive if self.ring.made else set())):
            peers.append(
                {
                    "name": format_peer_name(peer),
                    "nickname": self.nicknames.get(peer),
                    "owned": owned.get(peer, 0),
                    "free": free.get(peer, 0),
                    "reachable": peer in alive,
                    "self": peer == self.ourself,
                }
            )
        return {
            "state": state,
            "message": message,
            "range": str(self.cidr),
            "size": self.cidr.size,
            "bootstrap": str(self.config.bootstrap),
            "peers": peers,
            "allocated": len(self.space),
            # Ours, in a range the ring gives another peer now (this peer was removed
            # with rmpeer while it lived): those addresses may be handed out twice.
            "foreign": sorted(
                format_ip(a)
                for a in self.space.by_addr
                if self.ring.made and self.ring.owner(a) != self.ourself
            ),
            "refused": [
                {"peer": self.describe_peer(p), "reason": r}
                for p, r in sorted(self.refusals.items())
            ],
            "removals": [
                {
                    "peer": self.describe_peer(v),
                    "taker": self.describe_peer(r.taker),
                    "done": r.done,
                }
                for v, r in sorted(self.ring.removals.items())
            ],
            "counters": dict(self.counters),
        }

    def allocations(self) -> dict[str, str]:
        return {ident: format_ip(addr) for ident, addr in sorted(self.space.by_id.items())}

"""The flow table: masked megaflows behind an exact-match cache.

A flow is stored under its mask: one dict per distinct mask, keyed by the
flow's masked key as an int (`odpctl.datapath.layout`).  A packet is
classified by AND-ing its key with each mask in turn and probing that
mask's dict: a handful of C-level operations per mask, whatever the number
of flows.  Masks are tried most-hit first (re-sorted by `rebalance`), as
the kernel's mask cache does.

In front sits an exact-match cache (EMC) from a packet's whole key to its
flow, so that a packet of a known connection costs one dict lookup.  Any
change to the table empties it: simpler and safer than tracking which
entries a change could affect, and flow changes are rare next to packets.

The kernel's rules for adding flows are here too: `find_overlap` is the
lookup that makes a new flow "already exist" when an installed megaflow
matches its key, and `find_exact` finds a flow by the unmasked key it was
installed with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from odpctl.datapath.keyparse import Match

if TYPE_CHECKING:
    from odpctl.datapath.execute import Program
    from odpctl.odp.actions import Action
from odpctl.datapath.layout import to_int

# Most exact-match cache entries kept; past it, the oldest go first.
EMC_SIZE = 8192


class DpFlow:
    """One installed flow and its statistics."""

    __slots__ = (
        "actions",
        "actions_attr",
        "bytes",
        "key_attr",
        "mask",
        "mask_attr",
        "masked",
        "match",
        "packets",
        "program",
        "tcp_flags",
        "ufid",
        "ufid_key_attr",
        "used",
    )

    def __init__(self, match: Match, ufid: bytes | None) -> None:
        self.match = match
        self.ufid = ufid
        self.mask: _Mask | None = None
        self.masked = match.key_int() & match.mask_int()
        self.actions: list[Action] = []
        self.program: Program = ()
        # Encoded OVS_FLOW_ATTR_* payloads, made when a reply first needs them.
        self.actions_attr: bytes | None = None
        self.key_attr: bytes | None = None
        self.mask_attr: bytes | None = None
        self.ufid_key_attr: bytes | None = None
        self.packets = 0
        self.bytes = 0
        self.used = 0
        self.tcp_flags = 0

    def clear_stats(self) -> None:
        self.packets = self.bytes = self.used = self.tcp_flags = 0


class _Mask:
    __slots__ = ("flows", "hits", "value")

    def __init__(self, value: int) -> None:
        self.value = value
        self.flows: dict[int, DpFlow] = {}
        self.hits = 0


class FlowTable:
    def __init__(self) -> None:
        self._masks: list[_Mask] = []
        self._by_value: dict[int, _Mask] = {}
        self._ufids: dict[bytes, DpFlow] = {}
        # Insertion-ordered, for dumps.
        self._flows: dict[DpFlow, None] = {}
        self.emc: dict[bytes, DpFlow] = {}
        # The same, keyed by header signatures (see extract.signature), with
        # the extracted key part kept alongside: (meta, signature, options).
        self.fast: dict[tuple[bytes, bytes, bytes], tuple[DpFlow, bytes]] = {}
        self.emc_size = EMC_SIZE
        # Counters for the datapath's megaflow statistics.
        self.mask_hit = 0
        self.cache_hit = 0

    def __len__(self) -> int:
        return len(self._flows)

    def __iter__(self) -> Iterator[DpFlow]:
        return iter(list(self._flows))

    @property
    def n_masks(self) -> int:
        return len(self._masks)

    # --- packets -------------------------------------------------------------

    def lookup(self, key: bytes, opts: bytes = b"") -> DpFlow | None:
        """The flow for a packet's key: the EMC, then the masks in hit order."""
        cache_key = key + opts if opts else key
        flow = self.emc.get(cache_key)
        if flow is not None:
            self.cache_hit += 1
            return flow
        flow = self.classify(key, opts)
        if flow is not None:
            emc = self.emc
            if len(emc) >= self.emc_size:
                del emc[next(iter(emc))]
            emc[cache_key] = flow
        return flow

    def remember(self, cache_key: tuple[bytes, bytes, bytes], flow: DpFlow, fields: bytes) -> None:
        fast = self.fast
        if len(fast) >= self.emc_size:
            del fast[next(iter(fast))]
        fast[cache_key] = (flow, fields)

    def classify(self, key: bytes, opts: bytes = b"") -> DpFlow | None:
        """The megaflow lookup alone, without the cache."""
        value = to_int(key, opts)
        visited = 0
        for mask in self._masks:
            visited += 1
            flow = mask.flows.get(value & mask.value)
            if flow is not None:
                mask.hits += 1
                self.mask_hit += visited
                return flow
        self.mask_hit += visited
        return None

    def rebalance(self) -> None:
        """Try the most-hit masks first from now on."""
        self._masks.sort(key=lambda m: m.hits, reverse=True)
        for mask in self._masks:
            mask.hits >>= 1  # let old popularity fade

    # --- control ----------------------------------------------------------------

    def find_ufid(self, ufid: bytes) -> DpFlow | None:
        return self._ufids.get(ufid)

    def find_overlap(self, match: Match) -> DpFlow | None:
        """An installed flow whose megaflow matches ``match``'s key, if any."""
        value = match.key_int()
        for mask in self._masks:
            flow = mask.flows.get(value & mask.value)
            if flow is not None:
                return flow
        return None

    def find_exact(self, match: Match) -> DpFlow | None:
        """The key-identified flow installed with exactly ``match``'s key."""
        value = match.key_int()
        for mask in self._masks:
            flow = mask.flows.get(value & mask.value)
            if (
                flow is not None
                and flow.ufid is None
                and flow.match.key == match.key
                and flow.match.key_opts == match.key_opts
            ):
                return flow
        return None

    def insert(self, flow: DpFlow) -> None:
        value = flow.match.mask_int()
        mask = self._by_value.get(value)
        if mask is None:
            mask = self._by_value[value] = _Mask(value)
            self._masks.append(mask)
        mask.flows[flow.masked] = flow
        flow.mask = mask
        if flow.ufid is not None:
            self._ufids[flow.ufid] = flow
        self._flows[flow] = None
        self.emc.clear()
        self.fast.clear()

    def remove(self, flow: DpFlow) -> None:
        mask = flow.mask
        if mask is None:
            return
        del mask.flows[flow.masked]
        if not mask.flows:
            del self._by_value[mask.value]
            self._masks.remove(mask)
        flow.mask = None
        if flow.ufid is not None:
            self._ufids.pop(flow.ufid, None)
        del self._flows[flow]
        self.emc.clear()
        self.fast.clear()

    def flush(self) -> None:
        for flow in self._flows:
            flow.mask = None
        self._masks.clear()
        self._by_value.clear()
        self._ufids.clear()
        self._flows.clear()
        self.emc.clear()
        self.fast.clear()

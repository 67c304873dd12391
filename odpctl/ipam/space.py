"""The addresses we handed out, and where a free one is in what we own."""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class Space:
    """Allocations by container ID, and by address (kept sorted for counting)."""

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.by_addr: dict[int, str] = {}
        self._sorted: list[int] = []
        self._cursor = 0  # where the next search starts: allocations come in runs

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, ident: str, addr: int) -> None:
        self.by_id[ident] = addr
        self.by_addr[addr] = ident
        bisect.insort(self._sorted, addr)
        self._cursor = addr + 1

    def remove(self, ident: str) -> int | None:
        addr = self.by_id.pop(ident, None)
        if addr is not None:
            del self.by_addr[addr]
            del self._sorted[bisect.bisect_left(self._sorted, addr)]
        return addr

    def count_in(self, lo: int, hi: int) -> int:
        return bisect.bisect_left(self._sorted, hi) - bisect.bisect_left(self._sorted, lo)

    def find_free(self, windows: Iterable[tuple[int, int]]) -> int | None:
        """The first free address in ``windows`` (sorted, disjoint), from the cursor on,
        then from the start."""
        windows = list(windows)
        for lo_bound in (self._cursor, 0):
            for lo, hi in windows:
                addr = self._first_free(max(lo, lo_bound), hi)
                if addr is not None:
                    return addr
        return None

    def _first_free(self, lo: int, hi: int) -> int | None:
        taken = self._sorted
        i = bisect.bisect_left(taken, lo)
        addr = lo
        while addr < hi and i < len(taken) and taken[i] == addr:
            addr += 1
            i += 1
        return addr if addr < hi else None

    def largest_gap(self, windows: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
        """The longest run of free addresses in ``windows``: what we can give away."""
        best: tuple[int, int] | None = None
        taken = self._sorted
        for lo, hi in windows:
            start = lo
            i = bisect.bisect_left(taken, lo)
            while start < hi:
                stop = taken[i] if i < len(taken) and taken[i] < hi else hi
                if stop > start and (best is None or stop - start > best[1] - best[0]):
                    best = (start, stop)
                start = stop + 1
                i += 1
        return best

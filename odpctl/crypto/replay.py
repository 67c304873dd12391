"""A sliding replay window over 64-bit datagram counters (RFC 4303's, as a bitmap).

The sender numbers its datagrams 0, 1, 2...  The receiver remembers the highest
number it accepted and, as bits of one integer, which of the `size` numbers below
it it has seen: a number seen before, or too old to tell, is a replay.  Datagrams
may arrive out of order within the window (the underlay reorders UDP).

A number is only marked once its datagram has been authenticated (`accept`):
a forgery checked first (`fresh`) must not use up the number of a real one.
"""

from __future__ import annotations

DEFAULT_SIZE = 1024


class ReplayWindow:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("a replay window of at least one")
        self.size = size
        self._top = -1  # the highest counter accepted; -1 before the first
        self._seen = 0  # bit i: counter top - i was accepted
        self._full = (1 << size) - 1

    def fresh(self, counter: int) -> bool:
        """Whether ``counter`` may still be accepted (neither seen nor too old)."""
        if counter > self._top:
            return True
        behind = self._top - counter
        return behind < self.size and not self._seen >> behind & 1

    def accept(self, counter: int) -> None:
        """Mark ``counter`` seen (its datagram was authentic and `fresh`)."""
        if counter > self._top:
            shift = counter - self._top
            self._seen = (self._seen << shift | 1) & self._full if shift < self.size else 1
            self._top = counter
        else:
            self._seen |= 1 << (self._top - counter)

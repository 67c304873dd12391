"""The errors of the data-plane crypto: what a hostile or stale datagram raises.

Only these leave the decoders of sealed datagrams, so the receiving path
catches one family, counts the datagram by its kind, and drops it.
"""

from __future__ import annotations

from odpctl.errors import DecodeError


class SealError(DecodeError):
    """A sealed datagram that cannot be opened: truncated, forged or corrupt."""


class ReplayError(SealError):
    """An authentic datagram seen before (or too old for the replay window)."""

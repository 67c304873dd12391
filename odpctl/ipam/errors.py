"""IPAM's errors: typed, with the reason a person needs."""

from __future__ import annotations

from odpctl.errors import EXIT_REFUSED, EXIT_UNAVAILABLE, AlreadyExistsError, OdpError


class IpamError(OdpError):
    """An IPAM request that cannot be served."""


class AddressInUse(AlreadyExistsError):
    """A claim of an address another container (or peer) holds."""


class NoSpace(IpamError):
    """No free address anywhere we can reach."""

    exit_code = EXIT_UNAVAILABLE


class NotReady(IpamError):
    """The ring is not made yet (consensus pending, observer with no peer)."""

    exit_code = EXIT_UNAVAILABLE


class Refused(IpamError):
    """A request refused on purpose (rmpeer of a live peer, a ring seeded otherwise)."""

    exit_code = EXIT_REFUSED

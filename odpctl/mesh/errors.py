"""The errors of the mesh layer.

Each carries a ``reason``: the short text that a connection's status shows
and that both ends log ("password mismatch", "no common protocol version").
Only these types (and `OdpError`'s) leave the mesh's decoders, so a router
can catch one family, drop the offending connection and carry on.
"""

from __future__ import annotations

from odpctl.errors import EXIT_REFUSED, EXIT_UNAVAILABLE, OdpError


class MeshError(OdpError):
    """Base of every error the mesh raises on purpose."""

    @property
    def reason(self) -> str:
        return self.message


class ProtocolViolation(MeshError):
    """A peer sent bytes that break the protocol: the connection is dropped."""


class FrameTooLarge(ProtocolViolation):
    """A frame's length prefix exceeds the bound of the connection's phase."""


class MalformedMessage(ProtocolViolation):
    """A frame whose content does not decode to a valid message."""


class AuthenticationFailed(ProtocolViolation):
    """A sealed message that does not open: wrong key, tampering or replay."""


class HandshakeRefused(MeshError):
    """The handshake ended without a connection, for ``reason``.

    ``by_remote`` tells whether the other end said so (a REFUSE message) or
    we decided it; either way both ends log the same reason.
    """

    exit_code = EXIT_REFUSED

    def __init__(self, reason: str, *, by_remote: bool = False, permanent: bool = False):
        super().__init__(f"refused by peer: {reason}" if by_remote else reason)
        self.refusal = reason
        self.by_remote = by_remote
        # A refusal no retry can cure (connecting to ourselves, a peer name
        # collision): the connection maker stops trying that address.
        self.permanent = permanent


class ConnectionClosed(MeshError):
    """The connection ended (EOF, reset, heartbeat timeout, peer's goodbye)."""

    exit_code = EXIT_UNAVAILABLE


class NoRouteError(MeshError):
    """No route (yet) to a peer a message was meant for."""

    exit_code = EXIT_UNAVAILABLE

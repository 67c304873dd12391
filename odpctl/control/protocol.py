"""What the control server and its clients share: paths, limits, error kinds."""

from __future__ import annotations

from pathlib import Path

from odpctl.errors import EXIT_UNAVAILABLE, OdpError
from odpctl.netlink.rundir import runtime_dir

SOCKET_NAME = "router.sock"
# A request or reply line; a reply with the full topology of a big mesh is
# the largest thing that goes through.
MAX_REQUEST = 64 * 1024
MAX_REPLY = 64 * 1024 * 1024


def default_socket_path(netns: str | None = None) -> Path:
    """The control socket of the router of network namespace ``netns`` (None: ours)."""
    return runtime_dir(netns) / SOCKET_NAME


class RouterUnavailableError(OdpError):
    """No router answers on the control socket."""

    exit_code = EXIT_UNAVAILABLE


class ControlError(OdpError):
    """The router refused or failed a request; carries the router's exit code."""

    def __init__(
        self, message: str, *, hint: str | None = None, exit_code: int = 1, kind: str = "OdpError"
    ) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.kind = kind

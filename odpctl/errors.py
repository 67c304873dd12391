"""The exceptions every layer of odpctl raises.

Library code raises these and never prints; the faces (CLI, shell, router)
turn them into one line on stderr and an exit code (``exit_code``).  Each
error carries a message a person understands, the errno where the kernel gave
one, and where there is one, a hint saying what to do next.
"""

from __future__ import annotations

import errno as _errno
import os

# Exit codes of the command suite, one per kind of failure (documented in
# odpctl(1)).  2 is click's own code for usage errors; the others are ours.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PERMISSION = 4
EXIT_UNAVAILABLE = 5
EXIT_REFUSED = 6


class OdpError(Exception):
    """Base of every error odpctl raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, errno: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class DecodeError(OdpError):
    """Bytes that do not decode: truncated, malformed or hostile input."""


class ParseError(OdpError):
    """Text in ODP syntax that does not parse; ``column`` is 1-based."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, text: str = "", column: int = 0):
        super().__init__(f"column {column}: {message}" if column else message)
        self.reason = message
        self.text = text
        self.column = column

    def caret(self) -> str:
        """The parsed text with a caret under the failing column."""
        return f"{self.text}\n{' ' * max(self.column - 1, 0)}^"


class UsageError(OdpError):
    """A request that makes no sense before it reaches any datapath."""

    exit_code = EXIT_USAGE


class NotFoundError(OdpError):
    exit_code = EXIT_NOT_FOUND


class AlreadyExistsError(OdpError):
    exit_code = EXIT_REFUSED


class PermissionDeniedError(OdpError):
    exit_code = EXIT_PERMISSION


class DatapathUnavailableError(OdpError):
    """No datapath to talk to: module missing, socket absent, server gone."""

    exit_code = EXIT_UNAVAILABLE


class KernelRefusedError(OdpError):
    """The datapath understood the request and said no (EINVAL and kin)."""

    exit_code = EXIT_REFUSED


class NetlinkProtocolError(OdpError):
    """The peer broke the netlink protocol (bad sequence, short reply)."""


_BY_ERRNO: dict[int, type[OdpError]] = {
    _errno.ENOENT: NotFoundError,
    _errno.ENODEV: NotFoundError,
    _errno.ENXIO: NotFoundError,
    _errno.EEXIST: AlreadyExistsError,
    _errno.EBUSY: AlreadyExistsError,
    _errno.EPERM: PermissionDeniedError,
    _errno.EACCES: PermissionDeniedError,
    _errno.EAFNOSUPPORT: DatapathUnavailableError,
    _errno.EPROTONOSUPPORT: DatapathUnavailableError,
    _errno.ECONNREFUSED: DatapathUnavailableError,
}


def error_from_errno(err: int, what: str, hint: str | None = None) -> OdpError:
    """The typed error for a kernel errno, naming the errno and what failed."""
    name = _errno.errorcode.get(err, f"errno {err}")
    cls = _BY_ERRNO.get(err, KernelRefusedError)
    if hint is None and cls is PermissionDeniedError:
        hint = "run as root, or with CAP_NET_ADMIN"
    return cls(f"{what}: {os.strerror(err)} ({name})", errno=err, hint=hint)

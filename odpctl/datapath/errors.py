"""How a request handler says no: an errno, and a reason for the extended ACK."""

from __future__ import annotations


class RequestError(Exception):
    """Refuse the request being handled with ``errno`` (positive).

    ``reason`` travels back as the extended-ACK message text
    (``NLMSGERR_ATTR_MSG``), which the client shows after the errno; the
    kernel sends the errno alone and logs its reason to dmesg instead.
    """

    def __init__(self, errno: int, reason: str = "") -> None:
        super().__init__(reason or f"errno {errno}")
        self.errno = errno
        self.reason = reason

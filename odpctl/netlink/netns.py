"""Acting inside a named network namespace.

A socket belongs to the namespace it was created in, for life.  So
``with netns("blue"): t = KernelTransport()`` gives a transport that talks
to blue's kernel tables after the block has returned the thread to where it
was.  Only the calling thread moves: setns(CLONE_NEWNET) is per thread.
"""

from __future__ import annotations

import errno
import os
import socket
from contextlib import contextmanager

from odpctl.errors import NotFoundError, OdpError, UsageError, error_from_errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
_SELF_NETNS = "/proc/thread-self/ns/net"

_setns_fn: Callable[[int, int], None] | None = None


def _libc_setns() -> Callable[[int, int], None]:
    import ctypes  # only here: a CNI plugin's start-up does not pay for it otherwise

    libc = ctypes.CDLL(None, use_errno=True)
    func = libc.setns
    func.argtypes = (ctypes.c_int, ctypes.c_int)
    func.restype = ctypes.c_int

    def setns(fd: int, nstype: int) -> None:
        if func(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return setns


def _setns(fd: int, nstype: int) -> None:
    global _setns_fn
    if _setns_fn is None:
        # os.setns arrived in Python 3.12; 3.11 goes through libc.
        native: Callable[[int, int], None] | None = getattr(os, "setns", None)
        _setns_fn = native if native is not None else _libc_setns()
    _setns_fn(fd, nstype)


def netns_path(name: str) -> str:
    """The file that names namespace ``name``: an absolute path, or one under /run/netns."""
    if name.startswith("/"):
        return name
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"invalid network namespace name {name!r}")
    return f"{NETNS_RUN_DIR}/{name}"


@contextmanager
def netns(name: str | None) -> Iterator[None]:
    """Run the block inside network namespace ``name``; None means stay put."""
    if name is None:
        yield
        return
    path = netns_path(name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError(
            f"network namespace {name!r} not found", errno=errno.ENOENT, hint="see `ip netns list`"
        ) from None
    except OSError as e:
        raise error_from_errno(e.errno or errno.EIO, f"open network namespace {name!r}") from None
    try:
        home = os.open(_SELF_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target, CLONE_NEWNET)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise NotFoundError(
                        f"{path} is not a network namespace",
                        errno=errno.EINVAL,
                        hint="see `ip netns list`",
                    ) from None
                raise error_from_errno(
                    e.errno or errno.EIO, f"enter network namespace {name!r}"
                ) from None
            try:
                yield
            finally:
                try:
                    _setns(home, CLONE_NEWNET)
                except OSError as e:
                    # The thread is stranded in the other namespace; anything
                    # it did next would quietly act on the wrong host.
                    raise OdpError(
                        f"cannot return from network namespace {name!r}: {e.strerror}",
                        errno=e.errno,
                    ) from None
        finally:
            os.close(home)
    finally:
        os.close(target)


def current_netns_id() -> str:
    """A stable id of the calling thread's network namespace, e.g. ``net:[4026531840]``."""
    return f"net:[{os.stat(_SELF_NETNS).st_ino}]"


def has_interface(name: str | None, ifname: str) -> bool:
    """Whether interface ``ifname`` exists in network namespace ``name`` (None: ours).

    Raises `NotFoundError` when the namespace does not exist.
    """
    with netns(name):
        try:
            socket.if_nametoindex(ifname)  # the socket it opens is the namespace's
        except OSError:  # its only failure: no such interface
            return False
    return True

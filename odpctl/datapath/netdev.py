"""Network interfaces of the current network namespace, through ioctls.

Everything goes through a socket made on the calling thread, so it sees the
namespace the thread is in (``/sys/class/net`` would show the namespace
sysfs was mounted in instead, which is not the same for a server thread
that entered another namespace).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
ARPHRD_ETHER = 1
ARPHRD_NONE = 0xFFFE

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08

IFNAMSIZ = 16
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")
_IFREQ_HWADDR = struct.Struct("16sH14s8x")


def _ioctl(request: int, ifreq: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), request, ifreq)


def _name(name: str) -> bytes:
    return name.encode()[: IFNAMSIZ - 1]


def ifindex(name: str) -> int | None:
    """The interface's index, or None if there is no such interface."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def flags(name: str) -> int:
    _, value = _IFREQ_FLAGS.unpack(_ioctl(SIOCGIFFLAGS, _IFREQ_FLAGS.pack(_name(name), 0)))
    return int(value)


def hw_type(name: str) -> int:
    """The ARPHRD_* link type (1 for Ethernet)."""
    _, family, _ = _IFREQ_HWADDR.unpack(
        _ioctl(SIOCGIFHWADDR, _IFREQ_HWADDR.pack(_name(name), 0, b""))
    )
    return int(family)


def mtu(name: str) -> int:
    _, value = _IFREQ_INT.unpack(_ioctl(SIOCGIFMTU, _IFREQ_INT.pack(_name(name), 0)))
    return int(value)


def set_up(name: str, up: bool = True) -> None:
    current = flags(name)
    wanted = current | IFF_UP if up else current & ~IFF_UP
    if wanted != current:
        _ioctl(SIOCSIFFLAGS, _IFREQ_FLAGS.pack(_name(name), wanted))


def open_tap(name: str) -> int:
    """A new TAP device ``name`` with virtio-net headers and offloads; returns its fd.

    Fails with EEXIST if an interface of that name exists already (a TAP
    left behind would otherwise be silently reused).
    """
    if ifindex(name) is not None:
        raise OSError(errno.EEXIST, f"an interface named {name} exists")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifr = _IFREQ_FLAGS.pack(_name(name), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL)
        try:
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.EINVAL):
                raise OSError(errno.EEXIST, f"an interface named {name} exists") from None
            raise
        # The TAP may then hand us (and take from us) TSO super-packets with
        # partial checksums, described in the virtio-net header.
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
    except BaseException:
        os.close(fd)
        raise
    return fd

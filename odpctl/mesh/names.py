"""Peer identities: 48-bit names, per-process UIDs, 12-bit short IDs, nicknames.

Names are plain ints (a `NewType`): route computations hash and compare them
millions of times, and ints are the cheapest keys Python has.  People see
them MAC-style, ``02:4a:...``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from typing import NewType

from odpctl.errors import UsageError

PeerName = NewType("PeerName", int)
PeerUID = NewType("PeerUID", int)
ShortID = NewType("ShortID", int)

NAME_BITS = 48
NAME_MAX = (1 << NAME_BITS) - 1
SHORT_ID_BITS = 12
SHORT_ID_COUNT = 1 << SHORT_ID_BITS
UID_MAX = (1 << 64) - 1

# Where a stable host identity comes from, first found wins.
_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def format_peer_name(name: int) -> str:
    """``0x024a01020304`` -> ``02:4a:01:02:03:04``."""
    raw = f"{name:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def parse_peer_name(text: str) -> PeerName:
    """A name as people write it: ``02:4a:01:02:03:04`` (or 12 hex digits)."""
    digits = text.strip().lower().replace(":", "").replace("-", "")
    if len(digits) != 12:
        raise UsageError(f"invalid peer name {text!r}: expected 6 hex bytes like 02:4a:01:02:03:04")
    try:
        return PeerName(int(digits, 16))
    except ValueError:
        raise UsageError(
            f"invalid peer name {text!r}: expected 6 hex bytes like 02:4a:01:02:03:04"
        ) from None


def name_from_bytes(data: bytes) -> PeerName:
    """A name from any bytes, shaped like a locally administered unicast MAC.

    The bit pattern matters to people only: names are never put on a wire as
    MAC addresses, but a familiar shape reads better in logs.
    """
    digest = bytearray(hashlib.blake2b(data, digest_size=6, person=b"odpctl-peername").digest())
    digest[0] = (digest[0] & 0xFC) | 0x02  # locally administered, not multicast
    return PeerName(int.from_bytes(digest, "big"))


def _machine_id() -> bytes:
    for path in _MACHINE_ID_FILES:
        try:
            with open(path, "rb") as f:
                ident = f.read().strip()
        except OSError:
            continue
        if ident:
            return ident
    # No machine id (a minimal container): the hostname is the best stable thing left.
    return socket.gethostname().encode()


def _netns_inode() -> bytes:
    try:
        return str(os.stat("/proc/self/ns/net").st_ino).encode()
    except OSError:
        return b""


def default_peer_name() -> PeerName:
    """This host's name: stable across restarts, distinct per network namespace.

    Derived from the machine id and the network namespace, so that routers in
    several namespaces of one machine (the test beds, hosts simulated with
    namespaces) get different names, while the router of the host's own
    namespace keeps its name across reboots (the initial namespace's inode is
    fixed by the kernel).
    """
    return name_from_bytes(_machine_id() + b"/" + _netns_inode())


def default_nickname() -> str:
    return socket.gethostname() or "localhost"


def random_uid() -> PeerUID:
    # 0 is reserved: it marks placeholder peers known only by name.
    return PeerUID(secrets.randbelow(UID_MAX) + 1)


def random_short_id() -> ShortID:
    return ShortID(secrets.randbelow(SHORT_ID_COUNT))

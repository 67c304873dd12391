"""Who owns a netlink port id: is an upcall PID a live socket, and whose?

The kernel datapath sends each upcall to one netlink port id; a port id no
socket holds any more (a router that died) just loses the upcall.  The
kernel lists the netlink sockets of a network namespace, with their port id
and inode, in ``/proc/net/netlink``; the process holding a socket has a
``socket:[inode]`` link among its file descriptors.  That is enough to tell
a live owner (and name it) from a dead one, without asking anybody.

Only the kernel datapath can be checked this way: the port ids of a
userspace datapath are its own, handed to the clients of its unix socket.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from odpctl.netlink.netns import netns as in_netns

NETLINK_GENERIC = 16
# /proc/thread-self: the namespace of this thread, which `netns()` moves.
_NETLINK_TABLE = "/proc/thread-self/net/netlink"


@dataclass(frozen=True, slots=True)
class Owner:
    """A live netlink socket with a given port id, and the processes that hold it."""

    port_id: int
    inode: int
    pids: tuple[int, ...]

    def describe(self) -> str:
        """``pid 1234 (odpctl)``, or what is known when the holder is not visible."""
        if not self.pids:
            return f"a socket (inode {self.inode}) of a process not visible here"
        return ", ".join(f"pid {pid} ({_command(pid)})" for pid in self.pids)


def netlink_sockets(
    netns: str | None = None, protocol: int = NETLINK_GENERIC, table: str = _NETLINK_TABLE
) -> dict[int, int]:
    """Port id -> socket inode of the ``protocol`` sockets of a namespace."""
    with in_netns(netns), open(table) as f:
        lines = f.read().splitlines()[1:]
    out: dict[int, int] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            proto, port_id, inode = int(fields[1]), int(fields[2]), int(fields[9])
        except ValueError:
            continue
        if proto == protocol and port_id:
            out[port_id] = inode
    return out


def socket_holders(inode: int, proc: Path = Path("/proc")) -> tuple[int, ...]:
    """The processes with socket ``inode`` among their open files."""
    target = f"socket:[{inode}]"
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        # A process may end, or hide its fds from us, while we look.
        with contextlib.suppress(OSError):
            for fd in os.scandir(entry / "fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) == target:
                        pids.append(int(entry.name))
                        break
    return tuple(sorted(pids))


def find_owners(port_ids: set[int], netns: str | None = None) -> dict[int, Owner]:
    """The live owners among ``port_ids`` (0 is nobody and never listed)."""
    sockets = netlink_sockets(netns)
    return {
        pid: Owner(pid, sockets[pid], socket_holders(sockets[pid]))
        for pid in sorted(port_ids)
        if pid and pid in sockets
    }


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"

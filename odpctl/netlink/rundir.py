"""Where odpctl's local sockets live: a runtime directory per network namespace."""

from __future__ import annotations

import os
from pathlib import Path

from odpctl.netlink.netns import current_netns_id, netns

# Root of the per-namespace runtime directories of odpctl's local sockets.
RUNTIME_ROOT = Path(os.environ.get("ODPCTL_RUNTIME_DIR", "/run/odpctl"))


def runtime_dir(netns_name: str | None = None) -> Path:
    """The directory of odpctl's sockets for a network namespace.

    Keyed by the namespace's inode rather than its name, so that a server
    (which cannot know the name it was started under) and a client agree.
    """
    with netns(netns_name):
        ns_id = current_netns_id()
    return RUNTIME_ROOT / ns_id.replace(":", "-").replace("[", "").replace("]", "")


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a crash leaves the old file): state a
    restarted router reads back must never be half a file."""
    make_parent(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_parent(path: Path) -> None:
    """Create the directory ``path`` lives in.  A runtime directory is shared: the
    datapath's socket is there for everyone to reach, so never 0700 (the files
    keep their own modes)."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)

"""A delegated IPAM plugin (``"ipam": {"type": "host-local", ...}``), run as the
spec runs plugins: found on CNI_PATH, same stdin and environment."""

from __future__ import annotations

import json
import os

from .request import Invocation
from .spec import INVALID_CONFIG, IO_FAILURE, CniError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_TIMEOUT = 60.0


def run_ipam(inv: Invocation, command: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """Run the IPAM plugin's ``command``: its result (ADD), or None; its error is ours."""
    # Imported here: only a delegated IPAM needs it, and ADD's start-up counts.
    import subprocess

    plugin = _find(str(inv.config["ipam"]["type"]), inv.path)
    try:
        proc = subprocess.run(
            [plugin],
            input=inv.stdin,
            capture_output=True,
            timeout=_TIMEOUT,
            env={**env, "CNI_COMMAND": command},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CniError(IO_FAILURE, f"IPAM plugin {plugin} failed to run: {exc}") from None
    reply = _json(proc.stdout)
    if proc.returncode != 0:
        if isinstance(reply, dict) and isinstance(reply.get("code"), int):
            raise CniError(
                reply["code"],
                f"IPAM plugin {plugin}: {reply.get('msg', '')}",
                str(reply.get("details") or ""),
            )
        raise CniError(
            IO_FAILURE,
            f"IPAM plugin {plugin} exited with {proc.returncode}",
            proc.stderr.decode(errors="replace").strip(),
        )
    if command != "ADD":
        return None
    if not isinstance(reply, dict) or not reply.get("ips"):
        raise CniError(IO_FAILURE, f"IPAM plugin {plugin} gave no address")
    return reply


def _find(kind: str, path: tuple[str, ...]) -> str:
    if "/" in kind or not kind:
        raise CniError(INVALID_CONFIG, f"IPAM plugin type {kind!r} is not a plugin name")
    for directory in path:
        candidate = os.path.join(directory, kind)
        if os.access(candidate, os.X_OK):
            return candidate
    raise CniError(INVALID_CONFIG, f"IPAM plugin {kind!r} not found on CNI_PATH", ":".join(path))


def _json(out: bytes) -> Any:
    try:
        return json.loads(out) if out.strip() else None
    except ValueError:
        return None

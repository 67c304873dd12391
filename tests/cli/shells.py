"""Real shells for completion tests: bash, zsh and fish, some behind a terminal.

A fake ``odpctl`` goes first on PATH: it answers the completion scripts'
``odpctl _names`` calls with known names (and logs them), and otherwise
prints its arguments, so that a command line completed with TAB and run
shows exactly what the shell would have run.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from pathlib import Path

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"

FAKE_ODPCTL = r"""#!/bin/bash
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ ${args[i]} == _names ]]; then
        printf '%s\n' "${args[*]}" >>"$FAKE_LOG"
        case ${args[i + 1]} in
            dp) printf '%s\n' dpA dpB ;;
            port) printf '%s\n' "port-of-${args[i + 2]:-none}" va vb ;;
        esac
        exit 0
    fi
done
printf 'ARGS:'; printf ' [%s]' "$@"; echo
"""


def fake_path(tmp: Path) -> dict[str, str]:
    """Environment with the fake odpctl first on PATH, logging to tmp/log."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "odpctl"
    fake.write_text(FAKE_ODPCTL)
    fake.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp / "log"),
        "HOME": str(tmp),
        "TERM": "xterm",
        "XDG_CONFIG_HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp),
    }


def _read(fd: int, quiet: float, limit: float, until: str | None = None) -> str:
    """What the terminal shows until it has been quiet for ``quiet`` seconds
    (or, with ``until``, until that text has appeared), at most ``limit`` s."""
    out = b""
    end = time.monotonic() + limit
    last = time.monotonic()
    mark = until.encode() if until else None
    while time.monotonic() < end:
        if mark is None and time.monotonic() - last >= quiet:
            break
        if mark is not None and mark in out:
            break
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            last = time.monotonic()
    return out.decode(errors="replace")


def type_in_terminal(argv: list[str], env: dict[str, str], setup: list[str], keys: str) -> str:
    """Start an interactive shell on a terminal, run ``setup``, type ``keys``
    (TAB is "\\t"), press Enter, and return everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the shell
        os.execvpe(argv[0], argv, env)  # noqa: S606 - the shell under test, by name
    try:
        # Setup, then wait for the shell to say it is done (compinit can be slow).
        for line in [*setup, "echo SET''UP-DONE"]:
            os.write(fd, line.encode() + b"\n")
        _read(fd, 0, 30, until="SETUP-DONE")
        _read(fd, 0.3, 5)
        shown = ""
        for i, chunk in enumerate(keys.split("\t")):
            if i:
                os.write(fd, b"\t")
                shown += _read(fd, 0.5, 10)  # a completion may run odpctl: give it time
            os.write(fd, chunk.encode())
            shown += _read(fd, 0.2, 5)
        os.write(fd, b"\n")
        shown += _read(fd, 0, 20, until="ARGS:")
        shown += _read(fd, 0.3, 5)
        return shown
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)

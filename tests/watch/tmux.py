"""A real terminal for tests: a command in a tmux pane, keys in, the screen out.

Each `Tmux` runs its own tmux server (a private socket), so tests never
touch a tmux someone else runs, and `close` ends everything it started.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest


class Tmux:
    def __init__(
        self,
        command: list[str],
        *,
        width: int = 160,
        height: int = 40,
        env: dict[str, str] | None = None,
    ) -> None:
        if shutil.which("tmux") is None:
            pytest.skip("the terminal tests need tmux")
        self.socket = f"odpt-{secrets.token_hex(4)}"
        # The command's exit status stays on the screen, and the pane with it; the
        # shell outlives a Ctrl-C (a trap, unlike an ignored signal, is not inherited).
        script = f'trap true INT; {shlex.join(command)}; echo "EXIT=$?"; sleep 600'
        exports = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(width),
            "-y",
            str(height),
            " ".join(["env", *exports, "sh", "-c", shlex.quote(script)]),
        )

    def _tmux(self, *args: str) -> str:
        # env= explicitly: under pytest the C environment has COLUMNS and LINES set
        # (os.environ does not), and a pane that inherits them lies about its size.
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(os.environ),
        ).stdout

    def send(self, *keys: str) -> None:
        """Keys as tmux names them (``Enter``, ``Tab``, ``C-c``) or literal text."""
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait(self, check: str | Callable[[str], bool], timeout: float = 30) -> str:
        """The screen, once it shows ``check`` (text, or a test of the screen)."""
        test = check if callable(check) else (lambda screen: check in screen)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if test(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {check!r}:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)

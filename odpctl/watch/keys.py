"""Single keys while a live view runs: the terminal in cbreak mode, read without Enter.

cbreak keeps ISIG, so Ctrl-C still interrupts; the terminal's settings are
put back on exit whatever happens.  Without a terminal on stdin there are
no keys, and the view just refreshes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import tty
from typing import Any, Self


class Keys:
    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError):  # replaced or closed stdin
                fd = -1
        self.fd = fd if fd >= 0 and os.isatty(fd) else None
        self._saved: list[Any] | None = None

    def __enter__(self) -> Self:
        if self.fd is not None:
            try:
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
            except termios.error:
                self.fd = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None and self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self) -> str:
        """The keys typed so far (call when the fd is readable); "" at end of input."""
        if self.fd is None:
            return ""
        try:
            return os.read(self.fd, 64).decode(errors="replace")
        except OSError:
            return ""

"""The entry of ``odpctl shell`` (the REPL lives in `odpctl.shell`)."""

from __future__ import annotations

from odpctl.shell.app import Shell, main

__all__ = ["Shell", "main"]

"""Fixtures of the host-side command suite tests.

``cli(*argv)`` runs one odpctl command line in this process, as the installed
``odpctl`` does (same error handling, same exit codes), and returns its exit
status with what it printed.  ``snapshot(name, text)`` compares text with
tests/cli/snapshots/NAME; ODPCTL_UPDATE_SNAPSHOTS=1 rewrites the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from odpctl.cli import run

SNAPSHOTS = Path(__file__).parent / "snapshots"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = run(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def snapshot() -> Callable[[str, str], None]:
    def check(name: str, text: str) -> None:
        path = SNAPSHOTS / name
        if os.environ.get("ODPCTL_UPDATE_SNAPSHOTS") == "1":
            path.write_text(text)
        assert path.exists(), f"no snapshot {path}: run with ODPCTL_UPDATE_SNAPSHOTS=1"
        assert text == path.read_text(), f"output differs from snapshot {name}"

    return check

"""testbed/uml-run from the host, as a new user runs the README's first command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UML_RUN = Path(__file__).resolve().parents[2] / "testbed" / "uml-run"


@pytest.mark.skipif(
    shutil.which("linux.uml") is None,
    reason="user-mode-linux is not installed (./setup installs it)",
)
def test_a_working_directory_under_tmp_is_shared_with_the_guest(tmp_path: Path) -> None:
    # tmp_path lives under /tmp, which the guest covers with a tmpfs of its own.
    (tmp_path / "marker").write_text("from the host\n")
    proc = subprocess.run(
        [str(UML_RUN), "--timeout", "120", "--", "cat", "marker"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "from the host\n"

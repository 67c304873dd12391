"""The README's first command, for real: `odpctl demo` in the guest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_demo_pings_every_pair_and_leaves_nothing_behind() -> None:
    before = _namespaces()
    odpctl = Path(sys.executable).with_name("odpctl")
    proc = subprocess.run([str(odpctl), "demo"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" ok ") == 6  # 3 hosts, every ordered pair
    assert "unreachable" not in proc.stdout
    # flows were installed by the learning switch and carried the later pings
    installed = re.search(r"flows installed:(\d+)", proc.stdout)
    assert installed is not None and int(installed.group(1)) >= 6
    assert "actions:" in proc.stdout
    assert _namespaces() == before

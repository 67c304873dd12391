"""The README's first command, for real: `odpctl demo` (the 3-host overlay) in the guest."""

from __future__ import annotations

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
    # 3 hosts x 2 containers: every pair of containers on different hosts
    assert proc.stdout.count(" ok ") == 12, proc.stdout
    assert "unreachable" not in proc.stdout
    assert "datapath: kernel" in proc.stdout
    # the routers' connections run on the kernel fast path, which carried the pings
    assert proc.stdout.count("overlay=fastdp") == 2, proc.stdout
    assert "set(tunnel(tun_id=" in proc.stdout and "actions:" in proc.stdout
    assert _namespaces() == before

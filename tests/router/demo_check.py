"""The README's first command, `odpctl demo`: shared by the host and guest tests."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from pathlib import Path


def _namespaces() -> set[str]:
    """The demo's namespaces (its lab names them odpdemo...): other runs' come and go."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {
        n
        for n in (line.split()[0] for line in out.splitlines() if line.strip())
        if n.startswith("odpdemo")
    }


def check_demo(datapath: str) -> None:
    """Run `odpctl --datapath DATAPATH demo` and check what it shows and leaves."""
    before = _namespaces()
    odpctl = Path(sys.executable).with_name("odpctl")
    proc = subprocess.run(
        [str(odpctl), "--datapath", datapath, "demo"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 3 hosts x 2 containers: every pair of containers on different hosts
    assert proc.stdout.count(" ok ") == 12, proc.stdout
    assert "unreachable" not in proc.stdout
    # the containers' addresses came from IPAM: unique, in its default range
    addresses = re.findall(r"(\d+\.\d+\.\d+\.\d+)\s+\S+ vodp", proc.stdout)
    assert len(addresses) == 6 and len(set(addresses)) == 6, proc.stdout
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("10.32.0.0/12") for a in addresses)
    assert f"datapath: {datapath}" in proc.stdout
    # the routers' connections run on the fast path (VXLAN), which carried the pings
    assert proc.stdout.count("overlay=fastdp") == 2, proc.stdout
    assert "set(tunnel(tun_id=" in proc.stdout and "actions:" in proc.stdout
    after = _namespaces()
    assert after == before, f"left: {sorted(after - before)}, gone: {sorted(before - after)}"

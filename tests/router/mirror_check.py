"""`odpctl watch upcalls` against a running router: shared by the host and guest tests."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

from odpctl.demo.overlaylab import OverlayLab


def watch_while_pinging(overlay: OverlayLab, *options: str) -> dict[str, object]:
    """Watch host 0's upcalls of frames from its first container (as a separate
    odpctl process, with global ``options``) while that container pings one on
    host 1, its flows flushed first so that its echo request is a miss. The ping
    must work: the router handles the misses meanwhile. Returns the first
    upcall watched, its JSON line."""
    host = overlay.hosts[0]
    a, b = host.containers[0], overlay.hosts[1].containers[0]
    odpctl = str(Path(sys.executable).with_name("odpctl"))
    flush = subprocess.run(
        [odpctl, "--netns", host.ns, *options, "flow", "flush"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flush.returncode == 0, flush.stderr
    watch = subprocess.Popen(
        [
            odpctl,
            "--netns",
            host.ns,
            *options,
            "watch",
            "upcalls",
            "--json",
            "--count",
            "1",
            "--filter",
            f"eth(src={container_mac(overlay)})",
            "--control",
            str(host.control),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Subscribed once it says where its upcalls come from; then make misses.
        assert watch.stderr is not None
        ready, _, _ = select.select([watch.stderr], [], [], 60)
        said = watch.stderr.readline() if ready else ""
        assert "from the router's upcall mirror" in said, said
        assert overlay.ping(a, b), overlay.log_tail(0, 40)
        out, err = watch.communicate(timeout=60)
    finally:
        watch.kill()
        watch.wait()
    assert watch.returncode == 0, err
    event: dict[str, object] = json.loads(out)
    return event


def container_mac(overlay: OverlayLab) -> str:
    """The MAC of host 0's first container (the one `watch_while_pinging` pings from)."""
    a = overlay.hosts[0].containers[0]
    return overlay.lab.run(a.ns, "cat", "/sys/class/net/eth0/address").stdout.strip()

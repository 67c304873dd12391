#!/usr/bin/env python3
"""CNI ADD and DEL: odpctl-cni through the router against Debian's bridge + host-local.

    .venv/bin/python bench/cni_plugin.py [--rounds 40] [--datapath userspace] [--delegate]

One host namespace runs a router (IPAM ready); its control socket is where the
plugin looks by default (this namespace's runtime directory), so the plugin
runs as a runtime would run it, with no "control" in its config.  Each round
makes a container namespace and runs, in turn, odpctl-cni ADD then DEL, and
the reference chain (bridge with host-local IPAM: a veth into a Linux bridge)
ADD then DEL, each plugin a process started inside the host namespace as a
runtime starts it (nsenter), timed from spawn to exit.  odpctl-cni is the
launcher ``odpctl-cni install`` writes (into a scratch directory), as a user
installs it.  Side by side in one
run, so the machine's load weighs on both.  Reported per plugin: ADD p50/p99,
DEL p50, ADD+DEL pairs per second; and the ratio of ADD p50s.  Where
odpctl-cni's ADD goes, measured in the same rounds: the bare interpreter
(``python -c pass``, ``-S``: without site, and ``-IS`` as the launcher runs
it), the plugin's start-up (VERSION, which reaches no router) through the
launcher and through pip's console script, the router's attach alone (asked by this
process, no process started), and the attach's stages as the router logs
them for the plugin's ADDs (address, veth, datapath port, record).
With --delegate, odpctl-cni's addresses come from host-local as well (and
a route with them, which the plugin installs in the container itself).
Target (DESIGN.md): odpctl-cni's ADD p50 <= 2x the reference's.
Exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.router import kernel_datapath_available

CONSOLE_SCRIPT = Path(sys.executable).parent / "odpctl-cni"
DEBIAN = Path("/usr/lib/cni")


def invoke(
    host_ns: str,
    plugin: Path,
    command: str,
    config: dict[str, object],
    container: str = "",
    ns: str = "",
) -> float:
    """Seconds from spawn to exit of one plugin run; a failure stops the bench."""
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": f"/run/netns/{ns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(DEBIAN),
    }
    argv = ["nsenter", f"--net=/run/netns/{host_ns}", str(plugin)]
    start = time.perf_counter()
    proc = subprocess.run(
        argv, input=json.dumps(config).encode(), env=env, capture_output=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"FAIL: {plugin.name} {command}: {proc.stdout.decode()} {proc.stderr.decode()}"
        )
    return elapsed


# The router's log line of each attach: its time and where it went, in ms.
STAGES = ("address", "veth", "datapath port", "record")
ATTACHED = re.compile(
    r"attached container cni:odpbench:\S+ .* in [\d.]+ ms \(address ([\d.]+), "
    r"veth ([\d.]+), datapath port ([\d.]+), record ([\d.]+)\)"
)


def spawn(host_ns: str, argv: list[str]) -> float:
    """Seconds from spawn to exit of ``argv`` in the host namespace (a failure stops)."""
    start = time.perf_counter()
    subprocess.run(["nsenter", f"--net=/run/netns/{host_ns}", *argv], check=True, timeout=60)
    return time.perf_counter() - start


def attach_stages(log: Path) -> dict[str, list[float]]:
    """Each stage's times (seconds) over the plugin's ADDs, from the router's log."""
    found = [m.groups() for m in ATTACHED.finditer(log.read_text(errors="replace"))]
    return {stage: [float(g[i]) / 1000 for g in found] for i, stage in enumerate(STAGES)}


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datapath", choices=("kernel", "userspace", "auto"), default="auto")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--delegate",
        action="store_true",
        help="odpctl-cni takes its address from host-local too, and a route with it",
    )
    args = parser.parse_args()
    kind = args.datapath
    if kind == "auto":
        kind = "kernel" if kernel_datapath_available() else "userspace"
    ours: dict[str, object] = {"cniVersion": "1.0.0", "name": "odpbench", "type": "odpctl-cni"}
    data_dir = tempfile.mkdtemp(prefix="odpctl-bench-hostlocal-")
    subprocess.run(
        [str(CONSOLE_SCRIPT), "install", data_dir], check=True, capture_output=True, timeout=60
    )
    launcher = Path(data_dir) / "odpctl-cni"
    if args.delegate:
        ours["ipam"] = {
            "type": "host-local",
            "subnet": "10.89.0.0/16",
            "dataDir": data_dir,
            "routes": [{"dst": "10.99.0.0/16"}],
        }
    theirs: dict[str, object] = {
        "cniVersion": "1.0.0",
        "name": "refbench",
        "type": "bridge",
        "bridge": "odpbr0",
        "ipam": {"type": "host-local", "subnet": "10.88.0.0/16", "dataDir": data_dir},
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"ADD": [], "DEL": []} for name in ("odpctl-cni", "bridge+host-local")
    }
    parts: dict[str, list[float]] = {
        "python -c pass": [],
        "python -S -c pass": [],
        "python -IS -c pass": [],
        "start-up (VERSION)": [],
        "console script's start-up (VERSION)": [],
        "router attach": [],
    }
    with Lab("odpbcni") as lab:
        overlay = OverlayLab(lab, hosts=1, containers=0, datapath=kind)
        default = default_socket_path(overlay.hosts[0].ns)
        try:
            overlay.start_router(0, extra=("--ipalloc-range", "10.48.0.0/16"))
            overlay.wait_ready(timeout=60)
            deadline = time.monotonic() + 30
            while overlay.status(0)["router"].get("ipam", {}).get("state") != "ready":
                if time.monotonic() > deadline:
                    print("FAIL: the router's IPAM is not ready")
                    return 1
                time.sleep(0.2)
            # The plugin finds the router where it looks by default.
            default.parent.mkdir(parents=True, exist_ok=True)
            default.symlink_to(overlay.hosts[0].control)
            host = overlay.hosts[0].ns
            router = ControlClient(overlay.hosts[0].control, timeout=30)
            for i in range(args.rounds):
                ns = lab.namespace(f"c{i}")
                for name, plugin, config in (
                    ("odpctl-cni", launcher, ours),
                    ("bridge+host-local", DEBIAN / "bridge", theirs),
                ):
                    container = f"bench-{name[:6]}-{i}"
                    times[name]["ADD"].append(invoke(host, plugin, "ADD", config, container, ns))
                    times[name]["DEL"].append(invoke(host, plugin, "DEL", config, container, ns))
                for flags in ("", "-S", "-IS"):
                    argv = [sys.executable, *flags.split(), "-c", "pass"]
                    parts[f"python {flags} -c pass".replace("  ", " ")].append(spawn(host, argv))
                parts["start-up (VERSION)"].append(invoke(host, launcher, "VERSION", ours))
                parts["console script's start-up (VERSION)"].append(
                    invoke(host, CONSOLE_SCRIPT, "VERSION", ours)
                )
                start = time.perf_counter()
                router.request("attach", netns=f"/run/netns/{ns}", id=f"direct-{i}")
                parts["router attach"].append(time.perf_counter() - start)
                router.request("detach", id=f"direct-{i}")
            stages = attach_stages(overlay.hosts[0].log)
        finally:
            with contextlib.suppress(FileNotFoundError):
                default.unlink()
            overlay.close()
            subprocess.run(["rm", "-rf", data_dir], check=False)
    ipam = "host-local (delegated, with a route)" if args.delegate else "the router's"
    print(
        f"CNI ADD/DEL, {args.rounds} rounds, router on the {kind} datapath, odpctl-cni's "
        f"addresses from {ipam} IPAM, interleaved in one run:"
    )
    for name, t in times.items():
        pairs = len(t["ADD"]) / (sum(t["ADD"]) + sum(t["DEL"]))
        print(
            f"  {name:18} ADD p50 {p(t['ADD'], 0.5):6.1f} ms  p99 {p(t['ADD'], 0.99):6.1f} ms"
            f"   DEL p50 {p(t['DEL'], 0.5):6.1f} ms   {pairs:5.1f} ADD+DEL/s"
        )
    print(
        "  where odpctl-cni's ADD goes (p50): "
        + ", ".join(f"{name} {p(t, 0.5):.1f} ms" for name, t in parts.items())
    )
    if all(stages.values()):
        print(
            "  the router's attach for the plugin's ADDs (p50, its log): "
            + ", ".join(f"{name} {p(t, 0.5):.1f} ms" for name, t in stages.items())
        )
    ratio = statistics.median(times["odpctl-cni"]["ADD"]) / statistics.median(
        times["bridge+host-local"]["ADD"]
    )
    print(f"ADD p50 ratio odpctl-cni / bridge+host-local: {ratio:.2f} (target <= 2)")
    print("PASS" if ratio <= 2 else "FAIL (figures above)")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())

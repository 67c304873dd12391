"""``odpctl demo``: a three-host overlay, built, exercised, shown and torn down.

Three hosts (network namespaces on a bridge, the underlay) each run
`odpctl router start` with two containers (namespaces that the router
attaches as `odpctl router attach --netns` does: a veth, and an address from
IPAM, unique across the hosts with no store of its own).  The routers form a
mesh, the containers ping each other across hosts over VXLAN, and the
status and flows of one router are shown: the first packets of each
conversation miss and install flows, the rest never leave the datapath.
The best datapath available is used: the kernel's if the openvswitch module
is loaded, else the userspace one.  Everything the demo creates is removed
at the end, also when interrupted.
"""

from __future__ import annotations

import re
import time
from itertools import combinations

from rich.console import Console
from rich.table import Table

from odpctl.demo.lab import Lab
from odpctl.demo.overlaylab import OverlayLab
from odpctl.errors import OdpError
from odpctl.odp.text.actions import format_actions
from odpctl.odp.text.keys import format_key
from odpctl.present.status import render_status
from odpctl.router import DEFAULT_DP, kernel_datapath_available

_RTT = re.compile(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/")


def _choose(datapath: str | None) -> str:
    if datapath in (None, "auto"):
        return "kernel" if kernel_datapath_available() else "userspace"
    return "kernel" if datapath in ("kernel", "system") else "userspace"


def run_demo(datapath: str | None, console: Console) -> bool:
    """Build, ping, show, tear down; True if every container reached every other."""
    kind = _choose(datapath)
    console.print(f"[bold]datapath:[/] {kind}, one per host; 3 hosts x 2 containers")
    with Lab("odpdemo") as lab:
        overlay = OverlayLab(lab, datapath=kind, ipam=True)
        try:
            overlay.start_routers()
            overlay.wait_ready(timeout=60)
            overlay.attach_all()
            _show_containers(overlay, console)
            _wait_fastdp(overlay, 15.0)
            ok = _ping_all(overlay, console)
            _show(overlay, kind, console)
        except OdpError as exc:
            console.print(f"[red]demo failed:[/] {exc}")
            for host in overlay.hosts:
                console.print(
                    f"--- router {host.index}\n{overlay.log_tail(host.index)}", highlight=False
                )
            ok = False
        finally:
            overlay.close()
    return ok


def _show_containers(overlay: OverlayLab, console: Console) -> None:
    table = Table(
        title="containers attached by namespace (odpctl router attach --netns)",
        title_justify="left",
    )
    for column in ("container", "host", "address (IPAM)", "port"):
        table.add_column(column)
    for c in overlay.containers:
        table.add_row(c.name, f"host{c.host}", c.address, c.iface)
    console.print(table)


def _wait_fastdp(overlay: OverlayLab, timeout: float) -> None:
    """Until every connection is on the fast path (or the time is up: fallback works too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conns = [c for h in overlay.hosts for c in overlay.status(h.index)["router"]["connections"]]
        if conns and all(c["overlay"] == "fastdp" for c in conns):
            return
        time.sleep(0.3)


def _ping_all(overlay: OverlayLab, console: Console) -> bool:
    table = Table(title="ping between containers on different hosts", title_justify="left")
    for column in ("from", "to", "result", "avg rtt"):
        table.add_column(column)
    ok = True
    for src, dst in combinations(overlay.containers, 2):
        if src.host == dst.host:
            continue
        result = overlay.lab.run(src.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst.address)
        rtt = _RTT.search(result.stdout)
        reached = result.returncode == 0
        ok &= reached
        table.add_row(
            src.name,
            f"{dst.name} ({dst.address})",
            "[green]ok[/]" if reached else "[red]unreachable[/]",
            f"{rtt.group(1)} ms" if rtt else "-",
        )
    console.print(table)
    return ok


def _show(overlay: OverlayLab, _kind: str, console: Console) -> None:
    host = overlay.hosts[0]
    console.print("[bold]odpctl router status[/] on host0:", highlight=False)
    console.print(
        render_status(overlay.status(0)), highlight=False, soft_wrap=True, emoji=False, markup=False
    )
    with overlay.dpif(host.index) as dpif:
        flows = sorted(dpif.dump_flows(DEFAULT_DP), key=lambda f: -f.packets)
    console.print(f"[bold]flows on host0[/] ({len(flows)}):")
    for flow in flows:
        console.print(
            f"  {format_key(flow.key, flow.mask)}, packets:{flow.packets}, "
            f"bytes:{flow.bytes}, actions:{format_actions(flow.actions)}",
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )

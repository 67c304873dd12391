"""``odpctl demo``: a datapath switching real traffic, built and torn down.

Three hosts (network namespaces) are plugged into one datapath in a fourth;
a learning switch handles the misses, the hosts ping each other, and the
datapath's statistics and flows are shown: the first packets of each
conversation miss and install flows, the rest never leave the datapath.
Everything the demo creates is removed at the end, also when interrupted.
"""

from __future__ import annotations

import re
from itertools import permutations

from rich.console import Console
from rich.table import Table

from odpctl.lab import Lab
from odpctl.odp.dpif import Dpif
from odpctl.odp.endpoint import resolve_endpoint
from odpctl.odp.text.actions import format_actions
from odpctl.odp.text.keys import format_key
from odpctl.odp.vport import Vport
from odpctl.switch import LearningSwitch

HOSTS = 3
DATAPATH = "demo"
_RTT = re.compile(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/")


def run_demo(datapath: str | None, console: Console) -> bool:
    """Build, ping, show, tear down; True if every host reached every other."""
    with Lab("odpdemo") as lab:
        switch_ns = lab.namespace("switch")
        endpoint = resolve_endpoint(datapath, netns_name=switch_ns)
        console.print(f"[bold]datapath:[/] {endpoint.describe()}")
        with Dpif(endpoint) as dpif, Dpif(endpoint) as handler_dpif, \
                handler_dpif.open_upcall_channel() as channel:
            dp = dpif.create_datapath(DATAPATH)
            ports = []
            for i in range(1, HOSTS + 1):
                host = lab.namespace(f"h{i}")
                lab.veth(switch_ns, f"port{i}", host, "eth0")
                lab.address(host, "eth0", f"10.99.0.{i}/24")
                vport = dpif.add_vport(dp, Vport(f"port{i}", upcall_pids=(channel.port_id,)))
                assert vport.port_no is not None
                ports.append(vport.port_no)
            switch = LearningSwitch(handler_dpif, dp, ports, channel)
            switch.start()
            try:
                ok = _ping_all(lab, console)
            finally:
                switch.stop()
            _show(dpif, switch, console)
            dpif.delete_datapath(dp)
    return ok


def _ping_all(lab: Lab, console: Console) -> bool:
    table = Table(title="ping between hosts", title_justify="left")
    for column in ("from", "to", "result", "avg rtt"):
        table.add_column(column)
    ok = True
    hosts = [n for n in lab.namespaces if not n.endswith("switch")]
    for (i, src), (j, _dst) in permutations(enumerate(hosts, 1), 2):
        result = lab.run(src, "ping", "-c", "3", "-i", "0.2", "-W", "2", f"10.99.0.{j}")
        rtt = _RTT.search(result.stdout)
        reached = result.returncode == 0
        ok &= reached
        table.add_row(f"h{i}", f"h{j} (10.99.0.{j})",
                      "[green]ok[/]" if reached else "[red]unreachable[/]",
                      f"{rtt.group(1)} ms" if rtt else "-")
    console.print(table)
    return ok


def _show(dpif: Dpif, switch: LearningSwitch, console: Console) -> None:
    dp = dpif.get_datapath(DATAPATH)
    console.print(
        f"[bold]{dp.name}:[/] lookups hit:{dp.hit} missed:{dp.missed} lost:{dp.lost}  "
        f"flows:{dp.flows}  masks:{dp.masks}"
    )
    console.print(
        f"[bold]learning switch:[/] misses:{switch.stats.misses} "
        f"flooded:{switch.stats.flooded} flows installed:{switch.stats.flows_installed} "
        f"errors:{switch.stats.errors}"
    )
    for flow in sorted(dpif.dump_flows(dp), key=lambda f: (f.key.in_port or 0, -f.packets)):
        console.print(
            f"  {format_key(flow.key, flow.mask)}, packets:{flow.packets}, "
            f"bytes:{flow.bytes}, actions:{format_actions(flow.actions)}",
            highlight=False, soft_wrap=True,
        )

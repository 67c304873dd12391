"""Everything the checks look at, gathered once, inside the host's namespace."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odpctl.control.client import ControlClient
from odpctl.errors import OdpError
from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.datapath import Datapath
from odpctl.odp.dpif import Dpif
from odpctl.odp.vport import Vport

from .firewall import BlockingRule, rules_dropping

# The mesh's and VXLAN's defaults (mesh.discovery, overlay.flows), not imported: those
# modules would triple the time `odpctl doctor` takes to start.
MESH_PORT, VXLAN_PORT = 6783, 6784
MODULE = Path("/sys/module/openvswitch")


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str | None  # "veth", "vxlan", ... (None: a plain device)
    mtu: int
    operstate: str  # UP, DOWN, LOWERLAYERDOWN, UNKNOWN, ...
    carrier: bool | None


@dataclass
class DatapathFacts:
    kind: str  # kernel, userspace
    where: str
    name: str
    first: Datapath  # two samples, `interval` apart, to see counters move
    second: Datapath
    interval: float
    vports: list[Vport]


@dataclass
class Facts:
    netns: str | None
    control: Path
    status: dict[str, Any] | None = None
    status_error: str | None = None
    socket_left: bool = False  # the control socket is there but nobody answers
    peers: dict[str, Any] | None = None
    module_loaded: bool = False
    datapath: DatapathFacts | None = None
    datapath_error: str | None = None
    links: dict[str, Link] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)  # peer IP -> device to it
    sysctls: dict[str, str] = field(default_factory=dict)  # "net/ipv4/ip_forward" -> "1"
    firewall: list[BlockingRule] = field(default_factory=list)
    firewall_error: str | None = None

    @property
    def router(self) -> dict[str, Any] | None:
        return self.status.get("router") if self.status else None

    def peer_ips(self) -> set[str]:
        router = self.router or {}
        return {
            c["address"].rpartition(":")[0]
            for c in router.get("connections", [])
            if c.get("address")
        }


def gather(netns: str | None, control: Path, datapath: str | None, interval: float) -> Facts:
    facts = Facts(netns=netns, control=control)
    _router(facts)
    facts.module_loaded = MODULE.exists()
    _datapath(facts, datapath, interval)
    with in_netns(netns):
        _links(facts)
        _sysctls(facts)
        facts.firewall, facts.firewall_error = rules_dropping(
            {"tcp": (MESH_PORT,), "udp": (VXLAN_PORT,)}
        )
    return facts


def _router(facts: Facts) -> None:
    client = ControlClient(facts.control, timeout=5)
    try:
        facts.status = client.request("status")
        facts.peers = client.request("peers")
    except OdpError as exc:
        facts.status_error = str(exc)
        facts.socket_left = facts.control.exists()


def _datapath(facts: Facts, spec: str | None, interval: float) -> None:
    router = facts.router
    name = None
    if router is not None:
        spec, name = router["datapath"]["endpoint"], router["datapath"]["name"]
    try:
        with Dpif.open(spec, netns=facts.netns) as dpif:
            if name is None:
                names = sorted(dp.name for dp in dpif.list_datapaths())
                if not names:
                    facts.datapath_error = "the datapath has no datapath instance (no router?)"
                    return
                name = "odp-router" if "odp-router" in names else names[0]
            first = dpif.get_datapath(name)
            time.sleep(interval)
            second = dpif.get_datapath(name)
            kind = "kernel" if dpif.endpoint.kind == "kernel" else "userspace"
            facts.datapath = DatapathFacts(
                kind,
                dpif.endpoint.describe(),
                name,
                first,
                second,
                interval,
                dpif.list_vports(name),
            )
    except OdpError as exc:
        facts.datapath_error = str(exc)


def _links(facts: Facts) -> None:
    # Imported here: pyroute2 is a third of a second, for the doctor alone.
    from odpctl.netlink.pyroute import IPRoute, NetlinkError

    with IPRoute() as ipr:
        for msg in ipr.get_links():
            name = msg.get("IFLA_IFNAME")
            carrier = msg.get("IFLA_CARRIER")
            facts.links[name] = Link(
                name,
                msg["index"],
                msg.get(("IFLA_LINKINFO", "IFLA_INFO_KIND")),
                msg.get("IFLA_MTU"),
                msg.get("IFLA_OPERSTATE") or "UNKNOWN",
                None if carrier is None else bool(carrier),
            )
        by_index = {link.index: link.name for link in facts.links.values()}
        for ip in facts.peer_ips():
            try:
                (route,) = ipr.route("get", dst=ip)[:1]
            except (NetlinkError, OSError):  # no route: the peer's TCP check tells
                continue
            oif = route.get("RTA_OIF")
            if oif in by_index:
                facts.routes[ip] = by_index[oif]


def _sysctls(facts: Facts) -> None:
    devices = {"all", *facts.routes.values()}
    keys = ["net/ipv4/ip_forward", *(f"net/ipv4/conf/{d}/rp_filter" for d in sorted(devices))]
    for key in keys:
        try:
            facts.sysctls[key] = Path("/proc/sys", key).read_text().strip()
        except OSError:
            continue

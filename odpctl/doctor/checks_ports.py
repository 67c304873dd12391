"""Ports: container interfaces above the overlay MTU, links down, devices gone."""

from __future__ import annotations

from odpctl.odp.uapi import VportType

from .facts import Facts
from .report import Check, ok, problem

_UP = ("UP", "UNKNOWN")  # UNKNOWN: devices that do not report (tun, lo)


def port_checks(f: Facts) -> list[Check]:
    router = f.router
    if router is not None:
        ports = dict(router["datapath"]["ifaces"])
        mtu = int(router.get("mtu") or 0)
    elif f.datapath is not None:
        ports = {v.name: v.port_no or 0 for v in f.datapath.vports if v.type == VportType.NETDEV}
        mtu = 0
    else:
        return []
    return [_port(f, name, number, mtu) for name, number in sorted(ports.items())]


def _port(f: Facts, name: str, number: int, mtu: int) -> Check:
    subject = f"{name} (port {number})"
    link = f.links.get(name)
    if link is None:
        return problem(
            "port",
            subject,
            "device",
            f"{name} is attached to the datapath but the device is gone "
            "(its container and veth deleted?)",
            f"detach it: odpctl vport del DP {name} (or restart the container)",
        )
    if link.operstate not in _UP:
        peer = " (a veth whose peer is down or gone)" if link.kind == "veth" else ""
        return problem(
            "port",
            subject,
            "link",
            f"link {link.operstate}{peer}",
            f"bring it up: ip link set {name} up (and the container's end)",
        )
    if mtu and link.mtu > mtu:
        return problem(
            "port",
            subject,
            "mtu",
            f"MTU {link.mtu} above the overlay MTU {mtu}: the container's "
            "full-size frames cannot cross to other hosts",
            f"ip link set {name} mtu {mtu}, and the same for the container's eth0",
        )
    return ok("port", subject, "link", f"up, MTU {link.mtu}")

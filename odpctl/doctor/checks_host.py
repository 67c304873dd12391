"""The host: firewall rules dropping the overlay's ports, rp_filter, IP forwarding."""

from __future__ import annotations

from .facts import MESH_PORT, VXLAN_PORT, Facts
from .report import Check, ok, problem, warn


def host_checks(f: Facts) -> list[Check]:
    return [*_firewall(f), *_rp_filter(f), _forwarding(f)]


def _firewall(f: Facts) -> list[Check]:
    if f.firewall_error:
        return [
            warn(
                "host",
                "firewall",
                "firewall",
                f"cannot read the rules: {f.firewall_error}",
                f"check by hand that TCP {MESH_PORT} and UDP {VXLAN_PORT} are allowed in",
            )
        ]
    if not f.firewall:
        return [
            ok(
                "host",
                "firewall",
                "firewall",
                f"no nftables or iptables rule drops TCP {MESH_PORT} or UDP {VXLAN_PORT}",
            )
        ]
    return [
        problem(
            "host",
            f"{r.proto} {r.port}",
            "firewall",
            f"{r.where} drops {r.proto.upper()} {r.port} coming in: {r.text}",
            f"{r.remove} (or accept {r.proto} dport {r.port} before it)",
        )
        for r in f.firewall
    ]


def _rp_filter(f: Facts) -> list[Check]:
    checks = []
    default = f.sysctls.get("net/ipv4/conf/all/rp_filter", "0")
    for dev in sorted(set(f.routes.values())):
        value = max(int(default), int(f.sysctls.get(f"net/ipv4/conf/{dev}/rp_filter", "0")))
        if value == 1:
            checks.append(
                warn(
                    "host",
                    dev,
                    "rp_filter",
                    f"strict reverse-path filtering on {dev} (the underlay to peers): tunnel "
                    "traffic arriving where the route back does not go is dropped",
                    f"sysctl -w net.ipv4.conf.{dev}.rp_filter=2 net.ipv4.conf.all.rp_filter=2",
                )
            )
        else:
            checks.append(
                ok(
                    "host",
                    dev,
                    "rp_filter",
                    f"rp_filter {value} on {dev}: tunnel traffic is not filtered",
                )
            )
    return checks


def _forwarding(f: Facts) -> Check:
    state = f.sysctls.get("net/ipv4/ip_forward")
    if state == "1":
        return ok("host", "ip_forward", "forwarding", "IP forwarding on")
    # The datapath switches container frames and the kernel sends VXLAN from
    # this host's own address: nothing is routed through the host.
    return ok(
        "host",
        "ip_forward",
        "forwarding",
        "IP forwarding off: not needed, the datapath switches the containers' traffic",
    )

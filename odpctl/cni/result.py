"""ADD's result: built from the router's attach reply (and a delegated IPAM's
result), written in the config's cniVersion, and read back as CHECK's prevResult."""

from __future__ import annotations

import ipaddress

from .spec import INVALID_CONFIG, ROUTER_REFUSED, CniError, version_tuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .sandbox import Address, Interface, Network


def from_attach(
    reply: dict[str, Any], sandbox: str, ipam: dict[str, Any] | None, dns: dict[str, Any] | None
) -> dict[str, Any]:
    """The result (1.0.0 shape) of an attach: the container's interface, its
    address (from the router's IPAM, or ``ipam``'s result), the routes and DNS."""
    try:
        address = ipaddress.ip_interface(str(reply["ip"]))
        interface = {"name": str(reply["ifname"]), "mac": str(reply["mac"]), "sandbox": sandbox}
    except (KeyError, ValueError) as exc:
        raise CniError(ROUTER_REFUSED, f"the router's attach reply lacks {exc}") from None
    # The host's end first, as bridge and ptp list theirs: `bandwidth` shapes it.
    interfaces = [{"name": str(reply["host_iface"])}] if reply.get("host_iface") else []
    mine = len(interfaces)
    interfaces.append(interface)
    if ipam is not None:
        ips = [{**ip, "interface": mine} for ip in ipam.get("ips", [])]
        routes = list(ipam.get("routes", []))
        dns = ipam.get("dns") or dns
    else:
        ip: dict[str, Any] = {"address": str(address), "interface": mine}
        if reply.get("gateway"):
            ip["gateway"] = str(reply["gateway"])
        ips = [ip]
        routes = [{"dst": str(address.network)}]
    result: dict[str, Any] = {"interfaces": interfaces, "ips": ips, "routes": routes}
    if reply.get("dns") or dns:
        result["dns"] = reply.get("dns") or dns
    return result


def after(prev: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    """``ours`` appended to the result of the plugins before us in a chain (its
    prevResult): their interfaces, addresses and routes are kept, ours follow."""
    if not prev:
        return ours
    try:
        interfaces = list(prev.get("interfaces") or [])
        shift = len(interfaces)
        merged: dict[str, Any] = {
            "interfaces": interfaces + ours["interfaces"],
            "ips": list(prev.get("ips") or [])
            + [{**ip, "interface": ip["interface"] + shift} for ip in ours["ips"]],
            "routes": list(prev.get("routes") or []) + ours["routes"],
        }
    except (TypeError, AttributeError) as exc:
        raise CniError(INVALID_CONFIG, f"prevResult is malformed: {exc}") from None
    dns = prev.get("dns") or ours.get("dns")
    if dns:
        merged["dns"] = dns
    return merged


def in_version(result: dict[str, Any], version: str) -> dict[str, Any]:
    """``result`` as the spec of ``version`` writes it: before 1.0.0, each IP says its
    family ("version": "4" or "6")."""
    written = {"cniVersion": version, **{k: v for k, v in result.items() if k != "cniVersion"}}
    if version_tuple(version) < (1, 0, 0):
        written["ips"] = [
            {"version": str(ipaddress.ip_interface(ip["address"]).version), **ip}
            for ip in result.get("ips", [])
        ]
    else:
        written["ips"] = [
            {k: v for k, v in ip.items() if k != "version"} for ip in result.get("ips", [])
        ]
    return written


def expected(
    prev: dict[str, Any], sandbox: str, ifname: str
) -> tuple[str, set[Interface], set[tuple[Network, Address | None]]]:
    """What ``prev`` (any version) says the container's ``ifname`` has: its MAC,
    addresses and routes."""
    try:
        interfaces = prev.get("interfaces") or []
        mine = [
            i
            for i, iface in enumerate(interfaces)
            if iface.get("name") == ifname and iface.get("sandbox") == sandbox
        ]
        if not mine:
            raise CniError(
                INVALID_CONFIG, f"prevResult has no interface {ifname} in sandbox {sandbox}"
            )
        index = mine[0]
        addresses = {
            ipaddress.ip_interface(ip["address"])
            for ip in prev.get("ips") or []
            if ip.get("interface", index) == index
        }
        routes = {
            (
                ipaddress.ip_network(r["dst"], strict=False),
                ipaddress.ip_address(r["gw"]) if r.get("gw") else None,
            )
            for r in prev.get("routes") or []
        }
        return str(interfaces[index].get("mac") or "").lower(), addresses, routes
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CniError(INVALID_CONFIG, f"prevResult is malformed: {exc}") from None

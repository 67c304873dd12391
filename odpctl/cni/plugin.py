"""The CNI commands: ADD, DEL and CHECK through the router; VERSION, STATUS and GC."""

from __future__ import annotations

import contextlib
import ipaddress

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.control.protocol import ControlError, RouterUnavailableError
from odpctl.errors import OdpError

from . import result as results
from . import sandbox
from .delegate import run_ipam
from .request import Invocation, attachment_id, gc_prefix
from .spec import (
    CHECK_FAILED,
    CHECK_SINCE,
    GC_SINCE,
    INCOMPATIBLE_VERSION,
    INTERFACE_EXISTS,
    INVALID_CONFIG,
    IO_FAILURE,
    PLUGIN_NOT_AVAILABLE,
    ROUTER_REFUSED,
    STATUS_SINCE,
    SUPPORTED_VERSIONS,
    TRY_AGAIN_LATER,
    CniError,
    version_tuple,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_NO_ROUTER = (
    'start one with `odpctl router start`, or name its socket with "control" '
    "in the network configuration"
)
# Attaching creates links and asks IPAM, which may wait for the cluster.
_ATTACH_TIMEOUT = 30.0


def execute(inv: Invocation, env: Mapping[str, str]) -> dict[str, Any] | None:
    """Run the invocation's command: the result to print, or None (nothing to print)."""
    if inv.command == "VERSION":
        return version(inv)
    if inv.command == "ADD":
        return add(inv, env)
    if inv.command == "DEL":
        delete(inv, env)
    elif inv.command == "CHECK":
        check(inv, env)
    elif inv.command == "GC":
        collect(inv)
    else:
        status(inv)
    return None


def version(inv: Invocation) -> dict[str, Any]:
    asked = inv.config.get("cniVersion")
    return {
        "cniVersion": asked if asked in SUPPORTED_VERSIONS else "1.0.0",
        "supportedVersions": list(reversed(SUPPORTED_VERSIONS)),
    }


def add(inv: Invocation, env: Mapping[str, str]) -> dict[str, Any]:
    if sandbox.has_interface(inv.netns, inv.ifname):
        raise CniError(INTERFACE_EXISTS, f"interface {inv.ifname} already exists in {inv.netns}")
    delegated = run_ipam(inv, "ADD", env) if _delegates(inv) else None
    request: dict[str, Any] = {"netns": inv.netns, "id": inv.attachment_id, "ifname": inv.ifname}
    ip = _first_address(delegated) if delegated is not None else _requested_ip(inv)
    if ip:
        request["ip"] = ip
    if inv.args.get("K8S_POD_NAME"):
        request["name"] = inv.args["K8S_POD_NAME"]
    if inv.config.get("mtu"):
        request["mtu"] = inv.config["mtu"]
    try:
        reply = _router(inv, _ATTACH_TIMEOUT).request("attach", **request)
        if not isinstance(reply, dict):
            raise CniError(ROUTER_REFUSED, "the router's attach reply is not an object")
        if delegated is not None and delegated.get("routes"):
            sandbox.add_routes(inv.netns, inv.ifname, _routes(delegated["routes"]))
    except BaseException:
        if delegated is not None:  # hand the address back: nothing half-done
            with contextlib.suppress(CniError):
                run_ipam(inv, "DEL", env)
        raise
    built = results.from_attach(reply, inv.netns, delegated, inv.config.get("dns"))
    return results.in_version(results.after(inv.config.get("prevResult"), built), inv.version)


def delete(inv: Invocation, env: Mapping[str, str]) -> None:
    try:
        _router(inv).request("detach", id=inv.attachment_id)
    except ControlError as exc:
        if exc.kind != "NotFoundError":  # already gone: DEL is idempotent
            raise
    if _delegates(inv):
        run_ipam(inv, "DEL", env)


def check(inv: Invocation, env: Mapping[str, str]) -> None:
    if version_tuple(inv.version) < CHECK_SINCE:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {inv.version} has no CHECK")
    prev = inv.config.get("prevResult")
    if not prev:
        raise CniError(INVALID_CONFIG, "CHECK needs the prevResult of ADD")
    _router(inv).request("status")
    if _delegates(inv):
        run_ipam(inv, "CHECK", env)
    mac, addresses, routes = results.expected(prev, inv.netns, inv.ifname)
    link = sandbox.read_link(inv.netns, inv.ifname)
    if link is None:
        raise CniError(CHECK_FAILED, f"interface {inv.ifname} is missing in {inv.netns}")
    if mac and link.mac != mac:
        raise CniError(CHECK_FAILED, f"{inv.ifname} has MAC {link.mac}, not {mac}")
    missing = sorted(addresses - link.addresses, key=str)
    if missing:
        raise CniError(CHECK_FAILED, f"{inv.ifname} lacks its address {missing[0]}")
    present = {dst for dst, _ in link.routes}
    for dst, gw in sorted(routes, key=str):
        if (dst, gw) not in link.routes and not (gw is None and dst in present):
            via = f" via {gw}" if gw else ""
            raise CniError(CHECK_FAILED, f"{inv.ifname} lacks its route to {dst}{via}")


def status(inv: Invocation) -> None:
    if version_tuple(inv.version) < STATUS_SINCE:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {inv.version} has no STATUS")
    try:
        _router(inv).request("status")
    except CniError as exc:
        if exc.code != TRY_AGAIN_LATER:
            raise
        raise CniError(PLUGIN_NOT_AVAILABLE, exc.message, exc.details) from None


def collect(inv: Invocation) -> None:
    """GC: detach this network's attachments that the runtime no longer lists."""
    if version_tuple(inv.version) < GC_SINCE:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {inv.version} has no GC")
    valid = inv.config.get("cni.dev/valid-attachments")
    if not isinstance(valid, list) or not all(
        isinstance(a, dict)
        and isinstance(a.get("containerID"), str)
        and isinstance(a.get("ifname"), str)
        for a in valid
    ):
        raise CniError(
            INVALID_CONFIG,
            '"cni.dev/valid-attachments" must list {"containerID", "ifname"} objects',
        )
    name = str(inv.config["name"])
    keep = {attachment_id(name, a["containerID"], a["ifname"]) for a in valid}
    router = _router(inv)
    held = (router.request("ipam_status") or {}).get("allocations") or {}
    for ident in sorted(held):
        if ident.startswith(gc_prefix(name)) and ident not in keep:
            with contextlib.suppress(ControlError):  # gone meanwhile
                router.request("detach", id=ident)


class _Router:
    """The router's control socket, its failures told as CNI errors."""

    def __init__(self, path: str, timeout: float) -> None:
        self.client = ControlClient(path, timeout=timeout)

    def request(self, cmd: str, **args: Any) -> Any:
        try:
            return self.client.request(cmd, **args)
        except RouterUnavailableError as exc:
            raise CniError(TRY_AGAIN_LATER, exc.message, _NO_ROUTER) from None
        except ControlError as exc:
            if exc.kind == "NotFoundError":
                raise
            raise CniError(
                ROUTER_REFUSED, f"the router refused {cmd}: {exc.message}", exc.hint or ""
            ) from None
        except OdpError as exc:  # the socket is root's
            raise CniError(IO_FAILURE, exc.message, exc.hint or "") from None


def _router(inv: Invocation, timeout: float = 10.0) -> _Router:
    path = inv.config.get("control")
    return _Router(str(path or default_socket_path()), timeout)


def _delegates(inv: Invocation) -> bool:
    return bool(inv.config.get("ipam"))


def _requested_ip(inv: Invocation) -> str | None:
    """An address the runtime asks for: CNI_ARGS IP=, or the "ips" capability."""
    wanted = inv.args.get("IP")
    ips = (inv.config.get("runtimeConfig") or {}).get("ips")
    if not wanted and isinstance(ips, list) and ips:
        wanted = str(ips[0])
    if not wanted:
        return None
    try:
        ipaddress.ip_interface(wanted)
    except ValueError:
        raise CniError(INVALID_CONFIG, f"requested address {wanted!r} is not an address") from None
    return wanted


def _first_address(delegated: dict[str, Any]) -> str:
    """The IPAM's address the container gets (IPv4 first: the overlay is IPv4)."""
    addresses = sorted((str(ip.get("address")) for ip in delegated["ips"]), key=lambda a: ":" in a)
    return addresses[0]


def _routes(routes: list[dict[str, Any]]) -> list[tuple[sandbox.Network, sandbox.Address | None]]:
    try:
        return [
            (
                ipaddress.ip_network(r["dst"], strict=False),
                ipaddress.ip_address(r["gw"]) if r.get("gw") else None,
            )
            for r in routes
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise CniError(IO_FAILURE, f"the IPAM plugin gave a malformed route: {exc}") from None

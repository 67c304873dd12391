"""NetworkDriver: Docker's networks and endpoints, joined through the router's attach.

Join asks the router to attach the sandbox's namespace (SandboxKey), as it
attaches any container: the veth, its host end on the datapath, the other end in
the sandbox with the endpoint's address (from IPAM) and the overlay's MTU.  Then,
as libnetwork expects, the driver brings that end out into its own namespace and
hands it back by name (SrcName); Docker moves it into the sandbox as eth<N> and
sets the endpoint's address, the static routes (the overlay's range, when the
address's subnet does not cover it) and the gateway: the router's, when it has
one (`odpctl router expose`), else Docker gives the container its gateway
bridge for traffic leaving the overlay.
"""

from __future__ import annotations

from typing import Any

from odpctl.errors import OdpError

from .ipam import IpamDriver
from .links import bring_out
from .requests import field, interface, network
from .router import DriverError, Router
from .state import State

# Docker names the interface in the sandbox: eth0, eth1, ...
IFNAME_PREFIX = "eth"
HANDED_PREFIX = "vodc"


class NetworkDriver:
    def __init__(self, router: Router, state: State, ipam: IpamDriver) -> None:
        self.router = router
        self.state = state
        self.ipam = ipam

    def GetCapabilities(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"Scope": "global", "ConnectivityScope": "global"}

    def CreateNetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "NetworkID", str)
        field(body, "Options", dict, required=False)
        ipv4 = field(body, "IPv4Data", list, required=False) or []
        if field(body, "IPv6Data", list, required=False):
            raise DriverError("odpctl's overlay is IPv4 only: no IPv6Data", bad_request=True)
        # Checked, not kept: the endpoints carry what a network's containers need.
        for data in ipv4:
            if not isinstance(data, dict):
                raise DriverError("IPv4Data entries must be JSON objects", bad_request=True)
            network(field(data, "Pool", str), "IPv4Data Pool")
            if data.get("Gateway"):
                interface(field(data, "Gateway", str), "IPv4Data Gateway")
        return {}

    def DeleteNetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "NetworkID", str)
        return {}

    def CreateEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        nid, eid = field(body, "NetworkID", str), field(body, "EndpointID", str)
        field(body, "Options", dict, required=False)
        iface = field(body, "Interface", dict, required=False) or {}
        if field(iface, "AddressIPv6", str, required=False):
            raise DriverError("odpctl's overlay is IPv4 only: no AddressIPv6", bad_request=True)
        text = field(iface, "Address", str, required=False)
        if text is None:
            raise DriverError(
                "the endpoint has no IPv4 address: create the network with an "
                "IPAM driver that gives one (--ipam-driver odpctl)",
                bad_request=True,
            )
        address = interface(text, "Interface Address")
        with self.state.lock:
            self.state.endpoints[eid] = {"network": nid, "address": str(address)}
            self.state.save()
        # Docker gave the address: the reply's Interface must be empty.
        return {"Interface": {}}

    def EndpointOperInfo(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(body)
        return {"Value": dict(endpoint)}

    def DeleteEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "NetworkID", str)
        eid = field(body, "EndpointID", str)
        with self.state.lock:
            endpoint = self.state.endpoints.get(eid)
        if endpoint is not None and endpoint.get("attached"):
            self.router.request("detach", id=endpoint["attached"])
        with self.state.lock:
            self.state.endpoints.pop(eid, None)
            self.state.save()
        return {}

    def Join(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(body)
        sandbox = field(body, "SandboxKey", str)
        field(body, "Options", dict, required=False)
        if not sandbox.startswith("/"):
            raise DriverError(f"SandboxKey {sandbox!r} is not a namespace path", bad_request=True)
        address = endpoint["address"]
        eid = str(body["EndpointID"])
        # The ID that holds the address in IPAM, so that the router's claim is its own.
        ident = self.ipam.holder(address.split("/")[0]) or f"docker:{eid}"
        # A name of the endpoint's own while the interface is ours: Docker renames it.
        handed = f"{HANDED_PREFIX}{eid[: 15 - len(HANDED_PREFIX)]}"
        reply = self.router.request("attach", netns=sandbox, id=ident, ip=address, ifname=handed)
        if not isinstance(reply, dict):
            raise DriverError("the router's attach reply is not an object")
        try:
            bring_out(sandbox, handed)
        except OdpError as exc:
            self.router.request("detach", id=ident)  # nothing half-done
            raise DriverError(str(exc)) from None
        with self.state.lock:
            endpoint.update(
                attached=ident,
                sandbox=sandbox,
                ifname=handed,
                mac=reply.get("mac"),
                port_no=reply.get("port_no"),
            )
            self.state.save()
        answer: dict[str, Any] = {
            "InterfaceName": {"SrcName": handed, "DstPrefix": IFNAME_PREFIX},
            "StaticRoutes": self._routes(address),
        }
        if reply.get("gateway"):
            answer["Gateway"] = str(reply["gateway"]).split("/")[0]
        return answer

    def _routes(self, address: str) -> list[dict[str, Any]]:
        """The overlay's range, as a connected route, if the address's subnet (Docker
        sets that one) does not cover it."""
        overlay = self.ipam.range()
        if overlay.subnet_of(interface(address, "Address").network):
            return []
        return [{"Destination": str(overlay), "RouteType": 1}]

    def Leave(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(body)
        if endpoint.get("attached"):
            self.router.request("detach", id=endpoint["attached"])
        with self.state.lock:
            for key in ("attached", "sandbox", "ifname", "mac", "port_no"):
                endpoint.pop(key, None)
            self.state.save()
        return {}

    def DiscoverNew(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "DiscoveryType", int)
        field(body, "DiscoveryData", dict, required=False)
        return {}  # the mesh finds its peers itself

    DiscoverDelete = DiscoverNew

    def _endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "NetworkID", str)
        eid = field(body, "EndpointID", str)
        with self.state.lock:
            endpoint = self.state.endpoints.get(eid)
        if endpoint is None:
            raise DriverError(f"unknown endpoint {eid}", bad_request=True)
        return endpoint

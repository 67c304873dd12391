"""NetworkDriver: Docker's networks and endpoints, joined through the router's attach.

Join asks the router to attach the sandbox's namespace (SandboxKey) itself:
the router makes the veth, moves its end into the sandbox, and sets its address
(the endpoint's, from IPAM), MTU and the overlay's route, as it does for every
container.  So the reply names no interface for Docker to move (it would find
none in the host: it is in the sandbox already); it carries the router's
gateway when it has one, else Docker gives the container its gateway bridge
for traffic leaving the overlay.
"""

from __future__ import annotations

from typing import Any

from odpctl.errors import OdpError
from odpctl.netlink.netns import has_interface

from .ipam import IpamDriver
from .requests import field, interface, network
from .router import DriverError, Router
from .state import State

# The sandbox's interfaces are named like Docker's own: eth0, eth1, ...
IFNAME_PREFIX = "eth"


class NetworkDriver:
    def __init__(self, router: Router, state: State, ipam: IpamDriver) -> None:
        self.router = router
        self.state = state
        self.ipam = ipam

    def GetCapabilities(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Scope": "global", "ConnectivityScope": "global"}

    def CreateNetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        nid = field(body, "NetworkID", str)
        field(body, "Options", dict, required=False)
        ipv4 = field(body, "IPv4Data", list, required=False) or []
        if field(body, "IPv6Data", list, required=False):
            raise DriverError("odpctl's overlay is IPv4 only: no IPv6Data", bad_request=True)
        pools = []
        for data in ipv4:
            if not isinstance(data, dict):
                raise DriverError("IPv4Data entries must be JSON objects", bad_request=True)
            pools.append(str(network(field(data, "Pool", str), "IPv4Data Pool")))
            if data.get("Gateway"):
                interface(field(data, "Gateway", str), "IPv4Data Gateway")
        with self.state.lock:
            self.state.networks[nid] = {"pools": pools}
            self.state.save()
        return {}

    def DeleteNetwork(self, body: dict[str, Any]) -> dict[str, Any]:
        nid = field(body, "NetworkID", str)
        with self.state.lock:
            self.state.networks.pop(nid, None)
            self.state.save()
        return {}

    def CreateEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        nid, eid = field(body, "NetworkID", str), field(body, "EndpointID", str)
        field(body, "Options", dict, required=False)
        iface = field(body, "Interface", dict, required=False) or {}
        if field(iface, "AddressIPv6", str, required=False):
            raise DriverError("odpctl's overlay is IPv4 only: no AddressIPv6", bad_request=True)
        text = field(iface, "Address", str, required=False)
        if text is None:
            raise DriverError("the endpoint has no IPv4 address: create the network with an "
                              "IPAM driver that gives one (--ipam-driver odpctl)",
                              bad_request=True)
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
            raise DriverError(f"SandboxKey {sandbox!r} is not a namespace path",
                              bad_request=True)
        address = endpoint["address"]
        # The ID that holds the address in IPAM, so that the router's claim is its own.
        ident = self.ipam.holder(address.split("/")[0]) or f"docker:{body['EndpointID']}"
        reply = self.router.request("attach", netns=sandbox, id=ident, ip=address,
                                    ifname=self._free_ifname(sandbox))
        if not isinstance(reply, dict):
            raise DriverError("the router's attach reply is not an object")
        with self.state.lock:
            endpoint.update(attached=ident, sandbox=sandbox, ifname=reply.get("ifname"),
                            mac=reply.get("mac"), port_no=reply.get("port_no"))
            self.state.save()
        answer: dict[str, Any] = {"StaticRoutes": []}
        if reply.get("gateway"):
            answer["Gateway"] = str(reply["gateway"])
        return answer

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

    def _free_ifname(self, sandbox: str) -> str:
        try:
            return next(f"{IFNAME_PREFIX}{n}" for n in range(100)
                        if not has_interface(sandbox, f"{IFNAME_PREFIX}{n}"))
        except StopIteration:
            raise DriverError(f"no free interface name in {sandbox}") from None
        except OdpError as exc:
            raise DriverError(f"SandboxKey {sandbox}: {exc}") from None

"""IpamDriver: Docker's address pools and addresses, from the router's IPAM."""

from __future__ import annotations

import secrets
from typing import Any

from .requests import Network, field, interface, network
from .router import DriverError, Router
from .state import State

GATEWAY_REQUEST = "com.docker.network.gateway"
ADDRESS_SPACE = "odpctl"


class IpamDriver:
    def __init__(self, router: Router, state: State) -> None:
        self.router = router
        self.state = state
        self._range: Network | None = None  # the router's, fixed for its life

    def GetCapabilities(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    def GetDefaultAddressSpaces(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {
            "LocalDefaultAddressSpace": ADDRESS_SPACE,
            "GlobalDefaultAddressSpace": ADDRESS_SPACE,
        }

    def RequestPool(self, body: dict[str, Any]) -> dict[str, Any]:
        field(body, "AddressSpace", str)
        pool_text = field(body, "Pool", str, required=False)
        sub_text = field(body, "SubPool", str, required=False)
        field(body, "Options", dict, required=False)
        if body.get("V6") and not pool_text:
            raise DriverError("odpctl's IPAM has no IPv6 pools", bad_request=True)
        if sub_text and not pool_text:
            raise DriverError("SubPool without Pool", bad_request=True)
        whole = self.range()
        pool = network(pool_text, "Pool") if pool_text else whole
        if not pool.subnet_of(whole):
            raise DriverError(f"Pool {pool} is outside the overlay's range {whole}")
        sub = network(sub_text, "SubPool") if sub_text else None
        if sub is not None and not sub.subnet_of(pool):
            raise DriverError(f"SubPool {sub} is outside Pool {pool}", bad_request=True)
        return {"PoolID": _pool_id(pool, sub), "Pool": str(pool), "Data": {}}

    def ReleasePool(self, body: dict[str, Any]) -> dict[str, Any]:
        _parse_pool_id(field(body, "PoolID", str))
        return {}

    def RequestAddress(self, body: dict[str, Any]) -> dict[str, Any]:
        pool, sub = _parse_pool_id(field(body, "PoolID", str))
        wanted = field(body, "Address", str, required=False)
        options = field(body, "Options", dict, required=False) or {}
        gateway = options.get("RequestAddressType") == GATEWAY_REQUEST
        # An ID of its own for each address Docker asks for: a second claim of an
        # address is then refused by IPAM, naming the holder.
        ident = f"docker-{'gw' if gateway else 'ep'}:{secrets.token_hex(8)}"
        if wanted:
            address = interface(wanted, "Address").ip
            if address not in pool:
                raise DriverError(f"Address {address} is outside Pool {pool}", bad_request=True)
            reply = self.router.request("ipam_claim", id=ident, ip=str(address))
        else:
            args = {"cidr": str(sub or pool)} if (sub or pool) != self.range() else {}
            reply = self.router.request("ipam_allocate", id=ident, **args)
        address = interface(str(reply["ip"]), "the router's address").ip
        with self.state.lock:
            self.state.addresses[str(address)] = ident
            self.state.save()
        return {"Address": f"{address}/{pool.prefixlen}", "Data": {}}

    def ReleaseAddress(self, body: dict[str, Any]) -> dict[str, Any]:
        _parse_pool_id(field(body, "PoolID", str))
        address = str(interface(field(body, "Address", str), "Address").ip)
        ident = self.holder(address)
        if ident is not None:
            self.router.request("ipam_release", id=ident)
        with self.state.lock:
            self.state.addresses.pop(address, None)
            self.state.save()
        return {}

    def holder(self, address: str) -> str | None:
        """The IPAM ID that holds ``address`` for Docker: remembered, or asked of the router
        (a driver restarted without its state file)."""
        with self.state.lock:
            ident = self.state.addresses.get(address)
        if ident is not None:
            return ident
        allocations = self._status().get("allocations") or {}
        return next(
            (i for i, ip in allocations.items() if ip == address and i.startswith("docker")), None
        )

    def _status(self) -> dict[str, Any]:
        status = self.router.request("ipam_status")
        if not isinstance(status, dict) or "range" not in status:
            raise DriverError("the router's IPAM status has no range")
        return status

    def range(self) -> Network:
        """The router's address range."""
        if self._range is None:
            self._range = network(str(self._status()["range"]), "the router's range")
        return self._range


def _pool_id(pool: Network, sub: Network | None) -> str:
    return f"{pool}@{sub}" if sub is not None else str(pool)


def _parse_pool_id(pool_id: str) -> tuple[Network, Network | None]:
    pool_text, _, sub_text = pool_id.partition("@")
    pool = network(pool_text, "PoolID")
    return pool, network(sub_text, "PoolID") if sub_text else None

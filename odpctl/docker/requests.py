"""Reading Docker's request bodies: each field checked, a bad one named in the error."""

from __future__ import annotations

import ipaddress
from typing import Any

from .router import DriverError

Network = ipaddress.IPv4Network


def field(body: dict[str, Any], key: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise DriverError(f"{key} is missing", bad_request=True)
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DriverError(
            f"{key} must be a {'JSON object' if kind is dict else kind.__name__}", bad_request=True
        )
    return value


def network(text: str, what: str) -> Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise DriverError(f"{what} {text!r} is not a CIDR", bad_request=True) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise DriverError(f"{what} {text}: odpctl's overlay is IPv4 only", bad_request=True)
    return net


def interface(text: str, what: str) -> ipaddress.IPv4Interface:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise DriverError(f"{what} {text!r} is not an address", bad_request=True) from None
    if not isinstance(iface, ipaddress.IPv4Interface):
        raise DriverError(f"{what} {text}: odpctl's overlay is IPv4 only", bad_request=True)
    return iface

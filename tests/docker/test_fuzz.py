"""Hostile request bodies: every endpoint answers or refuses with DriverError (an Err
for Docker), never another exception. In process; the router is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.docker.router import DriverError
from odpctl.docker.server import routes
from odpctl.docker.state import State

ENDPOINTS = routes(Path("/nonexistent/odpctl-router.sock"), State())
KEYS = [
    "NetworkID",
    "EndpointID",
    "SandboxKey",
    "Options",
    "Interface",
    "Address",
    "AddressIPv6",
    "MacAddress",
    "IPv4Data",
    "IPv6Data",
    "Pool",
    "SubPool",
    "PoolID",
    "AddressSpace",
    "V6",
    "Gateway",
    "DiscoveryType",
    "DiscoveryData",
]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["10.32.0.0/12", "10.32.0.5/12", "10.32.0.5", "fd00::/64", "/proc/1/x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    url=st.sampled_from(sorted(ENDPOINTS)),
    body=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
)
def test_every_endpoint_answers_or_refuses(url: str, body: dict[str, Any]) -> None:
    try:
        answer: object = ENDPOINTS[url](body)
    except DriverError as exc:
        answer = exc
    if isinstance(answer, DriverError):
        assert answer.message
        return
    assert isinstance(answer, dict)

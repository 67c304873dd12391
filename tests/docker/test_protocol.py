"""Docker's plugin protocol, with the bodies Docker sends (libnetwork's remote.md and
ipam.md), answered by `odpctl docker-plugin` on its unix socket. No router here:
what needs one says so in its Err."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ODPCTL, Driver

NOWHERE = Path("/nonexistent/odpctl-router.sock")
NID = "6e1d7f6a0b3e4c4b9c3c2f0e6b0f1a2d3c4b5a69788766554433221100ffeedd"
EID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    # One for the module: each of these requests stands alone.
    driver = Driver(tmp_path_factory.mktemp("driver"), NOWHERE)
    yield driver
    driver.stop()


def test_activate_and_capabilities(driver: Driver) -> None:
    for body in (None, b""):  # Docker posts "null"; some clients nothing
        assert driver.post("/Plugin.Activate", body) == (
            200,
            {"Implements": ["NetworkDriver", "IpamDriver"]},
        )
    assert driver.post("/NetworkDriver.GetCapabilities") == (
        200,
        {"Scope": "global", "ConnectivityScope": "global"},
    )
    status, caps = driver.post("/IpamDriver.GetCapabilities")
    assert status == 200 and caps["RequiresMACAddress"] is False
    status, spaces = driver.post("/IpamDriver.GetDefaultAddressSpaces")
    assert status == 200 and spaces["GlobalDefaultAddressSpace"]


def test_an_unknown_endpoint_is_404(driver: Driver) -> None:
    status, answer = driver.post(
        "/NetworkDriver.ProgramExternalConnectivity", {"NetworkID": NID, "EndpointID": EID}
    )
    assert status == 404 and "Err" in answer


@pytest.mark.parametrize(
    ("url", "body", "named"),
    [
        ("/NetworkDriver.CreateNetwork", {}, "NetworkID"),
        ("/NetworkDriver.CreateNetwork", {"NetworkID": 5}, "NetworkID"),
        (
            "/NetworkDriver.CreateNetwork",
            {"NetworkID": NID, "IPv4Data": [{"Pool": "10.1/33"}]},
            "Pool",
        ),
        ("/NetworkDriver.CreateNetwork", {"NetworkID": NID, "IPv4Data": ["x"]}, "IPv4Data"),
        (
            "/NetworkDriver.CreateNetwork",
            {"NetworkID": NID, "IPv6Data": [{"Pool": "fd00::/64"}]},
            "IPv6",
        ),
        ("/NetworkDriver.DeleteNetwork", {"NetworkID": None}, "NetworkID"),
        ("/NetworkDriver.CreateEndpoint", {"NetworkID": NID}, "EndpointID"),
        ("/NetworkDriver.CreateEndpoint", {"NetworkID": NID, "EndpointID": EID}, "address"),
        (
            "/NetworkDriver.CreateEndpoint",
            {"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": "10.32.0.300/12"}},
            "Address",
        ),
        (
            "/NetworkDriver.CreateEndpoint",
            {"NetworkID": NID, "EndpointID": EID, "Interface": "eth0"},
            "Interface",
        ),
        ("/NetworkDriver.Join", {"NetworkID": NID, "EndpointID": EID}, "unknown endpoint"),
        ("/NetworkDriver.Leave", {"NetworkID": NID}, "EndpointID"),
        ("/NetworkDriver.EndpointOperInfo", {"EndpointID": EID}, "NetworkID"),
        ("/NetworkDriver.DeleteEndpoint", {"NetworkID": NID, "EndpointID": []}, "EndpointID"),
        ("/NetworkDriver.DiscoverNew", {"DiscoveryType": "node"}, "DiscoveryType"),
        ("/NetworkDriver.DiscoverDelete", {}, "DiscoveryType"),
        ("/IpamDriver.RequestPool", {}, "AddressSpace"),
        ("/IpamDriver.RequestPool", {"AddressSpace": "odpctl", "V6": True}, "IPv6"),
        (
            "/IpamDriver.RequestPool",
            {"AddressSpace": "odpctl", "SubPool": "10.32.1.0/24"},
            "SubPool",
        ),
        ("/IpamDriver.ReleasePool", {"PoolID": "nonsense"}, "PoolID"),
        ("/IpamDriver.RequestAddress", {"PoolID": "10.32.0.0/12", "Address": "x"}, "Address"),
        (
            "/IpamDriver.RequestAddress",
            {"PoolID": "10.32.0.0/12", "Address": "10.99.0.1"},
            "outside",
        ),
        ("/IpamDriver.ReleaseAddress", {"PoolID": "10.32.0.0/12"}, "Address"),
        ("/IpamDriver.RequestAddress", [1, 2], "object"),
        ("/IpamDriver.RequestAddress", b"{nope", "JSON"),
    ],
)
def test_bad_input_gets_an_err(driver: Driver, url: str, body: Any, named: str) -> None:
    status, answer = driver.post(url, body)
    assert status == 400, answer
    assert set(answer) == {"Err"} and named in answer["Err"]


def test_the_router_down_is_an_err_naming_it(driver: Driver) -> None:
    status, answer = driver.post("/IpamDriver.RequestPool", {"AddressSpace": "odpctl"})
    assert status == 500 and str(NOWHERE) in answer["Err"]
    status, answer = driver.post("/IpamDriver.RequestAddress", {"PoolID": "10.32.0.0/12"})
    assert status == 500 and "router" in answer["Err"]


def test_network_and_endpoint_bookkeeping_survives_a_restart(
    driver_factory: Callable[..., Driver], tmp_path: Path
) -> None:
    state = tmp_path / "driver.json"
    first = driver_factory(NOWHERE, state)
    create = {
        "NetworkID": NID,
        "Options": {"com.docker.network.generic": {}},
        "IPv4Data": [
            {
                "AddressSpace": "odpctl",
                "Pool": "10.32.0.0/12",
                "Gateway": "10.32.0.1/12",
                "AuxAddresses": {},
            }
        ],
        "IPv6Data": [],
    }
    assert first.post("/NetworkDriver.CreateNetwork", create) == (200, {})
    endpoint = {
        "NetworkID": NID,
        "EndpointID": EID,
        "Options": {},
        "Interface": {"Address": "10.32.0.7/12", "AddressIPv6": "", "MacAddress": ""},
    }
    # Docker gave the address: the answer's Interface must be empty.
    assert first.post("/NetworkDriver.CreateEndpoint", endpoint) == (200, {"Interface": {}})
    first.stop()
    assert json.loads(state.read_text())["endpoints"][EID]["address"] == "10.32.0.7/12"

    again = driver_factory(NOWHERE, state)
    ids = {"NetworkID": NID, "EndpointID": EID}
    status, info = again.post("/NetworkDriver.EndpointOperInfo", ids)
    assert status == 200 and info["Value"]["address"] == "10.32.0.7/12"
    # Join needs the router: it says so, and the endpoint stays unjoined.
    join = {**ids, "SandboxKey": "/proc/1/ns/net", "Options": {}}
    status, answer = again.post("/NetworkDriver.Join", join)
    assert status == 500 and "router" in answer["Err"]
    assert again.post("/NetworkDriver.DeleteEndpoint", ids) == (200, {})
    assert again.post("/NetworkDriver.DeleteNetwork", {"NetworkID": NID}) == (200, {})
    assert again.post("/NetworkDriver.EndpointOperInfo", ids)[0] == 400
    assert again.stop() in (0, -signal.SIGTERM)
    assert not again.socket.exists()


def test_a_second_driver_on_the_same_socket_is_refused(driver: Driver) -> None:
    proc = subprocess.run(
        [str(ODPCTL), "docker-plugin", "--socket", str(driver.socket), "--control", str(NOWHERE)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "another driver answers" in proc.stderr and proc.stderr.count("\n") == 1

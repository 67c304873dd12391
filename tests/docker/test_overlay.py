"""The Docker driver on two hosts of a real overlay, driven with the requests Docker
sends for `docker network create -d odpctl --ipam-driver odpctl` and two containers,
one per host: addresses from the routers' IPAM, joined sandboxes ping, then leave and
delete leave nothing behind."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator

import pytest
from cni.hosts import two_hosts

from odpctl.control.client import ControlClient
from odpctl.demo.overlaylab import OverlayLab

from .conftest import Driver

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

RANGE = "10.47.0.0/24"
NID = "0d5e0c1f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"


@pytest.fixture(scope="module")
def overlay() -> Iterator[OverlayLab]:
    with two_hosts("odpdkr", RANGE) as built:
        yield built


def ok(answer: tuple[int, dict[str, object]]) -> dict[str, object]:
    status, body = answer
    assert status == 200 and "Err" not in body, body
    return body


def test_network_endpoints_join_ping_leave_delete(
    overlay: OverlayLab, driver_factory: Callable[..., Driver]
) -> None:
    # Each host's driver runs in the host's namespace, as Docker's would.
    drivers = [driver_factory(h.control, netns=h.ns) for h in overlay.hosts]
    lab = overlay.lab
    first = drivers[0]
    # docker network create -d odpctl --ipam-driver odpctl web (on host 0)
    ok(first.post("/IpamDriver.GetDefaultAddressSpaces"))
    pool = ok(
        first.post(
            "/IpamDriver.RequestPool",
            {"AddressSpace": "odpctl", "Pool": "", "SubPool": "", "Options": {}, "V6": False},
        )
    )
    assert pool["Pool"] == RANGE
    gateway = ok(
        first.post(
            "/IpamDriver.RequestAddress",
            {
                "PoolID": pool["PoolID"],
                "Address": "",
                "Options": {"RequestAddressType": "com.docker.network.gateway"},
            },
        )
    )["Address"]
    ipv4 = [
        {"AddressSpace": "odpctl", "Pool": pool["Pool"], "Gateway": gateway, "AuxAddresses": {}}
    ]
    for driver in drivers:  # a global network is created on each host that uses it
        assert (
            ok(
                driver.post(
                    "/NetworkDriver.CreateNetwork",
                    {
                        "NetworkID": NID,
                        "Options": {"com.docker.network.enable_ipv6": False},
                        "IPv4Data": ipv4,
                        "IPv6Data": [],
                    },
                )
            )
            == {}
        )

    sandboxes, addresses = [], []
    for i, driver in enumerate(drivers):
        eid = f"{i:02d}" + "e" * 62
        address = ok(
            driver.post(
                "/IpamDriver.RequestAddress",
                {"PoolID": pool["PoolID"], "Address": "", "Options": {}},
            )
        )["Address"]
        assert isinstance(address, str)
        assert ipaddress.ip_interface(address) in ipaddress.ip_network(RANGE)
        assert ok(
            driver.post(
                "/NetworkDriver.CreateEndpoint",
                {
                    "NetworkID": NID,
                    "EndpointID": eid,
                    "Options": {},
                    "Interface": {"Address": address, "AddressIPv6": "", "MacAddress": ""},
                },
            )
        ) == {"Interface": {}}
        sandbox = lab.namespace(f"sb{i}")
        joined = ok(
            driver.post(
                "/NetworkDriver.Join",
                {
                    "NetworkID": NID,
                    "EndpointID": eid,
                    "SandboxKey": f"/run/netns/{sandbox}",
                    "Options": {},
                },
            )
        )
        handed = joined["InterfaceName"]
        assert isinstance(handed, dict) and handed["DstPrefix"] == "eth"
        src = handed["SrcName"]
        host_ns = overlay.hosts[i].ns
        # Handed back in the driver's namespace, as libnetwork expects ...
        assert f" {src}@" in lab.run(host_ns, "ip", "-o", "link").stdout
        assert joined["StaticRoutes"] == []  # the address's subnet is the whole range
        # The router's exposed address (exposed for its DNS server), where there is one.
        exposed = ControlClient(overlay.hosts[i].control).request("status")["router"]["exposed"]
        assert joined.get("Gateway") == (exposed.split("/")[0] if exposed else None)
        # ... and what Docker does with it: into the sandbox as eth0, with the address.
        assert lab.run(host_ns, "ip", "link", "set", src, "netns", sandbox).returncode == 0
        for argv in (
            ("ip", "link", "set", src, "name", "eth0"),
            ("ip", "addr", "add", str(address), "dev", "eth0"),
            ("ip", "link", "set", "eth0", "up"),
        ):
            assert lab.run(sandbox, *argv).returncode == 0, argv
        info = ok(
            driver.post("/NetworkDriver.EndpointOperInfo", {"NetworkID": NID, "EndpointID": eid})
        )["Value"]
        assert info["address"] == address and info["ifname"] == src  # type: ignore[index]
        sandboxes.append((driver, eid, sandbox))
        addresses.append(address)
    assert addresses[0] != addresses[1]
    ping = lab.run(
        sandboxes[0][2], "ping", "-c", "3", "-i", "0.2", "-W", "2", addresses[1].split("/")[0]
    )
    assert ping.returncode == 0, ping.stdout + overlay.log_tail(0) + overlay.log_tail(1)

    for (driver, eid, sandbox), address in zip(sandboxes, addresses, strict=True):
        ids = {"NetworkID": NID, "EndpointID": eid}
        assert ok(driver.post("/NetworkDriver.Leave", ids)) == {}
        # The router deleted the pair, wherever Docker had put the container's end.
        assert "eth0" not in lab.run(sandbox, "ip", "-o", "link").stdout
        assert ok(driver.post("/NetworkDriver.DeleteEndpoint", ids)) == {}
        assert (
            ok(
                driver.post(
                    "/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"], "Address": address}
                )
            )
            == {}
        )
    for driver in drivers:
        assert ok(driver.post("/NetworkDriver.DeleteNetwork", {"NetworkID": NID})) == {}
    ok(first.post("/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"], "Address": gateway}))
    ok(first.post("/IpamDriver.ReleasePool", {"PoolID": pool["PoolID"]}))
    # Every address Docker had is back in IPAM.
    for host in overlay.hosts:
        held = ControlClient(host.control).request("ipam_status")["allocations"]
        assert not [i for i in held if i.startswith("docker")], held


def test_a_static_address_is_claimed_once(
    overlay: OverlayLab, driver_factory: Callable[..., Driver]
) -> None:
    # docker run --ip X on host 0, then the same --ip on host 1
    drivers = [driver_factory(h.control) for h in overlay.hosts]
    pool = ok(drivers[0].post("/IpamDriver.RequestPool", {"AddressSpace": "odpctl"}))
    pool_id = pool["PoolID"]
    # An address of host 0's share of the range (a claim is made where it is owned).
    some = ok(drivers[0].post("/IpamDriver.RequestAddress", {"PoolID": pool_id}))["Address"]
    ok(drivers[0].post("/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": some}))
    address = str(some).split("/")[0]
    wanted = {"PoolID": pool_id, "Address": address, "Options": {}}
    assert ok(drivers[0].post("/IpamDriver.RequestAddress", wanted))["Address"] == some
    status, answer = drivers[1].post("/IpamDriver.RequestAddress", wanted)
    assert status == 500 and address in str(answer["Err"]), answer
    status, answer = drivers[0].post("/IpamDriver.RequestAddress", wanted)  # a second container
    assert status == 500 and f"{address} is in use" in str(answer["Err"]), answer
    ok(drivers[0].post("/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": address}))
    # Released: the next container asking for it gets it.
    assert ok(drivers[0].post("/IpamDriver.RequestAddress", wanted))["Address"] == some
    ok(drivers[0].post("/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": address}))

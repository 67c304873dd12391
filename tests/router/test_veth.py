"""A container's veth pair through our own rtnetlink requests, in real namespaces:
what `plug` leaves on both ends, its rollback, `unplug` and `set_address`.

The "host" is a namespace of its own too (the calling thread enters it), so
everything made here goes with the namespaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from odpctl.errors import AlreadyExistsError, NotFoundError, OdpError
from odpctl.netlink import links
from odpctl.netlink.netns import netns as entered
from odpctl.overlay import veth

Run = Callable[..., str]


def _links(run: Run, ns: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in json.loads(run("ip", "-j", "addr", "show", netns=ns))}


def test_plug_sets_up_both_ends(netns: Callable[[], str], run: Run) -> None:
    host, box = netns(), netns()
    with entered(host):
        plugged = veth.plug(box, "vtest0", "eth1", 1400, "10.9.0.5/24", ("10.9.0.0/16",))
    inside = _links(run, box)["eth1"]
    assert inside["mtu"] == 1400
    assert "UP" in inside["flags"]
    assert inside["address"] == plugged.mac
    assert int(plugged.mac.split(":")[0], 16) & 0x03 == 0x02  # unicast, locally administered
    assert [(a["local"], a["prefixlen"]) for a in inside["addr_info"] if a["family"] == "inet"] == [
        ("10.9.0.5", 24)
    ]
    routes = {r["dst"]: r for r in json.loads(run("ip", "-j", "route", netns=box))}
    assert routes["10.9.0.0/16"]["dev"] == "eth1"
    assert routes["10.9.0.0/16"]["scope"] == "link"
    outside = _links(run, host)["vtest0"]
    assert outside["mtu"] == 1400
    assert "UP" in outside["flags"]
    run("ip", "netns", "exec", box, "ping", "-c1", "-W2", "10.9.0.5")


def test_plug_skips_a_route_its_subnet_covers(netns: Callable[[], str], run: Run) -> None:
    host, box = netns(), netns()
    with entered(host):
        veth.plug(f"/run/netns/{box}", "vtest1", "eth0", 1500, "10.9.0.5/16", ("10.9.0.0/24",))
    routes = [r["dst"] for r in json.loads(run("ip", "-j", "route", netns=box))]
    assert routes == ["10.9.0.0/16"]


def test_plug_refuses_a_taken_name_and_leaves_nothing(netns: Callable[[], str], run: Run) -> None:
    host, box = netns(), netns()
    run("ip", "link", "add", "eth0", "type", "veth", "peer", "other0", netns=box)
    with entered(host), pytest.raises(AlreadyExistsError):
        veth.plug(box, "vtest2", "eth0", 1500, "10.9.0.5/24")
    assert "vtest2" not in _links(run, host)


def test_plug_rolls_back_when_the_container_side_fails(
    netns: Callable[[], str], run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, box = netns(), netns()
    # The kernel refuses the second stage: an interface that is not there.
    set_up = links.set_up
    monkeypatch.setattr(links, "set_up", lambda _name: set_up("nosuchlink"))
    with entered(host), pytest.raises(NotFoundError):
        veth.plug(box, "vtest3", "eth0", 1500, "10.9.0.5/24")
    assert "vtest3" not in _links(run, host)
    assert "eth0" not in _links(run, box)


def test_plug_into_a_missing_namespace(netns: Callable[[], str]) -> None:
    with entered(netns()), pytest.raises(NotFoundError):
        veth.plug("odpt-nosuchns", "vtest4", "eth0", 1500, "10.9.0.5/24")


def test_unplug_takes_both_ends_once(netns: Callable[[], str], run: Run) -> None:
    host, box = netns(), netns()
    with entered(host):
        veth.plug(box, "vtest5", "eth0", 1500, "10.9.0.5/24")
        assert veth.exists("vtest5")
        assert veth.unplug("vtest5")
        assert not veth.exists("vtest5")
        assert not veth.unplug("vtest5")
    assert "eth0" not in _links(run, box)


def test_set_address_is_idempotent(netns: Callable[[], str], run: Run) -> None:
    host = netns()
    run("ip", "link", "add", "dp0", "type", "veth", "peer", "dp1", netns=host)
    with entered(host):
        veth.set_address("dp0", "10.9.1.1/24", 1376)
        veth.set_address("dp0", "10.9.1.1/24", 1376)
        with pytest.raises(OdpError):
            veth.set_address("nosuch0", "10.9.1.1/24", 1376)
    link = _links(run, host)["dp0"]
    assert link["mtu"] == 1376
    assert "UP" in link["flags"]
    assert [a["local"] for a in link["addr_info"] if a["family"] == "inet"] == ["10.9.1.1"]

"""Vports: netdev, internal and tunnel ports, numbering, events and errors.

These need only ``dpif``, ``dp_ns`` and ``veth`` (see conftest.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from odpctl.errors import AlreadyExistsError, KernelRefusedError, NotFoundError
from odpctl.odp.dpif import Dpif
from odpctl.odp.uapi import VportType
from odpctl.odp.vport import Vport


def _link_exists(ns: str, name: str) -> bool:
    return (
        subprocess.run(["ip", "-n", ns, "link", "show", name], capture_output=True).returncode == 0
    )


def test_netdev_port(
    dpif: Dpif, dp_ns: str, veth: Callable[[str], tuple[str, str]], netns: Callable[[], str]
) -> None:
    dp = dpif.create_datapath("dpv")
    outer, _ = veth(netns())
    port = dpif.add_vport(dp, Vport(outer))
    assert (port.port_no, port.name, port.type) == (1, outer, VportType.NETDEV)
    assert port.ifindex is not None and port.ifindex > 0
    assert dpif.get_vport(dp, outer).port_no == 1
    assert dpif.get_vport(dp, 1).name == outer
    assert [p.port_no for p in dpif.list_vports(dp)] == [0, 1]
    dpif.delete_vport(dp, outer)
    with pytest.raises(NotFoundError):
        dpif.get_vport(dp, outer)
    # the device itself stays: it was never the datapath's
    assert _link_exists(dp_ns, outer)


def test_internal_port_is_a_device_that_lives_with_the_port(dpif: Dpif, dp_ns: str) -> None:
    dp = dpif.create_datapath("dpi")
    assert _link_exists(dp_ns, "dpi")  # the local port
    port = dpif.add_vport(dp, Vport("intp0", VportType.INTERNAL))
    assert port.type == VportType.INTERNAL
    assert _link_exists(dp_ns, "intp0")
    dpif.delete_vport(dp, "intp0")
    assert not _link_exists(dp_ns, "intp0")
    dpif.add_vport(dp, Vport("intp1", VportType.INTERNAL))
    dpif.delete_datapath(dp)
    assert not _link_exists(dp_ns, "intp1")
    assert not _link_exists(dp_ns, "dpi")


def test_port_numbers(
    dpif: Dpif, veth: Callable[[str], tuple[str, str]], netns: Callable[[], str]
) -> None:
    dp = dpif.create_datapath("dpn")
    host = netns()
    a, _ = veth(host)
    b, _ = veth(host)
    c, _ = veth(host)
    assert dpif.add_vport(dp, Vport(a, port_no=7)).port_no == 7
    assert dpif.add_vport(dp, Vport(b)).port_no == 1
    with pytest.raises(AlreadyExistsError):  # EBUSY: number in use
        dpif.add_vport(dp, Vport(c, port_no=7))
    with pytest.raises(KernelRefusedError) as info:
        dpif.add_vport(dp, Vport(c, port_no=70000))
    assert info.value.errno == 27  # EFBIG
    dpif.delete_vport(dp, 1)
    assert dpif.add_vport(dp, Vport(c)).port_no == 1  # the lowest free number again


def test_port_errors(
    dpif: Dpif, veth: Callable[[str], tuple[str, str]], netns: Callable[[], str]
) -> None:
    dp = dpif.create_datapath("dpe")
    with pytest.raises(NotFoundError):  # ENODEV: no such device
        dpif.add_vport(dp, Vport("nosuchdev"))
    outer, _ = veth(netns())
    dpif.add_vport(dp, Vport(outer))
    with pytest.raises(AlreadyExistsError):
        dpif.add_vport(dp, Vport(outer))
    with pytest.raises(KernelRefusedError):  # EINVAL: the local port stays
        dpif.delete_vport(dp, 0)
    with pytest.raises(NotFoundError):
        dpif.delete_vport(dp, 42)
    with pytest.raises(NotFoundError):
        dpif.get_vport(dp, "nosuchport")


def test_upcall_pids(
    dpif: Dpif, veth: Callable[[str], tuple[str, str]], netns: Callable[[], str]
) -> None:
    dp = dpif.create_datapath("dpp")
    outer, _ = veth(netns())
    port = dpif.add_vport(dp, Vport(outer, upcall_pids=(5,)))
    assert port.upcall_pids == (5,)
    port = dpif.set_vport(dp, outer, upcall_pids=[7])
    assert port.upcall_pids == (7,)
    assert dpif.get_vport(dp, outer).upcall_pids == (7,)
    # At most one PID per CPU.
    too_many = list(range(100, 100 + (os.cpu_count() or 1) + 1))
    with pytest.raises(KernelRefusedError):
        dpif.set_vport(dp, outer, upcall_pids=too_many)
    with pytest.raises(KernelRefusedError):
        dpif.set_vport(dp, outer, type_=VportType.INTERNAL)


def test_vxlan_port(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpx")
    port = dpif.add_vport(dp, Vport("vxlan_sys_4789", VportType.VXLAN))
    assert (port.type, port.dst_port) == (VportType.VXLAN, 4789)
    other = dpif.add_vport(dp, Vport("vx2", VportType.VXLAN, dst_port=4790))
    assert other.dst_port == 4790
    listed = {p.name: p for p in dpif.list_vports(dp)}
    assert listed["vxlan_sys_4789"].options() == {"dst_port": "4789"}
    dpif.delete_vport(dp, "vx2")


def test_vport_events(
    dpif: Dpif, veth: Callable[[str], tuple[str, str]], netns: Callable[[], str]
) -> None:
    dp = dpif.create_datapath("dpw")
    outer, _ = veth(netns())
    with dpif.watch_vports() as events:
        dpif.add_vport(dp, Vport(outer))
        dpif.delete_vport(dp, outer)
        seen: list[tuple[str, str]] = []
        while len(seen) < 2:
            event = events.receive(timeout=5)
            assert event is not None, f"got only {seen}"
            seen.append((event.kind, event.vport.name))
    assert seen == [("new", outer), ("del", outer)]

"""Datapaths: create, find, list, change, delete, as the kernel datapath does them.

These need only ``dpif`` (a datapath in ``dp_ns``); see conftest.py.
"""

from __future__ import annotations

import os

import pytest

from odpctl.errors import AlreadyExistsError, KernelRefusedError, NotFoundError, OdpError
from odpctl.odp.dpif import Dpif
from odpctl.odp.uapi import DpFeature


def test_create_get_list_delete(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpa")
    assert dp.name == "dpa"
    assert dp.ifindex > 0
    assert (dp.hit, dp.missed, dp.lost, dp.flows, dp.masks) == (0, 0, 0, 0, 0)
    assert dp.features & DpFeature.UNALIGNED and dp.features & DpFeature.VPORT_PIDS

    by_name = dpif.get_datapath("dpa")
    assert (by_name.name, by_name.ifindex) == ("dpa", dp.ifindex)
    assert dpif.get_datapath(dp.ifindex).name == "dpa"
    assert "dpa" in [d.name for d in dpif.list_datapaths()]

    dpif.delete_datapath("dpa")
    with pytest.raises(NotFoundError):
        dpif.get_datapath("dpa")
    assert "dpa" not in [d.name for d in dpif.list_datapaths()]


def test_local_port_is_an_internal_port_named_after_the_datapath(dpif: Dpif) -> None:
    dp = dpif.create_datapath("dpl")
    (local,) = dpif.list_vports(dp)
    assert (local.port_no, local.name, local.type_name) == (0, "dpl", "internal")


def test_two_datapaths_are_independent(dpif: Dpif) -> None:
    a = dpif.create_datapath("dp1")
    b = dpif.create_datapath("dp2")
    assert a.ifindex != b.ifindex
    dpif.delete_datapath(a)
    assert dpif.get_datapath("dp2").ifindex == b.ifindex


def test_same_name_twice_is_refused(dpif: Dpif) -> None:
    dpif.create_datapath("dpd")
    with pytest.raises(AlreadyExistsError):
        dpif.create_datapath("dpd")


def test_unknown_datapath_is_not_found(dpif: Dpif) -> None:
    with pytest.raises(NotFoundError):
        dpif.get_datapath("nosuch")
    with pytest.raises(NotFoundError):
        dpif.delete_datapath("nosuch")
    with pytest.raises(NotFoundError):
        dpif.get_datapath(987654)


def test_name_longer_than_an_interface_name_is_refused(dpif: Dpif) -> None:
    with pytest.raises(OdpError) as info:
        dpif.create_datapath("x" * 16)
    assert info.value.errno == 22  # EINVAL


def test_set_features_and_masks_cache(dpif: Dpif) -> None:
    dpif.create_datapath("dpf")
    dp = dpif.set_datapath("dpf", features=DpFeature.UNALIGNED, masks_cache_size=128)
    assert dp.features == DpFeature.UNALIGNED
    assert dp.masks_cache_size == 128
    with pytest.raises(KernelRefusedError):
        dpif.set_datapath("dpf", features=DpFeature.UNALIGNED, masks_cache_size=100)


def test_per_cpu_upcall_pids(dpif: Dpif) -> None:
    # One PID per CPU is kept; the rest is dropped.
    pids = list(range(11, 11 + (os.cpu_count() or 1) + 2))
    dp = dpif.create_datapath("dpc", per_cpu_pids=pids)
    assert dp.features & DpFeature.DISPATCH_UPCALL_PER_CPU
    assert dp.per_cpu_pids == tuple(pids[: os.cpu_count()])


def test_unknown_feature_bits_are_not_supported(dpif: Dpif) -> None:
    dpif.create_datapath("dpu")
    with pytest.raises(OdpError) as info:
        dpif.set_datapath("dpu", features=DpFeature(1 << 20))
    assert info.value.errno == 95  # EOPNOTSUPP

"""Choosing a datapath endpoint, on a machine without the openvswitch module."""

from __future__ import annotations

from pathlib import Path

import pytest

from odpctl.errors import DatapathUnavailableError, UsageError
from odpctl.odp.dpif import Dpif
from odpctl.odp.endpoint import Endpoint, resolve_endpoint

needs_no_module = pytest.mark.skipif(
    Path("/sys/module/openvswitch").exists(),
    reason="this machine has the openvswitch module; these tests are about its absence",
)


@needs_no_module
def test_kernel_without_module_says_what_to_do() -> None:
    with pytest.raises(DatapathUnavailableError) as info:
        Dpif.open("kernel")
    assert "ovs_datapath" in str(info.value)
    assert "modprobe openvswitch" in str(info.value)
    assert "odpctl dp serve" in str(info.value)


@needs_no_module
def test_auto_without_module_or_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("odpctl.netlink.rundir.RUNTIME_ROOT", tmp_path)
    with pytest.raises(DatapathUnavailableError, match="no datapath available"):
        resolve_endpoint("auto")


def test_unknown_datapath_spec_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown datapath 'bogus'"):
        resolve_endpoint("bogus")


def test_explicit_specs() -> None:
    assert resolve_endpoint("kernel") == Endpoint("kernel")
    assert resolve_endpoint("unix:/x/y.sock") == Endpoint("unix", "/x/y.sock")
    assert resolve_endpoint("userspace").path is not None


def test_environment_variable_names_the_datapath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODPCTL_DATAPATH", "unix:/from/env.sock")
    assert resolve_endpoint(None) == Endpoint("unix", "/from/env.sock")


def test_missing_unix_socket(tmp_path: Path) -> None:
    with pytest.raises(DatapathUnavailableError, match="odpctl dp serve"):
        Dpif.open(f"unix:{tmp_path}/none.sock")

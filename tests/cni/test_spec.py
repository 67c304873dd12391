"""The CNI spec's edge cases, with the plugin run as a runtime runs it (no router here:
those that reach the router find none, and say try again later)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

Outcome = tuple[int, Any, str]
Cni = Callable[..., Outcome]

NOWHERE = "/nonexistent/odpctl-router.sock"


def config(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "overlay",
        "type": "odpctl-cni",
        "control": NOWHERE,
        **extra,
    }


def env(netns: str, ifname: str = "eth0") -> dict[str, str]:
    return {"CNI_CONTAINERID": f"c{secrets.token_hex(4)}", "CNI_NETNS": netns, "CNI_IFNAME": ifname}


def assert_error(outcome: Outcome, code: int, version: str = "1.0.0") -> dict[str, Any]:
    status, out, err = outcome
    assert status != 0
    assert isinstance(out, dict) and out["code"] == code, out
    assert out["cniVersion"] == version and out["msg"]
    assert "Traceback" not in err and err.startswith("odpctl-cni: ") and err.count("\n") == 1
    return out


def test_version_lists_the_supported_versions(cni: Cni) -> None:
    status, out, _ = cni("VERSION", {"cniVersion": "0.4.0"})
    assert status == 0
    assert out["cniVersion"] == "0.4.0"
    assert {"0.3.1", "0.4.0", "1.0.0"} <= set(out["supportedVersions"])


@pytest.mark.parametrize("missing", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])
def test_add_without_a_required_variable_is_code_4(cni: Cni, missing: str) -> None:
    environ = {**env("/proc/self/ns/net"), "CNI_PATH": "/usr/lib/cni"}
    environ[missing] = ""
    out = assert_error(cni("ADD", config(), **environ), 4)
    assert missing in out["msg"]


def test_no_command_is_code_4_without_reading_stdin(cni: Cni) -> None:
    assert_error(cni(None, b""), 4)
    assert_error(cni("FROB", config()), 4)


def test_del_needs_no_namespace(cni: Cni) -> None:
    # Only the router is missing: DEL got past its environment.
    environ = env("")
    assert_error(cni("DEL", config(), **environ), 11)


@pytest.mark.parametrize("stdin", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_bad_json_is_code_6(cni: Cni, stdin: bytes) -> None:
    assert_error(cni("ADD", stdin, **env("/proc/self/ns/net")), 6)


@pytest.mark.parametrize("version", ["0.4567.0", "2.0.0", "0.2.0", "banana"])
def test_unknown_cni_version_is_code_1(cni: Cni, version: str) -> None:
    assert_error(cni("ADD", config(version), **env("/proc/self/ns/net")), 1)


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"type": None},
        {"mtu": "big"},
        {"mtu": 20},
        {"ipam": {"subnet": "x"}},
        {"ipam": []},
        {"control": 5},
        {"cniVersion": 1},
    ],
)
def test_invalid_config_is_code_7(cni: Cni, change: dict[str, Any]) -> None:
    out = assert_error(cni("ADD", {**config(), **change}, **env("/proc/self/ns/net")), 7)
    assert any(key in out["msg"] for key in change)  # it names what is wrong


def test_router_down_is_code_11(cni: Cni, netns: Callable[[], str]) -> None:
    ns = netns()
    for command in ("ADD", "DEL", "CHECK"):
        extra: dict[str, Any] = (
            {"prevResult": {"interfaces": [], "ips": []}} if command == "CHECK" else {}
        )
        out = assert_error(cni(command, config(**extra), **env(f"/run/netns/{ns}")), 11)
        assert NOWHERE in out["msg"] and "control" in out["details"]


def test_status_router_down_is_plugin_not_available(cni: Cni) -> None:
    assert_error(cni("STATUS", config("1.1.0")), 50, "1.1.0")
    assert_error(cni("STATUS", config("1.0.0")), 1)


def test_add_of_an_existing_interface_fails(cni: Cni, netns: Callable[[], str], run: Any) -> None:
    ns = netns()
    run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", netns=ns)
    out = assert_error(cni("ADD", config(), **env(f"/run/netns/{ns}")), 101)
    assert "eth0 already exists" in out["msg"]
    # Nothing was done: the interface is the one that was there.
    assert "veth" in run("ip", "-d", "link", "show", "eth0", netns=ns)


def test_add_into_a_missing_namespace_is_code_3(cni: Cni) -> None:
    assert_error(cni("ADD", config(), **env(f"/run/netns/odpt-gone-{secrets.token_hex(4)}")), 3)


def test_bad_interface_name_or_args_are_code_4(cni: Cni) -> None:
    assert_error(cni("ADD", config(), **env("/proc/self/ns/net", "a" * 16)), 4)
    assert_error(cni("ADD", config(), **env("/proc/self/ns/net", "../x")), 4)
    environ = {**env("/proc/self/ns/net"), "CNI_ARGS": "IgnoreUnknown=1;junk"}
    assert_error(cni("ADD", config(), **environ), 4)


def test_check_needs_a_prev_result_and_040(cni: Cni) -> None:
    assert_error(cni("CHECK", config(), **env("/proc/self/ns/net")), 7)
    prev: dict[str, Any] = {"prevResult": {"interfaces": [], "ips": []}}
    assert_error(cni("CHECK", config("0.3.1", **prev), **env("/proc/self/ns/net")), 1, "0.3.1")


def test_delegated_ipam_plugin_missing_is_code_7(cni: Cni, netns: Callable[[], str]) -> None:
    ns = netns()
    out = assert_error(
        cni("ADD", config(ipam={"type": "no-such-ipam"}), **env(f"/run/netns/{ns}")), 7
    )
    assert "no-such-ipam" in out["msg"]


def test_a_container_id_of_other_characters_is_code_4(cni: Cni) -> None:
    environ = {**env("/proc/self/ns/net"), "CNI_CONTAINERID": "abc def"}
    assert_error(cni("ADD", config(), **environ), 4)
    environ["CNI_CONTAINERID"] = "c/../x"
    assert_error(cni("DEL", config(), **environ), 4)

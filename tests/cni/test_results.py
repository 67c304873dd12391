"""Results in each cniVersion, prevResult read back, and hostile stdin (in process)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odpctl.cni import result
from odpctl.cni.main import run
from odpctl.cni.spec import CniError

REPLY = {
    "ip": "10.32.0.5/12",
    "mac": "0a:58:0a:20:00:05",
    "ifname": "eth0",
    "port_no": 7,
    "gateway": "10.32.0.1",
    "netns": "/run/netns/x",
    "id": "c1:eth0",
}


def test_router_ipam_result_in_each_version() -> None:
    built = result.from_attach(REPLY, "/run/netns/x", None, None)
    new = result.in_version(built, "1.0.0")
    assert new == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "mac": "0a:58:0a:20:00:05", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.32.0.5/12", "gateway": "10.32.0.1", "interface": 0}],
        "routes": [{"dst": "10.32.0.0/12"}],
    }
    for old in ("0.4.0", "0.3.1"):
        written = result.in_version(built, old)
        assert written["cniVersion"] == old
        assert written["ips"] == [{"version": "4", **new["ips"][0]}]
    # and back: a 0.x prevResult becomes 1.0.0 again
    assert result.in_version(result.in_version(built, "0.3.1"), "1.0.0") == new


def test_the_host_end_comes_first_when_the_router_names_it() -> None:
    built = result.from_attach(
        {**REPLY, "host_iface": "vodp0123456789"}, "/run/netns/x", None, None
    )
    assert built["interfaces"] == [
        {"name": "vodp0123456789"},
        {"name": "eth0", "mac": "0a:58:0a:20:00:05", "sandbox": "/run/netns/x"},
    ]
    assert built["ips"][0]["interface"] == 1
    mac, addresses, _ = result.expected(built, "/run/netns/x", "eth0")
    assert mac == REPLY["mac"] and {str(a) for a in addresses} == {"10.32.0.5/12"}


def test_delegated_result_keeps_the_ipam_addresses_routes_and_dns() -> None:
    ipam = {
        "ips": [{"address": "10.22.0.9/16", "gateway": "10.22.0.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}],
        "dns": {"nameservers": ["1.1.1.1"]},
    }
    built = result.from_attach({**REPLY, "ip": "10.22.0.9/16"}, "/x", ipam, None)
    assert built["ips"] == [{"address": "10.22.0.9/16", "gateway": "10.22.0.1", "interface": 0}]
    assert built["routes"] == ipam["routes"] and built["dns"] == ipam["dns"]


def test_expected_reads_a_prev_result_of_any_version() -> None:
    built = result.from_attach(REPLY, "/run/netns/x", None, {"nameservers": ["10.32.0.1"]})
    for version in ("1.0.0", "0.4.0"):
        mac, addresses, routes = result.expected(
            result.in_version(built, version), "/run/netns/x", "eth0"
        )
        assert mac == REPLY["mac"]
        assert {str(a) for a in addresses} == {"10.32.0.5/12"}
        assert {(str(d), g) for d, g in routes} == {("10.32.0.0/12", None)}
    with pytest.raises(CniError) as info:
        result.expected(built, "/run/netns/other", "eth0")
    assert info.value.code == 7
    with pytest.raises(CniError):
        result.expected(
            {"interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"address": "nonsense"}]},
            "/x",
            "eth0",
        )


def _run(env: dict[str, str], stdin: bytes) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(env, io.BytesIO(stdin), out, err)
    return status, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def _never_a_real_router(value: Any) -> bytes:
    # A config the plugin accepts goes to its router: this machine's is none of ours.
    if isinstance(value, dict):
        value["control"] = "/nonexistent/odpctl-router.sock"
    return json.dumps(value).encode()


@settings(max_examples=150, deadline=None)
@given(
    stdin=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "cniVersion",
                            "name",
                            "type",
                            "ipam",
                            "mtu",
                            "prevResult",
                            "dns",
                            "runtimeConfig",
                            "args",
                        ]
                    ),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=12,
        ).map(_never_a_real_router),
    )
)
def test_hostile_stdin_gets_a_spec_error_never_a_traceback(stdin: bytes) -> None:
    # CHECK stops before the router for any input it refuses; what it accepts reaches
    # a router that is not there (11). Either way: the spec's error, on stdout.
    env = {
        "CNI_COMMAND": "CHECK",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/proc/self/ns/net",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    }
    status, out, err = _run(env, stdin)
    assert status == 1
    assert out["code"] in (1, 2, 6, 7, 11), out
    assert "Traceback" not in err and "internal error" not in out["msg"]


def test_a_result_follows_the_plugins_before_it_in_a_chain() -> None:
    ours = result.from_attach(REPLY, "/run/netns/x", None, None)
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "br0", "mac": "aa:aa:aa:aa:aa:aa"},
            {"name": "eth1", "mac": "bb:bb:bb:bb:bb:bb", "sandbox": "/x"},
        ],
        "ips": [{"address": "192.168.1.5/24", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.1.1"}],
        "dns": {"nameservers": ["192.168.1.1"]},
    }
    merged = result.after(prev, ours)
    assert [i["name"] for i in merged["interfaces"]] == ["br0", "eth1", "eth0"]
    assert merged["ips"][1] == {**ours["ips"][0], "interface": 2}
    assert merged["routes"] == [*prev["routes"], *ours["routes"]]
    assert merged["dns"] == prev["dns"]
    assert result.after(None, ours) == result.after({}, ours) == ours

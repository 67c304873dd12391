"""libcni (the Go library containerd and CRI-O run plugins with) against odpctl-cni:
what needs no router. The overlay itself is in test_overlay.py."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

Outcome = tuple[int, Any, str]


def conflist(version: str = "1.0.0", **plugin: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": f"odpt-{secrets.token_hex(3)}",
        "plugins": [
            {"type": "odpctl-cni", "control": "/nonexistent/router.sock", **plugin},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "0"}},
        ],
    }


def test_libcni_validates_the_list(libcni: Callable[..., Outcome]) -> None:
    # VERSION of each plugin, the list's version among those each supports.
    for version in ("1.0.0", "0.4.0", "0.3.1"):
        status, out, _ = libcni("validate", conflist(version), netns="", container="c")
        assert status == 0, out


def test_libcni_add_with_the_router_down_is_try_again_later(
    libcni: Callable[..., Outcome], netns: Callable[[], str], run: Any
) -> None:
    ns = netns()
    status, out, _ = libcni("add", conflist(), netns=f"/run/netns/{ns}", container="c1")
    assert status == 1 and out["code"] == 11, out
    status, out, _ = libcni("del", conflist(), netns=f"/run/netns/{ns}", container="c1")
    assert status == 1 and out["code"] == 11, out
    assert "eth0" not in run("ip", "-o", "link", netns=ns)  # nothing half-done


def test_libcni_refuses_an_unknown_version_before_our_plugin(
    libcni: Callable[..., Outcome],
) -> None:
    status, out, _ = libcni("validate", conflist("0.4567.0"), netns="", container="c")
    assert status == 1 and "0.4567.0" in out["msg"]

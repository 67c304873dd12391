"""No hijack without a password: a healthy neighbour keeps its name.

Bare mesh routers in network namespaces (see conftest): host 3 claims host 2's
peer name while host 2 is connected to host 1 and alive.
"""

from __future__ import annotations

from collections.abc import Callable

from .conftest import Lab, Node, host_ip, host_name, wait


def _conn(node: Node, name: str) -> dict[str, object] | None:
    for conn in node.ask("peers")["connections"]:
        if conn["peer"] == name and conn["state"] == "established":
            return dict(conn)
    return None


def _uid(node: Node, name: str) -> int | None:
    return {p["name"]: p["uid"] for p in node.ask("peers")["peers"]}.get(name)


def test_a_newcomer_claiming_a_live_peers_name_is_refused(mesh_lab: Callable[[int], Lab]) -> None:
    lab = mesh_lab(3)
    h1, h2 = lab.start(1), lab.start(2, peers=(1,))
    wait(lambda: _conn(h1, host_name(2)) and _conn(h2, host_name(1)), 20, "hosts 1 and 2")
    uid = _uid(h1, host_name(2))

    impostor = lab.start(
        3, "--name", host_name(2), "--nickname", "impostor", "--no-discovery", peers=(1,)
    )
    refused = f"is connected from {host_ip(2)} and its heartbeats pass; refused from {host_ip(3)}"
    wait(lambda: refused in h1.log_text(), 15, "the impostor refused, in host 1's log")
    assert any(refused in line and "WARNING" in line for line in h1.log_text().splitlines())
    assert any(
        c["state"] == "refused" and refused in str(c["reason"])
        for c in h1.ask("peers")["connections"]
    )
    # Host 2 kept its connection, its entry and its traffic; the impostor got nothing.
    conn = _conn(h1, host_name(2))
    assert conn is not None and str(conn["address"]).startswith(host_ip(2))
    assert _uid(h1, host_name(2)) == uid
    assert not [c for c in impostor.ask("peers")["connections"] if c["state"] == "established"]
    lab.kill(3)

    # Host 2 crashes and comes back at once, from its own address: welcome, new UID.
    lab.kill(2)
    h2 = lab.start(2, peers=(1,))
    wait(
        lambda: _uid(h1, host_name(2)) not in (None, uid) and _conn(h1, host_name(2)),
        20,
        "host 2 back with a new UID",
    )

"""Routers in network namespaces, as on separate hosts: forming, partitions, crashes.

Each host runs ``tests/mesh/bare_node.py`` (a bare mesh router) and is
asked through its control socket, as ``odpctl peer`` asks it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from odpctl.commands import peer as peer_cmd
from odpctl.commands.session import Session

from .conftest import Lab, Node, host_name, wait

Topology = set[tuple[str, int, int]]


def view(node: Node) -> Topology:
    return {(p["name"], p["uid"], p["version"]) for p in node.ask("peers")["peers"]}


def established(node: Node) -> set[str]:
    return {c["peer"] for c in node.ask("peers")["connections"] if c["state"] == "established"}


def full_mesh(nodes: list[Node]) -> bool:
    names = {host_name(n.index) for n in nodes}
    if any(established(n) != names - {host_name(n.index)} for n in nodes):
        return False
    first = view(nodes[0])
    return len(first) == len(nodes) and all(view(n) == first for n in nodes[1:])


def logged(node: Node, text: str) -> bool:
    return text in node.log_text()


def refused(node: Node) -> list[dict[str, Any]]:
    """The node's connections that have a reason (a refusal) in its status."""
    return [c for c in node.ask("peers")["connections"] if c["reason"]]


def test_mesh_forms_splits_and_heals(mesh_lab: Callable[[int], Lab]) -> None:
    lab = mesh_lab(4)
    # Each host is told of the previous one only; discovery does the rest.
    nodes = [lab.start(1)] + [lab.start(i, peers=(i - 1,)) for i in range(2, 5)]
    wait(lambda: full_mesh(nodes), 20, "a full mesh of 4")
    h1, h4 = nodes[0], nodes[3]
    assert {p["short_id"] for p in h1.ask("peers")["peers"]} == {
        p["short_id"] for p in h4.ask("peers")["peers"]
    }

    # Cut host 4 off the underlay: the others forget it, it finds itself alone.
    lab.link(4, "down")
    wait(lambda: all(len(view(n)) == 3 for n in nodes[:3]), 15, "host 4 forgotten")
    wait(lambda: len(view(h4)) == 1, 15, "host 4 alone")
    reasons = [c["reason"] or "" for c in h4.ask("peers")["connections"]]
    assert any("heartbeat timeout" in r or "connect" in r for r in reasons), reasons
    assert full_mesh(nodes[:3])

    # Heal: it comes back, and everyone agrees again.
    lab.link(4, "up")
    wait(lambda: full_mesh(nodes), 20, "the mesh healed")


def test_router_killed_and_restarted(mesh_lab: Callable[[int], Lab]) -> None:
    lab = mesh_lab(3)
    nodes = [lab.start(1), lab.start(2, peers=(1,)), lab.start(3, peers=(2,))]
    wait(lambda: full_mesh(nodes), 20, "a full mesh of 3")
    old_uid = {p["name"]: p["uid"] for p in nodes[0].ask("peers")["peers"]}[host_name(2)]

    lab.kill(2)
    wait(
        lambda: all(host_name(2) not in established(n) for n in (nodes[0], nodes[2])),
        10,
        "host 2's connections gone",
    )
    wait(lambda: all(len(view(n)) == 2 for n in (nodes[0], nodes[2])), 10, "host 2 forgotten")

    nodes[1] = lab.start(2, peers=(1,))  # the socket it left behind is taken over
    wait(lambda: full_mesh(nodes), 20, "host 2 back")
    uids = {p["name"]: p["uid"] for p in nodes[0].ask("peers")["peers"]}
    assert uids[host_name(2)] != old_uid
    assert "connection added" in nodes[2].log_text()


def test_wrong_password_refused_with_the_reason_at_both_ends(
    mesh_lab: Callable[[int], Lab], tmp_path: Path
) -> None:
    lab = mesh_lab(2)
    (tmp_path / "pw1").write_text("correct horse\n")
    (tmp_path / "pw2").write_text("battery staple\n")
    h1 = lab.start(1, "--password-file", str(tmp_path / "pw1"))
    h2 = lab.start(2, "--password-file", str(tmp_path / "pw2"), peers=(1,))
    for node in (h1, h2):
        wait(
            partial(logged, node, "password mismatch"), 10, f"host {node.index} logging the refusal"
        )
        conns = wait(partial(refused, node), 10, "the reason in the status")
        assert "password mismatch: the peers' passwords differ" in conns[0]["reason"]
        assert "WARNING" in node.log_text()
    assert not established(h1) and not established(h2)
    # And with the same password, they connect, encrypted.
    lab.kill(2)
    (tmp_path / "pw2").write_text("correct horse\n")
    h2 = lab.start(2, "--password-file", str(tmp_path / "pw2"), peers=(1,))
    wait(lambda: established(h1) == {host_name(2)}, 15, "encrypted connection")
    (conn,) = [c for c in h1.ask("peers")["connections"] if c["state"] == "established"]
    assert conn["encrypted"] is True


def test_incompatible_versions_refused_with_the_reason(mesh_lab: Callable[[int], Lab]) -> None:
    lab = mesh_lab(2)
    h1 = lab.start(1)
    h2 = lab.start(2, "--protocol-min", "2", "--protocol-max", "3", peers=(1,))
    for node in (h1, h2):
        wait(
            partial(logged, node, "no common protocol version"),
            10,
            f"host {node.index} logging the refusal",
        )
    (at_h2,) = [c for c in h2.ask("peers")["connections"] if c["reason"]]
    assert "this peer speaks 2..3, the other 1..1" in at_h2["reason"]


def test_peer_commands_against_the_namespace_router(
    mesh_lab: Callable[[int], Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = mesh_lab(2)
    runtime = tmp_path / "run"
    # Host 1's router without --control: its socket goes where `odpctl --netns` looks.
    h1 = lab.start(1, control=False, env={"ODPCTL_RUNTIME_DIR": str(runtime)})
    h2 = lab.start(2)
    monkeypatch.setattr("odpctl.netlink.rundir.RUNTIME_ROOT", runtime)
    session = Session(netns=h1.ns)

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(
            peer_cmd.app, list(args), obj=session, env={"NO_COLOR": "1", "COLUMNS": "120"}
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    wait(lambda: "1 peer," in cli("list"), 10, "host 1's router answering")
    assert "connecting to 10.77.0.2:6783" in cli("connect", "10.77.0.2")
    wait(lambda: "2 peers, 1 established" in cli("list"), 10, "host 2 in host 1's list")
    out = cli("list")
    assert host_name(2) in out and "host2" in out and "established" in out
    assert "forgot 10.77.0.2:6783" in cli("forget", "10.77.0.2:6783")
    assert established(h2) == {host_name(1)}  # a forgotten peer's connection stays up

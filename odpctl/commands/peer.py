"""``odpctl peer``: the mesh peers of the router running in this network namespace.

These commands talk to the router over its control socket (root only); they
work the same against the bare mesh node of the tests
(``python -m odpctl.mesh.node``).  The global ``--netns`` picks the namespace
whose router is asked; ``--control PATH`` names a socket directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.present import jsonout, tables

from .options import JsonFlag
from .session import session

app = typer.Typer(
    help="""List the mesh's peers and connections; connect to and forget peers.

    The router of each host connects to the routers it is told of (and to those
    it learns of from them), agrees with them on the topology of the mesh, and
    routes through it. These commands ask the router running in this network
    namespace (see --netns), over its control socket, which only root may use.""",
    no_args_is_help=True,
)

# The documented, stable JSON shape of `odpctl peer list --json` (odpctl(1)):
# keys are only ever added, never renamed or removed.
PEER_KEYS: dict[str, str] = {
    "name": "peer name, 6 hex bytes (02:4a:...)",
    "nickname": "its nickname (host name by default), or null if not known yet",
    "short_id": "12-bit short ID, or null if not known yet",
    "uid": "the peer's UID for this run of its router, or null if not known yet",
    "version": "version of its topology entry",
    "self": "true for the router asked",
    "reachable": "true if a route over established connections reaches it",
    "next_hop": "name of the neighbour that traffic to it goes through, or null",
    "connections": 'its connections as it reports them: objects "peer", "address", '
    '"direction", "established"',
}

CONNECTION_KEYS: dict[str, str] = {
    "address": "the remote router's address (HOST:PORT)",
    "peer": "the remote peer's name, or null if not known (yet)",
    "nickname": "the remote peer's nickname, or null",
    "direction": '"outbound" (we connect) or "inbound"',
    "state": "connecting, handshake, connected (the overlay is not up yet), established, "
    "waiting or failed (retrying), stopped (not retried), refused (inbound, recent)",
    "overlay": "the overlay carrying its traffic (fastdp, sleeve), or null",
    "reason": "why it is not established (or why its overlay is not healthy), or null",
    "encrypted": "true if the connection is encrypted, null if not known",
    "protocol": "negotiated protocol version, or null",
    "retry_in": "seconds until the next attempt, or null",
    "since": "seconds in this state (established: since when), or null",
    "encryption": 'how container traffic crosses it: "none", "esp" (kernel IPsec on the fast '
    'path) or "sealed" (the userspace fallback, each datagram sealed); null for a bare mesh',
    "encryption_reason": "why this encryption (e.g. why not esp), or null",
    "spis": 'the ESP security parameter indexes, {"in": N, "out": N}, when esp; else null',
    "auth_failures": "datagrams on it that failed authentication (dropped), or null",
    "replays": "datagrams on it seen before (dropped), or null",
}

LIST_KEYS: dict[str, str] = {
    "self": "name of the router asked",
    "peers": "every peer of the mesh it knows: PEER objects",
    "connections": "its connections and connection attempts: CONNECTION objects",
}

ControlOption = Annotated[
    Path | None,
    typer.Option(
        "--control",
        metavar="PATH",
        show_default=False,
        help="The router's control socket (default: the one of this network namespace).",
    ),
]

Addresses = Annotated[
    list[str],
    typer.Argument(
        metavar="ADDR...",
        show_default=False,
        help="Peer addresses: HOST or HOST:PORT (port 6783 if left out); [IPv6]:PORT.",
    ),
]


def _client(ctx: typer.Context, control: Path | None) -> ControlClient:
    return ControlClient(control or default_socket_path(session(ctx).netns))


def _pick(obj: Any, keys: Mapping[str, str]) -> dict[str, Any]:
    """Exactly the documented keys, in their order (null where the router sent none)."""
    source = obj if isinstance(obj, Mapping) else {}
    return {key: source.get(key) for key in keys}


def peer_list_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "self": doc.get("self"),
        "peers": [_pick(p, PEER_KEYS) for p in doc.get("peers") or []],
        "connections": [_pick(c, CONNECTION_KEYS) for c in doc.get("connections") or []],
    }


@app.command("list")
def list_peers(ctx: typer.Context, control: ControlOption = None, json: JsonFlag = False) -> None:
    """List the peers of the mesh and this router's connections.

    Each peer with its name, nickname and short ID; each connection (and
    connection attempt) with its address, direction, state and overlay, and
    the reason when it is not established: a wrong password, an incompatible
    version, a refused or unreachable address, a heartbeat that stopped.
    JSON: {"self": NAME, "peers": [PEER, ...], "connections": [CONNECTION, ...]}.
    """
    doc = _client(ctx, control).request("peers")
    if not isinstance(doc, Mapping):
        doc = {}
    if json:
        jsonout.emit(peer_list_json(doc))
        return
    tables.make_console().print(render_peer_list(peer_list_json(doc)))


@app.command("connect")
def connect(
    ctx: typer.Context, addresses: Addresses, control: ControlOption = None, json: JsonFlag = False
) -> None:
    """Connect to peers, and keep reconnecting to them.

    The router connects in the background: `odpctl peer list` shows how it
    goes.  JSON: {"addresses": [ADDR, ...]} (as the router wrote them).
    """
    _change(ctx, control, "connect", addresses, json, "connecting to")


@app.command("forget")
def forget(
    ctx: typer.Context, addresses: Addresses, control: ControlOption = None, json: JsonFlag = False
) -> None:
    """Stop connecting to peers given with `connect` (or the router's --peer).

    A connection that is up stays up (the peers it leads to may be learnt of
    and connected to again through others); if it breaks, the router does not
    reconnect.  JSON: {"addresses": [ADDR, ...]} (those forgotten).
    """
    _change(ctx, control, "forget", addresses, json, "forgot")


class GraphFormat(StrEnum):
    terminal = "terminal"
    dot = "dot"
    svg = "svg"


@app.command("graph")
def graph(
    ctx: typer.Context,
    control: ControlOption = None,
    fmt: Annotated[
        GraphFormat,
        typer.Option(
            "--format",
            "-f",
            help="terminal: a tree for people; dot: Graphviz text; svg: a "
            "picture, drawn by Graphviz (dot).",
        ),
    ] = GraphFormat.terminal,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="S",
            min=0.1,
            help="How long to count the traffic of each connection.",
        ),
    ] = 1.0,
) -> None:
    """Draw the mesh: each peer with its nickname, name and short ID, and the
    containers behind it; each connection with its overlay (fastdp or
    fallback), the reason when it is degraded, its heartbeat round trip and its
    traffic rates on the fast path (this router's connections; the others as
    the peers gossip them).
    """
    # Imported here: the graph needs the datapath's flows (the codec), rich and Graphviz.
    from odpctl.odp.dpif import Dpif

    from . import graphview, meshgraph

    s = session(ctx)
    client = _client(ctx, control)
    status, peers = client.request("status"), client.request("peers")
    rates: dict[str, tuple[float, float]] = {}
    router = status.get("router")
    if router is not None:
        with Dpif.open(router["datapath"]["endpoint"], netns=s.netns) as dpif:
            rates = meshgraph.tunnel_rates(dpif, router["datapath"]["name"], interval)
    drawn = meshgraph.build(status, peers, rates)
    if fmt is GraphFormat.terminal:
        tables.make_console().print(graphview.terminal(drawn))
    elif fmt is GraphFormat.dot:
        print(graphview.dot(drawn), end="")
    else:
        print(graphview.svg(graphview.dot(drawn)), end="")


def _change(
    ctx: typer.Context,
    control: Path | None,
    cmd: str,
    addresses: list[str],
    json: bool,
    done_text: str,
) -> None:
    """Ask the router to ``cmd`` the addresses; say which it did (as it wrote them)."""
    result = _client(ctx, control).request(cmd, addresses=addresses)
    done: list[str] = []
    if isinstance(result, Mapping) and isinstance(result.get("addresses"), list):
        done = [str(a) for a in result["addresses"]]
    if json:
        jsonout.emit({"addresses": done})
        return
    for address in done:
        print(f"{done_text} {address}")


# --- for people ------------------------------------------------------------------

_STATE_STYLES = {
    "established": "green",
    "connected": "yellow",
    "handshake": "yellow",
    "connecting": "yellow",
    "waiting": "yellow",
    "failed": "red",
    "refused": "red",
    "stopped": "red",
}


def _table(*columns: str, right: Sequence[str] = ()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        # Names and addresses are copied and pasted: never wrapped.
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
    return table


def _dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _encryption(conn: Mapping[str, Any]) -> Text:
    """``sealed``, with the datagrams refused on the connection if any."""
    if conn["encryption"] is None:
        return Text("-")
    text = Text(str(conn["encryption"]), style="green" if conn["encryption"] != "none" else "")
    refused = [
        f"{n} {what}"
        for what, n in (("auth failures", conn["auth_failures"]), ("replays", conn["replays"]))
        if n
    ]
    if refused:
        text.append(f" ({', '.join(refused)})", style="red")
    return text


def render_peer_list(doc: Mapping[str, Any]) -> RenderableType:
    peers: list[dict[str, Any]] = doc["peers"]
    conns: list[dict[str, Any]] = doc["connections"]
    nicknames = {p["name"]: p["nickname"] for p in peers if p["nickname"]}
    parts: list[RenderableType] = []
    table = _table("Peer", "Nickname", "Short ID", "Connections", "Via", right=("Short ID",))
    for p in peers:
        reported = [c for c in p.get("connections") or [] if isinstance(c, Mapping)]
        up = sum(1 for c in reported if c.get("established"))
        if p["self"]:
            via = Text("self", style="bold")
        elif not p["reachable"]:
            via = Text("unreachable", style="red")
        elif p["next_hop"] == p["name"]:
            via = Text("direct")
        else:
            via = Text(_dash(nicknames.get(p["next_hop"]) or p["next_hop"]))
        table.add_row(
            Text(_dash(p["name"]), style="bold cyan" if p["self"] else "cyan"),
            _dash(p["nickname"]),
            _dash(p["short_id"]),
            f"{len(reported)} ({up} up)" if len(reported) != up else str(up),
            via,
        )
    parts.append(table)

    if conns:
        # Encryption only where there is some to show: a bare mesh, or one without a
        # password, keeps its table narrow.
        encrypted = any(c["encryption"] not in (None, "none") for c in conns)
        columns = ("Address", "Peer", "Direction", "State", "Overlay")
        table = _table(*columns, *(("Encryption",) if encrypted else ()))
        reasons = []
        for c in conns:
            who = _dash(c["peer"])
            if c["nickname"]:
                who += f" ({c['nickname']})"
            state = Text(_dash(c["state"]), style=_STATE_STYLES.get(str(c["state"]), ""))
            table.add_row(
                _dash(c["address"]),
                who,
                _dash(c["direction"]),
                state,
                _dash(c["overlay"]),
                *((_encryption(c),) if encrypted else ()),
            )
            if c["reason"]:
                # Reasons are sentences: below the table, where they have room.
                note = Text(f"{_dash(c['address'])}: ", style="bold")
                note.append(str(c["reason"]), style="red" if c["state"] != "connected" else "")
                if c["retry_in"] is not None:
                    note.append(f" (retry in {tables.ago(float(c['retry_in']))})", style="dim")
                reasons.append(note)
            if c["encryption_reason"] and c["encryption"] != "none":
                note = Text(f"{_dash(c['address'])}: ", style="bold")
                note.append(f"encryption {c['encryption']}: {c['encryption_reason']}")
                reasons.append(note)
        parts += [Text(""), table]
        if reasons:
            parts += [Text(""), *reasons]

    established = sum(1 for c in conns if c["state"] == "established")
    failing = sum(1 for c in conns if c["state"] in ("failed", "refused", "stopped"))
    line = f"{tables.plural(len(peers), 'peer')}, {established} established"
    if failing:
        line += f", {failing} failing"
    parts.append(tables.summary(line))
    return Group(*parts)

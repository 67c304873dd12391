"""``odpctl dns``: the names of the mesh's containers, through this namespace's router.

The records live in every router and are gossiped across the mesh; these
commands ask the router of this network namespace (see --netns) over its
control socket.  A name added here belongs to this router: only it can
remove it, and it goes when the router's peer leaves the mesh for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.present import jsonout

from .options import JsonFlag
from .session import session

app = typer.Typer(
    help="""Add, remove and look up the names of the mesh's containers.

    Every router holds the names of the whole mesh (gossiped between the
    routers) and answers DNS queries for them under its domain
    (odpctl.local. by default). `router attach --netns NS --name NAME`
    registers a container's name; these commands add, remove, resolve and
    list names through the router of this network namespace.""",
    no_args_is_help=True,
)

# The documented JSON shape of a record (`dns list --json`, `dns lookup --json`).
RECORD_KEYS: dict[str, str] = {
    "hostname": "the full name, with the final dot (web1.odpctl.local.)",
    "address": "its IPv4 address",
    "container": 'the container ID it belongs to ("manual" for `dns add`)',
    "origin": "the peer that registered it (6 hex bytes)",
    "origin_nickname": "that peer's nickname, or null if not known",
    "version": "its version (bumped by its origin on each change)",
    "tombstone": "when it was removed (seconds since the epoch), or null if live",
    "local": "true if this router registered it",
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
NameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="Host name: web1 (the domain is added) or web1.odpctl.local."
    ),
]


def _client(ctx: typer.Context, control: Path | None) -> ControlClient:
    return ControlClient(control or default_socket_path(session(ctx).netns))


def _record(obj: Any) -> dict[str, Any]:
    source = obj if isinstance(obj, Mapping) else {}
    return {key: source.get(key) for key in RECORD_KEYS}


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    address: Annotated[str, typer.Argument(metavar="ADDR", help="Its IPv4 address.")],
    control: ControlOption = None,
    json: JsonFlag = False,
) -> None:
    """Register NAME for ADDR on this router; the whole mesh resolves it in moments.

    Several addresses for one name are answered in a random order each time.
    JSON: RECORD.
    """
    record = _record(_client(ctx, control).request("dns_add", name=name, address=address))
    if json:
        jsonout.emit(record)
        return
    print(f"added {record['hostname']} {record['address']}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    address: Annotated[
        str | None,
        typer.Argument(metavar="[ADDR]", help="Only this address of the name.", show_default=False),
    ] = None,
    control: ControlOption = None,
    json: JsonFlag = False,
) -> None:
    """Remove NAME (or only its ADDR) registered on this router, from the whole mesh.

    JSON: {"removed": [RECORD, ...]} (the removed records, now tombstones).
    """
    args: dict[str, Any] = {"name": name}
    if address is not None:
        args["address"] = address
    result = _client(ctx, control).request("dns_remove", **args)
    records = [_record(r) for r in result] if isinstance(result, list) else []
    if json:
        jsonout.emit({"removed": records})
        return
    for record in records:
        print(f"removed {record['hostname']} {record['address']}")


@app.command("lookup")
def lookup(
    ctx: typer.Context, name: NameArg, control: ControlOption = None, json: JsonFlag = False
) -> None:
    """The addresses of NAME as the mesh knows it (exit code 3 if it has none).

    JSON: {"hostname": NAME, "addresses": [ADDR, ...], "records": [RECORD, ...]}.
    """
    result = _client(ctx, control).request("dns_lookup", name=name)
    source = result if isinstance(result, Mapping) else {}
    addresses = [str(a) for a in source.get("addresses") or []]
    doc = {
        "hostname": source.get("hostname"),
        "addresses": addresses,
        "records": [_record(r) for r in source.get("records") or []],
    }
    if json:
        jsonout.emit(doc)
        return
    for address in addresses:
        print(f"{address}\t{doc['hostname']}")


@app.command("list")
def list_records(ctx: typer.Context, control: ControlOption = None, json: JsonFlag = False) -> None:
    """Every record of the mesh, with its origin; removed ones as tombstones.

    JSON: {"domain": DOMAIN, "self": PEER, "server": ADDR or null, "records": [RECORD, ...]}.
    """
    result = _client(ctx, control).request("dns_list")
    source = result if isinstance(result, Mapping) else {}
    records = [_record(r) for r in source.get("records") or []]
    if json:
        jsonout.emit(
            {
                "domain": source.get("domain"),
                "self": source.get("self"),
                "server": source.get("server"),
                "records": records,
            }
        )
        return
    rows = [("NAME", "ADDRESS", "ORIGIN", "CONTAINER", "STATE")]
    for r in records:
        origin = r["origin_nickname"] or r["origin"]
        state = "removed" if r["tombstone"] else "live"
        rows.append(
            (
                r["hostname"],
                r["address"],
                f"{origin}{' (here)' if r['local'] else ''}",
                r["container"],
                state,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())

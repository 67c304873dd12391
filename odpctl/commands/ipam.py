"""``odpctl ipam``: the address management of the router in this namespace."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from odpctl.control.client import ControlClient, default_socket_path

from .session import session

app = typer.Typer(
    help="""Ask the router's IPAM how the address range is shared, and allocate by hand.

    Each router owns parts of the range (--ipalloc-range of `odpctl router start`)
    and hands out addresses from them; the routers agree on who owns what by
    gossip, with no store of their own. `odpctl router attach --netns` uses it.""",
    no_args_is_help=True,
)

ControlOption = Annotated[
    Path | None,
    typer.Option(
        "--control",
        metavar="PATH",
        help="The router's control socket (default: this namespace's).",
        show_default=False,
    ),
]


def _client(ctx: typer.Context, control: Path | None) -> ControlClient:
    return ControlClient(control or default_socket_path(session(ctx).netns), timeout=30)


@app.command("status")
def status(
    ctx: typer.Context,
    control: ControlOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """State (idle, awaiting consensus, ready, no space), range, and per peer: owned
    addresses, free, reachable."""
    result = _client(ctx, control).request("ipam_status")
    print(jsonlib.dumps(result, indent=2, sort_keys=True) if json else render_status(result))


def render_status(result: dict[str, Any]) -> str:
    lines = [
        f"state:      {result['message']}",
        f"range:      {result['range']} ({result['size']} addresses), "
        f"bootstrap {result['bootstrap']}",
        f"allocated:  {result['allocated']} here",
    ]
    if result["peers"]:
        lines.append(f"{'peer':<19} {'nickname':<16} {'owned':>9} {'free':>9}  reachable")
        for p in result["peers"]:
            mark = " (self)" if p["self"] else ""
            lines.append(
                f"{p['name']:<19} {p['nickname'] or '-':<16} {p['owned']:>9} "
                f"{p['free']:>9}  {'yes' if p['reachable'] else 'no'}{mark}"
            )
    if result.get("foreign"):
        lines.append(
            f"warning: {len(result['foreign'])} address(es) held here are in ranges "
            f"of other peers now (was this peer removed with rmpeer?): "
            f"{', '.join(result['foreign'][:5])}"
        )
    for refusal in result["refused"]:
        lines.append(f"refusing {refusal['peer']}: {refusal['reason']}")
    for removal in result["removals"]:
        verb = "took" if removal["done"] else "is taking"
        lines.append(f"{removal['taker']} {verb} the ranges of {removal['peer']}")
    return "\n".join(lines)


@app.command("allocate")
def allocate(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID")],
    cidr: Annotated[
        str | None,
        typer.Option(
            "--cidr", metavar="SUBNET", help="Within this subnet of the range.", show_default=False
        ),
    ] = None,
    control: ControlOption = None,
) -> None:
    """An address for container ID (the same one each time it is asked)."""
    print(_client(ctx, control).request("ipam_allocate", id=ident, cidr=cidr)["ip"])


@app.command("claim")
def claim(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID")],
    address: Annotated[str, typer.Argument(metavar="ADDR")],
    control: ControlOption = None,
) -> None:
    """Give container ID this address, if it is free here."""
    print(_client(ctx, control).request("ipam_claim", id=ident, ip=address)["ip"])


@app.command("release")
def release(
    ctx: typer.Context,
    ident: Annotated[str, typer.Argument(metavar="ID")],
    control: ControlOption = None,
) -> None:
    """Free container ID's address."""
    result = _client(ctx, control).request("ipam_release", id=ident)
    print(f"released {result['ip']}" if result["ip"] else f"{ident} had no address")


@app.command("rmpeer")
def rmpeer(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(metavar="NAME", help="Peer name or nickname.")],
    control: ControlOption = None,
) -> None:
    """Take over the address ranges of a peer that is gone for good (refused while it
    is reachable, or while another peer is taking them)."""
    result = _client(ctx, control).request("ipam_rmpeer", peer=peer)
    who = result.get("nickname") or result["peer"]
    print(f"took over {result['addresses']} address(es) of {who}")

"""``odpctl router``: run the overlay router, and talk to a running one."""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.errors import UsageError

from .session import session

app = typer.Typer(
    help="""Run the overlay router, and ask a running one how it is.

    `odpctl router start` runs a router in the foreground: a mesh of routers
    over TCP 6783, container frames switched by the datapath, remote ones
    carried over VXLAN (UDP 6784). The other commands talk to the router of
    this network namespace through its control socket.""",
    no_args_is_help=True,
)


class DatapathChoice(StrEnum):
    kernel = "kernel"
    userspace = "userspace"
    auto = "auto"


ControlOption = Annotated[
    Path | None,
    typer.Option("--control", metavar="PATH",
                 help="The router's control socket (default: this namespace's).",
                 show_default=False),
]


def _control(ctx: typer.Context, path: Path | None) -> Path:
    return path or default_socket_path(session(ctx).netns)


@app.command("start")
def start(
    ctx: typer.Context,
    peers: Annotated[list[str] | None, typer.Argument(
        metavar="[PEER]...", help="Peers to connect to: HOST[:PORT].", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Peer name (12 hex digits; default: from machine and namespace).",
        show_default=False)] = None,
    nickname: Annotated[str | None, typer.Option(
        "--nickname", help="Nickname (default: the host name).", show_default=False)] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", metavar="FILE", help="Encrypt the mesh with this password.",
        show_default=False)] = None,
    datapath: Annotated[DatapathChoice, typer.Option(
        "--datapath", help="Kernel datapath, userspace datapath, or the best available.",
    )] = DatapathChoice.auto,
    port: Annotated[int, typer.Option("--port", help="TCP port of the mesh.")] = 6783,
    mtu: Annotated[int | None, typer.Option(
        "--mtu", help="Overlay MTU (default 1376).", show_default=False)] = None,
    control: ControlOption = None,
    ifaces: Annotated[list[str] | None, typer.Option(
        "--iface", metavar="IFACE", help="Container interface to attach (repeatable).",
        show_default=False)] = None,
    dp_name: Annotated[str | None, typer.Option(
        "--dp", metavar="NAME", help="Datapath name (default odp-router).",
        show_default=False)] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning.")
                         ] = "info",
) -> None:
    """Run the overlay router in the foreground (Ctrl-C or SIGTERM stop it).

    It creates the datapath, or adopts the one a previous router left, with
    its flows: traffic keeps flowing while the router restarts.  Container
    interfaces come from --iface, from `odpctl router attach`, or from
    whoever adds a netdev port to the datapath (`odpctl vport add`,
    `ovs-dpctl add-if`): the router attaches it when it sees the port
    appear, and detaches it when the port is deleted."""
    from odpctl.mesh.names import parse_peer_name
    from odpctl.mesh.node import MeshConfig
    from odpctl.router import DEFAULT_DP, DEFAULT_MTU, RouterConfig, run_router

    s = session(ctx)
    password = None
    if password_file is not None:
        try:
            password = password_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read {password_file}: {exc.strerror}") from None
    mesh = MeshConfig(
        name=parse_peer_name(name) if name else None, nickname=nickname,
        listen_port=port, password=password, peers=tuple(peers or ()),
    )
    if mtu is not None and not 576 <= mtu <= 65000:
        raise UsageError(f"--mtu {mtu}: expected 576 to 65000")
    choice = datapath.value
    if s.datapath is not None and datapath is DatapathChoice.auto:
        choice = s.datapath  # the global --datapath names an endpoint
    config = RouterConfig(
        mesh=mesh, datapath=choice, dp_name=dp_name or DEFAULT_DP,
        mtu=mtu or DEFAULT_MTU, control=control or default_socket_path(s.netns),
        ifaces=tuple(ifaces or ()),
    )
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    run_router(config)


@app.command("status")
def status(
    ctx: typer.Context,
    control: ControlOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The router's health in one line, then its peers, connections and counters.

    Exits 1 while the router's datapath is unreachable (it is bringing it back)."""
    result = ControlClient(_control(ctx, control)).request("status")
    if json:
        print(jsonlib.dumps(result, indent=2, sort_keys=True))
    else:
        print(render_status(result))
    if ((result.get("router") or {}).get("datapath") or {}).get("unreachable_since"):
        raise typer.Exit(1)


def render_status(result: dict[str, Any]) -> str:
    router = result.get("router") or {}
    lines = [str(router.get("summary", "no router data")),
             f"name:        {result.get('name')} ({result.get('nickname')}), "
             f"short ID {result.get('short_id')}",
             f"listen:      {result.get('listen')}",
             f"peers:       {result.get('peers')}"]
    dp = router.get("datapath") or {}
    lines.append(f"datapath:    {dp.get('name')} ({dp.get('kind')}), "
                 f"ports {dp.get('ports')}, vxlan port {dp.get('vxlan_port')}")
    ifaces = dp.get("ifaces")
    if isinstance(ifaces, dict):
        lines.append("containers:  " + (", ".join(f"{name} (port {no})"
                                                  for name, no in ifaces.items()) or "none"))
    lines.append(f"mtu:         {router.get('mtu')}")
    lines.append(f"flows:       {router.get('flows')}  misses: {router.get('misses')}  "
                 f"drops: {router.get('drops')}  errors: {router.get('errors')}  "
                 f"lost: {router.get('lost')}")
    lines.append(f"mac cache:   {router.get('mac_cache')}")
    lines.append("connections:")
    for conn in router.get("connections") or []:
        reason = f"  ({conn['reason']})" if conn.get("reason") else ""
        lines.append(f"  {conn.get('peer') or '-'} {conn.get('nickname') or ''} "
                     f"{conn.get('address')} {conn.get('state')} "
                     f"overlay={conn.get('overlay') or '-'}{reason}")
    return "\n".join(lines)


@app.command("attach")
def attach(ctx: typer.Context,
           iface: Annotated[str, typer.Argument(help="Interface to attach.")],
           control: ControlOption = None) -> None:
    """Attach a container interface to the router's datapath."""
    result = ControlClient(_control(ctx, control)).request("attach", iface=iface)
    print(f"attached {result['iface']} as port {result['port']}")


@app.command("detach")
def detach(ctx: typer.Context,
           iface: Annotated[str, typer.Argument(help="Interface to detach.")],
           control: ControlOption = None) -> None:
    """Detach a container interface from the router's datapath."""
    result = ControlClient(_control(ctx, control)).request("detach", iface=iface)
    print(f"detached {result['iface']} (was port {result['port']})")


if __name__ == "__main__":  # python -m odpctl.commands.router: before cli.py knows us
    app()

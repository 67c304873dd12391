"""``odpctl vport``: the ports of a datapath (ovs-dpctl's add-if, del-if, set-if)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from odpctl.errors import NotFoundError, UsageError
from odpctl.odp.vport import VPORT_TYPES_BY_NAME, Vport
from odpctl.present import jsonout, odptext

from .options import Dp, Format, FormatOption, JsonFlag, OptionalDp, comma_ints, output_format
from .session import Session, session

app = typer.Typer(
    help="""List, add, change and delete datapath ports.

    Port types: netdev attaches a network device that exists (a veth, a NIC);
    internal creates a device of that name for the host's own stack; vxlan,
    geneve and gre create flow-based tunnel devices, whose remote end and key
    come from each flow (the tunnel(...) match and the set(tunnel(...))
    action). PORT is a port's name or number. These commands are ovs-dpctl's
    add-if, del-if and set-if.""",
    no_args_is_help=True,
)


class PortType(StrEnum):
    """The port types the kernel datapath creates itself."""

    netdev = "netdev"
    internal = "internal"
    vxlan = "vxlan"
    geneve = "geneve"
    gre = "gre"


_UDP_TUNNELS = (PortType.vxlan, PortType.geneve)

Port = Annotated[
    str, typer.Argument(metavar="PORT", help="Port name (or number).", show_default=False)
]


def _lookup(s: Session, dp: str, port: str) -> Vport:
    """Port ``port`` (a name, or a number) of datapath ``dp``.

    A name alone finds a port in any datapath (names are unique per host), so
    the answer is checked: changing another datapath's port would be a bad
    surprise.
    """
    dpif = s.dpif()
    # Device names are never all digits in practice; numbers name ports too.
    vport = dpif.get_vport(dp, int(port) if port.isdigit() else port)
    if vport.dp_ifindex != dpif.dp_ifindex(dp):
        raise NotFoundError(
            f"no port {port} in datapath {dp}: it belongs to another datapath",
            hint="see `odpctl dp show`",
        )
    return vport


@app.command("list")
def list_ports(
    ctx: typer.Context,
    dp: OptionalDp = None,
    stats: Annotated[
        bool, typer.Option("--statistics", "-s", help="Add packet and byte counts.")
    ] = False,
    fmt: FormatOption = Format.table,
    json: JsonFlag = False,
) -> None:
    """List a datapath's ports with their numbers, types and options.

    --format odp prints the port lines of `ovs-dpctl show`.
    JSON: {"datapath": NAME, "ports": [PORT, ...]}.
    """
    s = session(ctx)
    name = s.dp_name(dp)
    ports = s.ports(name)
    fmt = output_format(fmt, json)
    if fmt is Format.json:
        jsonout.emit({"datapath": name, "ports": [jsonout.port_json(v) for v in ports]})
    elif fmt is Format.odp:
        for v in ports:
            print(odptext.port_line(v))
            if stats:
                print("\n".join(odptext.port_stats_lines(v)))
    else:
        from odpctl.present import tables  # rich, for people only: scripts do without it

        tables.make_console().print(tables.port_table(ports, stats=stats))


@app.command("add")
def add(
    ctx: typer.Context,
    dp: Dp,
    name: Annotated[
        str,
        typer.Argument(
            metavar="IFACE",
            show_default=False,
            help="The network device to attach; for internal and tunnel ports, "
            "the name of the device the datapath creates.",
        ),
    ],
    kind: Annotated[PortType, typer.Option("--type", "-t", help="Port type.")] = PortType.netdev,
    port_no: Annotated[
        int | None,
        typer.Option("--port-no", metavar="N", help="Port number (default: the lowest free)."),
    ] = None,
    dst_port: Annotated[
        int | None,
        typer.Option(
            "--dst-port",
            metavar="PORT",
            help="UDP port of a vxlan or geneve tunnel (default 4789 and 6081).",
        ),
    ] = None,
    gbp: Annotated[
        bool, typer.Option("--gbp", help="vxlan: carry the Group Based Policy extension.")
    ] = False,
    upcall_pids: Annotated[
        str | None,
        typer.Option(
            "--upcall-pid",
            metavar="PID,...",
            help="Netlink ports that receive this port's upcalls (default 0: none).",
        ),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Add a port to a datapath.  JSON: {"datapath": NAME, "port": PORT}."""
    if dst_port is not None and kind not in _UDP_TUNNELS:
        raise UsageError(f"--dst-port is for vxlan and geneve ports, not {kind.value}")
    if gbp and kind is not PortType.vxlan:
        raise UsageError(f"--gbp is for vxlan ports, not {kind.value}")
    s = session(ctx)
    dp_name = s.dp_name(dp)
    vport = Vport(
        name,
        VPORT_TYPES_BY_NAME[kind.value],
        port_no=port_no,
        dst_port=dst_port,
        vxlan_gbp=gbp,
        upcall_pids=tuple(comma_ints(upcall_pids, "--upcall-pid") or ()),
    )
    datapath = s.get_datapath(dp_name)  # its absence is not the device's
    try:
        added = s.dpif().add_vport(datapath, vport)
    except NotFoundError as exc:
        if kind is not PortType.netdev:
            raise
        raise NotFoundError(
            exc.message, errno=exc.errno, hint=f"no network device {name} here: see `ip link`"
        ) from None
    if json:
        jsonout.emit({"datapath": dp_name, "port": jsonout.port_json(added)})


@app.command("del")
def delete(ctx: typer.Context, dp: Dp, port: Port, json: JsonFlag = False) -> None:
    """Delete a port from a datapath (a device the datapath made goes with it).

    JSON: {"datapath": NAME, "deleted": PORT}."""
    s = session(ctx)
    dp_name = s.dp_name(dp)
    vport = _lookup(s, dp_name, port)
    s.dpif().delete_vport(dp_name, vport.port_no or 0)
    if json:
        jsonout.emit({"datapath": dp_name, "deleted": jsonout.port_json(vport)})


@app.command("set")
def set_port(
    ctx: typer.Context,
    dp: Dp,
    port: Port,
    upcall_pids: Annotated[
        str | None,
        typer.Option(
            "--upcall-pid",
            metavar="PID,...",
            help="Netlink ports that receive this port's upcalls.",
        ),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Change a port.  The kernel lets a port's upcall PIDs change; its type
    and tunnel options are fixed when it is added.

    JSON: {"datapath": NAME, "port": PORT}."""
    pids = comma_ints(upcall_pids, "--upcall-pid")
    if pids is None:
        raise UsageError("nothing to set: give --upcall-pid")
    s = session(ctx)
    dp_name = s.dp_name(dp)
    vport = s.dpif().set_vport(dp_name, _lookup(s, dp_name, port).port_no or 0, upcall_pids=pids)
    if json:
        jsonout.emit({"datapath": dp_name, "port": jsonout.port_json(vport)})

"""``odpctl dp``: datapaths (ovs-dpctl's add-dp, del-dp, dump-dps, show)."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from odpctl.errors import OdpError, UsageError
from odpctl.odp.vport import Vport
from odpctl.present import jsonout, odptext

from .options import Dp, Format, FormatOption, JsonFlag, comma_ints, output_format
from .session import session

app = typer.Typer(
    help="""List, show, create, change and delete datapaths.

    A datapath is a switch in the kernel (or in `odpctl dp serve`): ports, and
    a table of flows that every packet is looked up in. A packet that no flow
    matches is a miss, sent up to userspace as an upcall (or lost, when no one
    listens). These commands are ovs-dpctl's dump-dps, show, add-dp, del-dp
    and cache-set-size.""",
    no_args_is_help=True,
)


@app.command("list")
def list_datapaths(
    ctx: typer.Context, fmt: FormatOption = Format.table, json: JsonFlag = False
) -> None:
    """List the datapaths with their port and flow counts.

    --format odp prints one name per line as `ovs-dpctl dump-dps` does
    (`system@dp0`).  JSON: {"datapaths": [DATAPATH, ...]}.
    """
    s = session(ctx)
    dps = sorted(s.dpif().list_datapaths(), key=lambda dp: dp.name)
    fmt = output_format(fmt, json)
    if fmt is Format.odp:
        for dp in dps:
            print(odptext.dpif_name(dp, s.dpif_type))
        return
    if fmt is Format.json:
        docs = [jsonout.datapath_json(dp, dpif_type=s.dpif_type) for dp in dps]
        jsonout.emit({"datapaths": docs})
        return
    counts = {dp.name: len(s.ports(dp.name)) for dp in dps}
    from odpctl.present import tables  # rich, for people only: scripts do without it

    tables.make_console().print(tables.datapath_list(dps, counts))


@app.command("show")
def show(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[DP]...", help="Datapaths to show (default: all).", show_default=False
        ),
    ] = None,
    stats: Annotated[
        bool, typer.Option("--statistics", "-s", help="Add each port's packet and byte counts.")
    ] = False,
    fmt: FormatOption = Format.table,
    json: JsonFlag = False,
) -> None:
    """Show datapaths: lookups (hit, missed, lost), flows, masks, mask cache and
    every port with its number, type and options, as `ovs-dpctl show` does.

    -s counts what the datapath saw on each port (its vport statistics).
    JSON: {"datapaths": [DATAPATH with "ports", ...]}.
    """
    s = session(ctx)
    if names:
        dps = [s.get_datapath(name) for name in names]
    else:
        dps = sorted(s.dpif().list_datapaths(), key=lambda dp: dp.name)
    views = [(dp, s.ports(dp.name)) for dp in dps]
    fmt = output_format(fmt, json)
    if fmt is Format.json:
        jsonout.emit(
            {
                "datapaths": [
                    jsonout.datapath_json(dp, dpif_type=s.dpif_type, ports=ports)
                    for dp, ports in views
                ]
            }
        )
    elif fmt is Format.odp:
        for dp, ports in views:
            for line in odptext.show_lines(dp, ports, stats=stats, dpif_type=s.dpif_type):
                print(line)
    else:
        from odpctl.present import tables  # as in list_datapaths

        console = tables.make_console()
        if not views:
            console.print(tables.datapath_list([], {}))
        for i, (dp, ports) in enumerate(views):
            if i:
                console.print()
            console.print(tables.datapath_view(dp, ports, stats=stats, dpif_type=s.dpif_type))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Dp,
    ifaces: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[IFACE]...",
            help="Network devices to add as its first ports.",
            show_default=False,
        ),
    ] = None,
    upcall_pid: Annotated[
        int,
        typer.Option(
            "--upcall-pid", metavar="PID", help="Netlink port for the local port's upcalls."
        ),
    ] = 0,
    json: JsonFlag = False,
) -> None:
    """Create a datapath (and its internal port of the same name), then add
    IFACEs to it as netdev ports.  JSON: {"datapath": DATAPATH with "ports"}."""
    s = session(ctx)
    dpif = s.dpif()
    dp = dpif.create_datapath(name, upcall_pid=upcall_pid)
    for iface in ifaces or ():
        dpif.add_vport(dp, Vport(iface))
    if json:
        dp = dpif.get_datapath(dp.name)
        jsonout.emit(
            {"datapath": jsonout.datapath_json(dp, dpif_type=s.dpif_type, ports=s.ports(dp.name))}
        )


@app.command("del")
def delete(ctx: typer.Context, name: Dp, json: JsonFlag = False) -> None:
    """Delete a datapath with all of its ports and flows.  JSON: {"deleted": NAME}."""
    s = session(ctx)
    name = s.dp_name(name)
    s.dpif().delete_datapath(name)
    if json:
        jsonout.emit({"deleted": name})


@app.command("set")
def set_datapath(
    ctx: typer.Context,
    name: Dp,
    masks_cache_size: Annotated[
        int | None,
        typer.Option(
            "--masks-cache-size",
            metavar="N",
            help="Entries of the per-CPU mask cache (0 turns it off; a power of two), "
            "as `ovs-dpctl cache-set-size DP masks-cache N`.",
        ),
    ] = None,
    upcall_pid: Annotated[
        int | None,
        typer.Option(
            "--upcall-pid", metavar="PID", help="Netlink port for the local port's upcalls."
        ),
    ] = None,
    per_cpu_pids: Annotated[
        str | None,
        typer.Option(
            "--per-cpu-pids",
            metavar="PID,...",
            help="Netlink ports for per-CPU upcall dispatch, one per CPU.",
        ),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Change a datapath's settings.  JSON: {"datapath": DATAPATH}."""
    pids = comma_ints(per_cpu_pids, "--per-cpu-pids")
    if masks_cache_size is None and upcall_pid is None and pids is None:
        raise UsageError("nothing to set: give --masks-cache-size, --upcall-pid or --per-cpu-pids")
    s = session(ctx)
    dp = s.dpif().set_datapath(
        s.dp_name(name),
        masks_cache_size=masks_cache_size,
        upcall_pid=upcall_pid,
        per_cpu_pids=pids,
    )
    if json:
        jsonout.emit({"datapath": jsonout.datapath_json(dp, dpif_type=s.dpif_type)})


@app.command("serve")
def serve(
    ctx: typer.Context,
    socket: Annotated[
        str | None,
        typer.Option(
            "--socket",
            metavar="PATH",
            help="Serve on this unix socket (default: this namespace's, under "
            "/run/odpctl, where `--datapath userspace` looks).",
        ),
    ] = None,
    socket_mode: Annotated[
        str | None,
        typer.Option(
            "--socket-mode",
            metavar="MODE",
            help="The socket's mode, octal: who may connect at all "
            "(default 0666: everyone may look).",
            show_default=False,
        ),
    ] = None,
    socket_group: Annotated[
        str | None,
        typer.Option(
            "--socket-group",
            metavar="GROUP",
            help="The socket's group, a name or number (with --socket-mode 0660: "
            "only root and this group may connect).",
            show_default=False,
        ),
    ] = None,
    user_connections: Annotated[
        int | None,
        typer.Option(
            "--user-connections",
            metavar="N",
            help="Connections each user other than root may hold (default 64; 0: no limit).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the userspace datapath in the foreground: the same generic-netlink
    messages as the kernel's, over a unix socket, for hosts without the
    openvswitch module.

    Anyone who can open the socket may look (list, show, dump), as anyone may
    ask the kernel's datapath; only root may change anything.  What one user
    may take is bounded: --user-connections connections each (root: no
    bound; past it a client is refused with EUSERS), the server's last 32
    file descriptors are kept for root, and a client that never reads its
    replies holds no more than the system's default socket buffer.  A request
    too big to read gets EMSGSIZE.  --socket-mode and --socket-group narrow
    who may connect at all."""
    try:
        module = importlib.import_module("odpctl.datapath")
        serve_fn, access_cls = module.serve, module.Access
    except (ImportError, AttributeError):
        raise OdpError(
            "this odpctl has no userspace datapath (odpctl.datapath.serve is missing)",
            hint="use the kernel datapath: modprobe openvswitch",
        ) from None
    access = access_cls.parse(socket_mode, socket_group, user_connections)
    serve_fn(socket, session(ctx).netns, access)

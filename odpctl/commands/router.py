"""``odpctl router``: run the overlay router, and talk to a running one."""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from odpctl.control.client import ControlClient, default_socket_path
from odpctl.errors import UsageError
from odpctl.present.status import render_status

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
    typer.Option(
        "--control",
        metavar="PATH",
        help="The router's control socket (default: this namespace's).",
        show_default=False,
    ),
]


def _control(ctx: typer.Context, path: Path | None) -> Path:
    return path or default_socket_path(session(ctx).netns)


@app.command("start")
def start(
    ctx: typer.Context,
    peers: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PEER]...", help="Peers to connect to: HOST[:PORT].", show_default=False
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Peer name (12 hex digits; default: from machine and namespace).",
            show_default=False,
        ),
    ] = None,
    nickname: Annotated[
        str | None,
        typer.Option("--nickname", help="Nickname (default: the host name).", show_default=False),
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            metavar="FILE",
            help="The mesh password: authenticates the routers and encrypts their connections "
            "and the container traffic between them.",
            show_default=False,
        ),
    ] = None,
    trusted_subnets: Annotated[
        str | None,
        typer.Option(
            "--trusted-subnets",
            metavar="CIDR,...",
            help="Underlay subnets whose hosts exchange plaintext VXLAN even with a password.",
            show_default=False,
        ),
    ] = None,
    datapath: Annotated[
        DatapathChoice,
        typer.Option(
            "--datapath",
            help="Kernel datapath, userspace datapath, or the best available.",
        ),
    ] = DatapathChoice.auto,
    port: Annotated[int, typer.Option("--port", help="TCP port of the mesh.")] = 6783,
    mtu: Annotated[
        int | None, typer.Option("--mtu", help="Overlay MTU (default 1376).", show_default=False)
    ] = None,
    control: ControlOption = None,
    ifaces: Annotated[
        list[str] | None,
        typer.Option(
            "--iface",
            metavar="IFACE",
            help="Container interface to attach (repeatable).",
            show_default=False,
        ),
    ] = None,
    dp_name: Annotated[
        str | None,
        typer.Option(
            "--dp", metavar="NAME", help="Datapath name (default odp-router).", show_default=False
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning.")] = "info",
    dns_domain: Annotated[
        str, typer.Option("--dns-domain", metavar="DOMAIN", help="Domain of the containers' names.")
    ] = "odpctl.local.",
    dns_ttl: Annotated[
        int,
        typer.Option(
            "--dns-ttl", metavar="SECONDS", help="TTL of the DNS answers about containers."
        ),
    ] = 1,
    dns_listen: Annotated[
        str | None,
        typer.Option(
            "--dns-listen",
            metavar="ADDR[:PORT]",
            help="Serve DNS here (default: the router's exposed address, port 53).",
            show_default=False,
        ),
    ] = None,
    dns_rate: Annotated[
        float,
        typer.Option(
            "--dns-rate",
            metavar="QPS",
            help="DNS queries per second answered per client address (0: no limit).",
        ),
    ] = 2000.0,
    ipalloc_range: Annotated[
        str, typer.Option("--ipalloc-range", metavar="CIDR", help="The containers' address range.")
    ] = "10.32.0.0/12",
    ipalloc_init: Annotated[
        str | None,
        typer.Option(
            "--ipalloc-init",
            metavar="MODE",
            help="How the range is first split: consensus[=N] (Paxos among N routers; default: "
            "this one and the PEERs given), seed=NAME,... (among these peers), or observer "
            "(owns nothing until it asks).",
            show_default=False,
        ),
    ] = None,
    expose: Annotated[
        bool,
        typer.Option(
            "--expose",
            help="Give the datapath's own port an address from IPAM (as `odpctl router expose`).",
        ),
    ] = False,
    max_flows: Annotated[
        int,
        typer.Option(
            "--max-flows",
            metavar="N",
            help="Flows the router installs at most (0: no limit); past it, misses are still "
            "forwarded, without a flow, and counted.",
        ),
    ] = 0,
    handlers: Annotated[
        int,
        typer.Option(
            "--handlers", metavar="N", help="Miss-handler threads, each with its own socket."
        ),
    ] = 2,
) -> None:
    """Run the overlay router in the foreground (Ctrl-C or SIGTERM stop it).

    It creates the datapath, or adopts the one a previous router left, with
    its flows: traffic keeps flowing while the router restarts.  Container
    interfaces come from --iface, from `odpctl router attach`, or from
    whoever adds a netdev port to the datapath (`odpctl vport add`,
    `ovs-dpctl add-if`): the router attaches it when it sees the port
    appear, and detaches it when the port is deleted."""
    from odpctl.dns.names import normalize_domain
    from odpctl.dns.service import DnsConfig, parse_listen
    from odpctl.ipam.addr import Cidr
    from odpctl.ipam.allocator import IpamConfig
    from odpctl.ipam.bootstrap import Bootstrap
    from odpctl.mesh.names import parse_peer_name
    from odpctl.mesh.node import MeshConfig
    from odpctl.overlay.links import parse_subnets
    from odpctl.router import DEFAULT_DP, DEFAULT_MTU, RouterConfig, run_router

    s = session(ctx)
    password = None
    if password_file is not None:
        try:
            password = password_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read {password_file}: {exc.strerror}") from None
        if not password:
            raise UsageError(f"the password file {password_file} is empty")
    mesh = MeshConfig(
        name=parse_peer_name(name) if name else None,
        nickname=nickname,
        listen_port=port,
        password=password,
        peers=tuple(peers or ()),
    )
    try:
        trusted = parse_subnets(trusted_subnets or "")
    except ValueError as exc:
        raise UsageError(f"--trusted-subnets: {exc}") from None
    if mtu is not None and not 576 <= mtu <= 65000:
        raise UsageError(f"--mtu {mtu}: expected 576 to 65000")
    if not 0 <= dns_ttl <= 86400:
        raise UsageError(f"--dns-ttl {dns_ttl}: expected 0 to 86400 seconds")
    if dns_rate < 0:
        raise UsageError(f"--dns-rate {dns_rate:g}: expected 0 (no limit) or more")
    if max_flows < 0:
        raise UsageError(f"--max-flows {max_flows}: expected 0 (no limit) or more")
    if not 1 <= handlers <= 64:
        raise UsageError(f"--handlers {handlers}: expected 1 to 64")
    dns = DnsConfig(
        domain=normalize_domain(dns_domain),
        ttl=dns_ttl,
        rate=dns_rate,
        listen=parse_listen(dns_listen) if dns_listen else None,
    )
    choice = datapath.value
    if s.datapath is not None and datapath is DatapathChoice.auto:
        choice = s.datapath  # the global --datapath names an endpoint
    config = RouterConfig(
        mesh=mesh,
        datapath=choice,
        dp_name=dp_name or DEFAULT_DP,
        mtu=mtu or DEFAULT_MTU,
        control=control or default_socket_path(s.netns),
        ifaces=tuple(ifaces or ()),
        dns=dns,
        trusted_subnets=trusted,
        ipam=IpamConfig(
            range=Cidr.parse(ipalloc_range),
            bootstrap=Bootstrap.parse(ipalloc_init, len(peers or ())),
        ),
        expose=expose,
        max_flows=max_flows,
        handlers=handlers,
    )
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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


@app.command("attach")
def attach(
    ctx: typer.Context,
    iface: Annotated[
        str | None,
        typer.Argument(
            help="An interface to attach as it is (instead of --netns).", show_default=False
        ),
    ] = None,
    netns: Annotated[
        str | None,
        typer.Option(
            "--netns",
            metavar="NS",
            help="The container's network namespace: an `ip netns` name "
            "or a path like /proc/PID/ns/net.",
            show_default=False,
        ),
    ] = None,
    ident: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="ID",
            help="Container ID (default: from the namespace).",
            show_default=False,
        ),
    ] = None,
    ip: Annotated[
        str | None,
        typer.Option(
            "--ip",
            metavar="CIDR",
            help="This address (claimed in IPAM), not one IPAM chooses.",
            show_default=False,
        ),
    ] = None,
    ifname: Annotated[str, typer.Option("--ifname", help="The interface's name inside.")] = "eth0",
    hostname: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="HOSTNAME",
            help="The container's host name (for DNS).",
            show_default=False,
        ),
    ] = None,
    without_dns: Annotated[
        bool,
        typer.Option(
            "--without-dns",
            help="Neither register the name nor point the container's "
            "resolv.conf (/etc/netns/NS/resolv.conf) at the router's DNS server.",
        ),
    ] = False,
    control: ControlOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Attach a container: by its namespace (a veth pair, an address from IPAM, the
    route to the overlay's range), or an interface already made."""
    client = ControlClient(_control(ctx, control), timeout=30)
    if netns is None:
        if iface is None or ident or ip or hostname or without_dns:
            raise UsageError(
                "give an interface, or --netns NS (--id, --ip, --name, --without-dns go with it)"
            )
        result = client.request("attach", iface=iface)
        print(f"attached {result['iface']} as port {result['port']}")
        return
    if iface is not None:
        raise UsageError("give an interface or --netns, not both")
    result = client.request(
        "attach", netns=netns, id=ident, ip=ip, ifname=ifname, name=hostname, dns=not without_dns
    )
    print(jsonlib.dumps(result, indent=2, sort_keys=True) if json else result["ip"])


@app.command("detach")
def detach(
    ctx: typer.Context,
    iface: Annotated[
        str | None,
        typer.Argument(
            help="An interface attached as it was (instead of --netns/--id).", show_default=False
        ),
    ] = None,
    netns: Annotated[
        str | None,
        typer.Option(
            "--netns",
            metavar="NS",
            help="Detach the containers of this namespace.",
            show_default=False,
        ),
    ] = None,
    ident: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Detach this container.", show_default=False),
    ] = None,
    control: ControlOption = None,
) -> None:
    """Detach a container (removing its veth and releasing its address), or an interface."""
    client = ControlClient(_control(ctx, control), timeout=30)
    if netns is None and ident is None:
        if iface is None:
            raise UsageError("give an interface, --netns NS or --id ID")
        result = client.request("detach", iface=iface)
        print(f"detached {result['iface']} (was port {result['port']})")
        return
    if iface is not None or (netns is not None and ident is not None):
        raise UsageError("give one of an interface, --netns or --id")
    result = client.request("detach", **({"id": ident} if ident else {"netns": netns}))
    for gone in result["detached"]:
        print(f"detached {gone['id']} ({gone['ip']})")
    if not result["detached"]:
        released = result.get("released")
        print(f"released {released}" if released else "nothing attached")


@app.command("expose")
def expose(ctx: typer.Context, control: ControlOption = None) -> None:
    """Give the datapath's own port an address from IPAM: the host joins the overlay."""
    print(ControlClient(_control(ctx, control), timeout=30).request("expose")["ip"])


@app.command("stop")
def stop(
    ctx: typer.Context,
    shutdown: Annotated[
        bool,
        typer.Option(
            "--shutdown",
            help="Leaving for good: hand this router's address ranges to a live peer first.",
        ),
    ] = False,
    control: ControlOption = None,
) -> None:
    """Stop the router of this namespace (its datapath and flows stay)."""
    result = ControlClient(_control(ctx, control), timeout=30).request("stop", shutdown=shutdown)
    handed = result.get("handed")
    if handed and handed.get("to"):
        who = handed.get("nickname") or handed["to"]
        print(f"handed {handed['addresses']} address(es) to {who}; stopping")
    else:
        print("stopping")


if __name__ == "__main__":  # python -m odpctl.commands.router: before cli.py knows us
    app()

"""A bare mesh peer (no data path) with a control socket, for the namespace tests.

    python tests/mesh/bare_node.py --listen 10.0.0.1:6783 --peer 10.0.0.2

The mesh knows nothing of the control socket, which lives above it; this
harness puts the two together the way the router does, without a datapath.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from odpctl.control.server import ControlServer, default_socket_path
from odpctl.errors import OdpError, UsageError
from odpctl.mesh.discovery import DEFAULT_PORT, parse_address
from odpctl.mesh.names import parse_peer_name
from odpctl.mesh.node import MeshConfig, MeshNode
from odpctl.mesh.status import control_handlers
from odpctl.mesh.wire import PROTOCOL_MAX, PROTOCOL_MIN

log = logging.getLogger("odpctl.mesh.node")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tests/mesh/bare_node.py",
        description="Run a bare mesh peer (no data path) with a control socket.",
    )
    p.add_argument(
        "--listen",
        default=f"0.0.0.0:{DEFAULT_PORT}",
        metavar="ADDR",
        help="where to accept connections (HOST:PORT)",
    )
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="ADDR",
        help="a peer to connect to (repeatable)",
    )
    p.add_argument("--name", help="peer name, 6 hex bytes (default: from the host's identity)")
    p.add_argument("--nickname", help="nickname (default: the host name)")
    p.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="file holding the mesh password (encrypts the connections)",
    )
    p.add_argument(
        "--control",
        type=Path,
        metavar="PATH",
        help="control socket (default: this namespace's router.sock)",
    )
    p.add_argument("--no-discovery", action="store_true", help="connect to given peers only")
    p.add_argument("--conn-limit", type=int, default=128)
    p.add_argument(
        "--heartbeat",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="heartbeat interval; a connection silent for 3 of them is dropped",
    )
    p.add_argument("--gossip-interval", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--backoff-initial", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--backoff-max", type=float, default=120.0, metavar="SECONDS")
    p.add_argument("--accept-rate", type=float, default=20.0)
    p.add_argument("--accept-burst", type=int, default=64)
    # For tests: force protocol versions and short IDs.
    p.add_argument("--protocol-min", type=int, default=PROTOCOL_MIN, help=argparse.SUPPRESS)
    p.add_argument("--protocol-max", type=int, default=PROTOCOL_MAX, help=argparse.SUPPRESS)
    p.add_argument("--short-id", type=int, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> MeshConfig:
    host, port = parse_address(args.listen)
    password = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the password file: {exc.strerror or exc}") from None
        if not password:
            raise UsageError(f"the password file {args.password_file} is empty")
    return MeshConfig(
        name=parse_peer_name(args.name) if args.name else None,
        nickname=args.nickname,
        listen_host=host,
        listen_port=port,
        password=password,
        peers=tuple(args.peer),
        discovery=not args.no_discovery,
        conn_limit=args.conn_limit,
        heartbeat_interval=args.heartbeat,
        heartbeat_timeout=3 * args.heartbeat,
        gossip_interval=args.gossip_interval,
        backoff_initial=args.backoff_initial,
        backoff_max=args.backoff_max,
        accept_rate=args.accept_rate,
        accept_burst=args.accept_burst,
        min_version=args.protocol_min,
        max_version=args.protocol_max,
        short_id=args.short_id,
    )


async def _serve(args: argparse.Namespace) -> None:
    node = MeshNode(config_from_args(args))
    server = ControlServer(args.control or default_socket_path(), control_handlers(node))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    await server.start()
    log.info("control socket %s", server.path)
    try:
        await stop.wait()
    finally:
        await server.stop()
        await node.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(_serve(args))
    except OdpError as exc:
        print(f"odpctl mesh node: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``odpctl docker-plugin``: see odpctl.docker."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from odpctl.control.client import default_socket_path

from .session import session


def docker_plugin(
    ctx: typer.Context,
    socket: Annotated[
        Path | None,
        typer.Option(
            "--socket",
            metavar="PATH",
            show_default=False,
            help="Where Docker finds the plugin (default /run/docker/plugins/odpctl.sock: "
            "the driver's name is the file's).",
        ),
    ] = None,
    control: Annotated[
        Path | None,
        typer.Option(
            "--control",
            metavar="PATH",
            show_default=False,
            help="The router's control socket (default: this namespace's).",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            metavar="FILE",
            show_default=False,
            help="Keep the driver's networks and endpoints in FILE across restarts.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning.")] = "info",
) -> None:
    """Serve Docker's network and IPAM driver `odpctl` in the foreground (Ctrl-C or
    SIGTERM stop it): `docker network create -d odpctl --ipam-driver odpctl NAME`
    puts containers on the overlay of the router of this namespace, which attaches
    each one as it joins, with its address from the router's IPAM."""
    # Imported here: only this command needs the HTTP server.
    from odpctl.docker.server import DEFAULT_SOCKET, PluginServer

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    server = PluginServer(
        socket or DEFAULT_SOCKET, control or default_socket_path(session(ctx).netns), state
    )

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever(): not from the thread that runs it.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    logging.getLogger("odpctl.docker").info("serving on %s", server.path)
    try:
        server.serve_forever()
    finally:
        server.server_close()

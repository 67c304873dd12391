"""``python -m odpctl.datapath [--socket PATH] [--netns NAME] [access]``: the server without
the CLI; the access options are `odpctl dp serve`'s."""

from __future__ import annotations

import argparse
import logging
import sys

from odpctl.datapath import Access, serve
from odpctl.errors import OdpError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odpctl.datapath", description=__doc__)
    parser.add_argument("--socket", help="unix socket to serve on (default: per namespace)")
    parser.add_argument("--netns", help="network namespace whose interfaces to use")
    parser.add_argument("--socket-mode", help="the socket's mode, octal (default 0666)")
    parser.add_argument("--socket-group", help="the socket's group, a name or number")
    parser.add_argument(
        "--user-connections",
        type=int,
        help="connections per user other than root (default 64, 0: no limit)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="odpctl dp serve: %(message)s")
    try:
        access = Access.parse(args.socket_mode, args.socket_group, args.user_connections)
        serve(args.socket, args.netns, access)
    except OdpError as exc:
        print(f"odpctl dp serve: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

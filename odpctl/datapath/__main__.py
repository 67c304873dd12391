"""``python -m odpctl.datapath [--socket PATH] [--netns NAME]``: the server without the CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from odpctl.datapath import serve
from odpctl.errors import OdpError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odpctl.datapath", description=__doc__)
    parser.add_argument("--socket", help="unix socket to serve on (default: per namespace)")
    parser.add_argument("--netns", help="network namespace whose interfaces to use")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="odpctl dp serve: %(message)s")
    try:
        serve(args.socket, args.netns)
    except OdpError as exc:
        print(f"odpctl dp serve: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

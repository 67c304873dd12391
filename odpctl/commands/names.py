"""``odpctl _names``: the live names shell completion offers (hidden).

The completion scripts complete commands and options by themselves and call
this only for what only the datapath knows: datapath and port names.  It
prints nothing, and succeeds, when it cannot ask (no module, no root), so
that a TAB never prints an error into the command line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from odpctl.errors import OdpError

from .session import session

COMMAND = "_names"


class What(StrEnum):
    dp = "dp"
    port = "port"


def names(
    ctx: typer.Context,
    what: Annotated[What, typer.Argument()],
    dp: Annotated[str | None, typer.Argument()] = None,
) -> None:
    """Print datapath names, or the port names of datapath DP, one a line."""
    s = session(ctx)
    try:
        if what is What.dp:
            found = sorted(d.name for d in s.dpif().list_datapaths())
        else:
            found = [v.name for v in s.ports(s.dp_name(dp))]
    except OdpError:
        return
    for name in found:
        print(name)

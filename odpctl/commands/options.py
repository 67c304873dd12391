"""Parameters several commands share, so that they read and behave alike.

Metavars matter beyond help text: the completion generator picks what to
complete from them (DP: datapath names, PORT: port names, FLOW: flow key
fields, IFACE: network devices, FILE: files), see `odpctl.commands.cmdtree`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from odpctl.errors import UsageError


class Format(StrEnum):
    table = "table"
    odp = "odp"
    json = "json"


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (its keys: odpctl(1), JSON OUTPUT).")
]

FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="table: for people; odp: ovs-dpctl's text, line for line; json: as --json.",
    ),
]

OptionalDp = Annotated[
    str | None,
    typer.Argument(
        metavar="[DP]", help="Datapath; may be left out when there is only one.", show_default=False
    ),
]

Dp = Annotated[str, typer.Argument(metavar="DP", help="Datapath name.", show_default=False)]


def output_format(fmt: Format, json: bool) -> Format:
    return Format.json if json else fmt


def split_dp(args: list[str], names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """``[DP] A B`` given as one list: the DP if there is one more word than names.

    This is how ovs-dpctl tells ``add-flow DP FLOW ACTIONS`` from
    ``add-flow FLOW ACTIONS``: by counting.
    """
    if len(args) == len(names) + 1:
        return args[0], args[1:]
    if len(args) == len(names):
        return None, list(args)
    wanted = " ".join(("[DP]", *names))
    got = "nothing" if not args else f"{len(args)} argument{'s' if len(args) > 1 else ''}"
    raise UsageError(f"expected {wanted}, got {got}")


def comma_ints(text: str | None, what: str) -> list[int] | None:
    """``"1,2,3"`` -> [1, 2, 3] (None stays None)."""
    if text is None:
        return None
    try:
        return [int(part, 0) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected numbers separated by commas, got '{text}'") from None

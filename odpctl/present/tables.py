"""Output for people: rich tables with a one-line summary.

Renderers return rich renderables and take no console, so that tests can
draw them at a fixed width without colour.  Rich leaves colour out by itself
when stdout is not a terminal or NO_COLOR is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from odpctl.odp.datapath import Datapath
from odpctl.odp.vport import Vport

if TYPE_CHECKING:
    from odpctl.odp.flow import Flow

from . import odptext
from .jsonout import display_type, feature_names


def make_console() -> Console:
    # soft_wrap off and no highlighting: numbers and names keep our styles only.
    return Console(highlight=False)


def _table(*columns: str, right: Sequence[str] = ()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def count(n: int) -> str:
    return f"{n:,}"


def size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``."""
    human = odptext.human_size(n)
    return human.strip(" ()") if human else f"{n} B"


def ago(seconds: float | None) -> str:
    """``never``, ``0.42s``, ``12s``, ``3m12s``, ``2h05m``."""
    if seconds is None:
        return "never"
    if seconds < 10:
        return f"{max(seconds, 0):.2f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def breakable(text: str) -> str:
    """ODP text with a blank after each top-level comma, where a table may wrap it.

    The parser reads blanks as separators too, so the text still pastes back
    into `odpctl flow add`.
    """
    out, depth = [], 0
    for c in text:
        out.append(c)
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(" ")
    return "".join(out)


def summary(text: str) -> Text:
    return Text(text, style="dim")


def plural(n: int, word: str) -> str:
    return f"{count(n)} {word}{'' if n == 1 else 's'}"


# --- datapaths -------------------------------------------------------------------


def datapath_list(dps: Sequence[Datapath], ports: Mapping[str, int]) -> RenderableType:
    if not dps:
        return summary("no datapaths (create one with `odpctl dp add NAME`)")
    table = _table(
        "Datapath",
        "Index",
        "Ports",
        "Flows",
        "Hit",
        "Missed",
        "Lost",
        right=("Index", "Ports", "Flows", "Hit", "Missed", "Lost"),
    )
    for dp in dps:
        table.add_row(
            Text(dp.name, style="bold cyan"),
            str(dp.ifindex),
            count(ports.get(dp.name, 0)),
            count(dp.flows),
            count(dp.hit),
            count(dp.missed),
            count(dp.lost),
        )
    n_flows = sum(dp.flows for dp in dps)
    n_ports = sum(ports.get(dp.name, 0) for dp in dps)
    line = f"{plural(len(dps), 'datapath')}, {plural(n_ports, 'port')}, {plural(n_flows, 'flow')}"
    return Group(table, summary(line))


def datapath_view(
    dp: Datapath, ports: Sequence[Vport], *, stats: bool, dpif_type: str
) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row(
        "lookups",
        f"hit {count(dp.hit)}   missed {count(dp.missed)}   lost {count(dp.lost)}",
    )
    head.add_row("flows", count(dp.flows))
    head.add_row(
        "masks",
        f"hit {count(dp.mask_hit)}   total {count(dp.masks)}   "
        f"hit/pkt {dp.masks_hit_per_packet:.2f}",
    )
    cache = f"hit {count(dp.cache_hit)}   hit-rate {dp.cache_hit_rate:.2f}%"
    if dp.masks_cache_size is not None:
        cache += f"   size {count(dp.masks_cache_size)}"
    head.add_row("cache", cache)
    head.add_row("features", ", ".join(feature_names(dp.features)) or "none")
    title = Text.assemble(
        (odptext.dpif_name(dp, dpif_type), "bold cyan"), (f"  ifindex {dp.ifindex}", "dim")
    )
    return Group(title, head, Text(""), port_table(ports, stats=stats))


# --- ports -------------------------------------------------------------------------


def port_table(ports: Sequence[Vport], *, stats: bool) -> RenderableType:
    columns = ["Port", "Name", "Type", "Options"]
    numeric = ["Port"]
    if stats:
        numeric += ["RX packets", "RX bytes", "TX packets", "TX bytes", "Errors", "Dropped"]
        columns += numeric[1:]
    table = _table(*columns, right=numeric)
    for v in sorted(ports, key=lambda v: v.port_no or 0):
        opts = ", ".join(f"{k}={val}" for k, val in odptext.port_options(v).items())
        row: list[RenderableType] = [
            str(v.port_no),
            Text(v.name, style="bold"),
            display_type(v),
            opts,
        ]
        if stats:
            s = v.stats
            row += (
                [
                    count(s.rx_packets),
                    size(s.rx_bytes),
                    count(s.tx_packets),
                    size(s.tx_bytes),
                    count(s.rx_errors + s.tx_errors),
                    count(s.rx_dropped + s.tx_dropped),
                ]
                if s is not None
                else ["?"] * 6
            )
        table.add_row(*row)
    return Group(table, summary(plural(len(ports), "port")))


# --- flows --------------------------------------------------------------------------


def flow_table(
    flows: Sequence[Flow],
    now: int,
    *,
    total: int,
    verbose: bool,
    port_names: Mapping[int, str] | None = None,
) -> RenderableType:
    columns = ["Match", "Actions", "Packets", "Bytes", "Used"]
    if verbose:
        columns.insert(0, "UFID")
    table = _table(*columns, right=("Packets", "Bytes", "Used"))
    table.columns[columns.index("Match")].overflow = "fold"
    table.columns[columns.index("Actions")].overflow = "fold"
    if verbose:
        table.columns[0].no_wrap = True
        table.columns[0].min_width = 36  # a whole UUID
    for f in flows:
        row: list[RenderableType] = [
            breakable(odptext.match_text(f, verbose=verbose, port_names=port_names)),
            Text(breakable(odptext.actions_text(f, port_names)), style="green"),
            count(f.packets),
            size(f.bytes),
            ago(odptext.used_seconds(f, now)),
        ]
        if verbose:
            row.insert(0, odptext.format_ufid(f.ufid)[5:] if f.ufid else "-")
        table.add_row(*row)
    packets = sum(f.packets for f in flows)
    octets = sum(f.bytes for f in flows)
    shown = plural(len(flows), "flow")
    if total != len(flows):
        shown += f" shown of {count(total)}"
    return Group(table, summary(f"{shown}, {plural(packets, 'packet')}, {size(octets)}"))

"""`odpctl peer graph` drawn: a tree in the terminal (rich), Graphviz text, SVG."""

from __future__ import annotations

import shutil
import subprocess

from rich.console import RenderableType
from rich.text import Text
from rich.tree import Tree

from odpctl.errors import OdpError
from odpctl.present.units import byte_rate

from .meshgraph import Host, Link, MeshGraph

# Colours by overlay: the fast path, the userspace fallback, no traffic path (yet).
COLOURS = {"fastdp": "green", "fallback": "yellow"}
DOT_COLOURS = {"fastdp": "darkgreen", "fallback": "darkorange"}


def _short(host: Host) -> str:
    short = f", short ID {host.short_id}" if host.short_id is not None else ""
    return f"{host.name}{short}"


def _link_parts(link: Link) -> list[str]:
    parts = [
        link.overlay or ("connected (as gossiped)" if link.state == "gossiped" else link.state)
    ]
    if link.reason:
        parts.append(link.reason)
    if link.rtt_ms is not None:
        parts.append(f"RTT {link.rtt_ms:.2f} ms")
    if link.out_rate is not None or link.in_rate is not None:
        parts.append(f"out {byte_rate(link.out_rate)}, in {byte_rate(link.in_rate)}")
    return parts


def terminal(graph: MeshGraph) -> RenderableType:
    links = len(graph.links)
    tree = Tree(Text(f"mesh: {len(graph.hosts)} peer(s), {links} connection(s)", style="bold"))
    for host in sorted(graph.hosts.values(), key=lambda h: (not h.is_self, h.label)):
        head = Text(host.label, style="bold cyan" if host.reachable else "bold red")
        head.append(f"  {_short(host)}", style="dim")
        if host.is_self:
            head.append("  (this host)", style="bold")
        elif not host.reachable:
            head.append("  (unreachable)", style="red")
        branch = tree.add(head)
        if host.containers:
            containers = branch.add(Text(f"containers ({len(host.containers)})"))
            for c in host.containers:
                containers.add(Text(c))  # Text: a MAC's ":cd:" is no emoji code
        for link in graph.links:
            if host.name not in (link.a, link.b):
                continue
            other = graph.hosts[link.b if link.a == host.name else link.a]
            style = COLOURS.get(link.overlay or "", "dim" if link.state == "gossiped" else "red")
            line = Text(f"── {other.label}: ", style=style)
            line.append("; ".join(_link_parts(link)))
            branch.add(line)
    return tree


def _quote(*lines: str) -> str:
    """A DOT string of ``lines``, one under the other."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def dot(graph: MeshGraph) -> str:
    lines = [
        "graph mesh {",
        '  graph [fontname="sans-serif", rankdir=LR, overlap=false];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="sans-serif"];',
        '  edge [fontname="sans-serif", fontsize=10];',
    ]
    for host in sorted(graph.hosts.values(), key=lambda h: h.name):
        extra = ", penwidth=2" if host.is_self else ""
        if not host.reachable and not host.is_self:
            extra += ", color=red"
        label = _quote(host.label, _short(host), *host.containers)
        lines.append(f"  {_quote(host.name)} [label={label}{extra}];")
    for link in graph.links:
        colour = DOT_COLOURS.get(link.overlay or "", "gray" if link.state == "gossiped" else "red")
        style = ", style=dashed" if link.state == "gossiped" else ""
        lines.append(
            f"  {_quote(link.a)} -- {_quote(link.b)} "
            f"[label={_quote(*_link_parts(link))}, color={colour}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(dot_text: str) -> str:
    """``dot_text`` laid out and drawn by Graphviz."""
    if shutil.which("dot") is None:
        raise OdpError("--format svg needs Graphviz", hint="apt-get install graphviz")
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise OdpError(f"Graphviz failed: {done.stderr.strip()}")
    return done.stdout

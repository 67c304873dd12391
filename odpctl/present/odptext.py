"""Output in ``ovs-dpctl``'s own text, for ``--format odp``.

Line for line what ``ovs-dpctl show`` and ``dump-flows`` print (OVS
``lib/dpctl.c``, ``dpif_flow_stats_format``), so that scripts written
against ovs-dpctl keep working.  Where odpctl knows better than ovs-dpctl it
says so in the docstring of the function concerned.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from odpctl.errors import ParseError
from odpctl.odp.datapath import Datapath
from odpctl.odp.uapi import VportType
from odpctl.odp.vport import DEFAULT_DST_PORTS, VPORT_TYPES_BY_NAME, Vport

if TYPE_CHECKING:
    from odpctl.odp.flow import Flow

# The prefix ovs-dpctl puts before a kernel datapath's name ("system@dp0").
KERNEL_DPIF_TYPE = "system"

# OVS names the tunnel devices it creates "<prefix>_<udp port>" and, for a
# plain netdev vport, infers the tunnel type from that prefix
# (netdev_vport_type_from_name); we do the same so that `show` agrees.
_TUNNEL_NAME_PREFIXES = {
    "genev_sys": "geneve",
    "gre_sys": "gre",
    "vxlan_sys": "vxlan",
    "erspan_sys": "erspan",
    "ip6erspan_sys": "ip6erspan",
    "ip6gre_sys": "ip6gre",
    "gtpu_sys": "gtpu",
    "udp_sys": "bareudp",
    "srv6_sys": "srv6",
}
_UDP_DEFAULT_PORTS = {"vxlan": 4789, "geneve": 6081, "gtpu": 2152}


def now_ms() -> int:
    """The datapath's clock (CLOCK_MONOTONIC) in ms: what ``Flow.used`` counts in."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


def dpif_name(dp: Datapath, dpif_type: str = KERNEL_DPIF_TYPE) -> str:
    return f"{dpif_type}@{dp.name}"


def port_type(vport: Vport) -> str:
    """The type ovs-dpctl shows: "system" for a plain netdev, else the tunnel kind.

    A netdev vport named like OVS's own tunnel devices (``vxlan_sys_4789``)
    is that tunnel, as current OVS attaches them.
    """
    if vport.type == VportType.NETDEV:
        prefix = _tunnel_prefix(vport.name)
        return _TUNNEL_NAME_PREFIXES[prefix] if prefix else "system"
    return vport.type_name


def _tunnel_prefix(name: str) -> str | None:
    for prefix in _TUNNEL_NAME_PREFIXES:
        if name == prefix or name.startswith(prefix + "_"):
            return prefix
    return None


def effective_options(vport: Vport) -> dict[str, str]:
    """Every option in force, defaults included, sorted by key: what ``--json``
    carries, so that scripts need not know a tunnel type's default UDP port."""
    opts = vport.options()
    kind = port_type(vport)
    if vport.type == VportType.NETDEV and kind in _UDP_DEFAULT_PORTS:
        # An OVS-made tunnel device carries its UDP port in its name.
        tail = vport.name.rpartition("_")[2]
        if tail.isdigit():
            opts["dst_port"] = tail
    default = _default_dst_port(kind)
    if default is not None:
        opts.setdefault("dst_port", str(default))
    return dict(sorted(opts.items()))


def port_options(vport: Vport) -> dict[str, str]:
    """The options worth showing to people, as ``key=value`` pairs sorted by key.

    odpctl reports what the datapath says (``dst_port`` when it is not the
    type's default, ``exts=gbp``), where ovs-dpctl reports the defaults of a
    tunnel device it opens afresh (``packet_type=ptap``).
    """
    opts = effective_options(vport)
    if opts.get("dst_port") == str(_default_dst_port(port_type(vport))):
        del opts["dst_port"]
    return opts


def _default_dst_port(kind: str) -> int | None:
    return DEFAULT_DST_PORTS.get(VPORT_TYPES_BY_NAME.get(kind, VportType.UNSPEC))


def port_line(vport: Vport) -> str:
    """``  port 3: vxlan_sys_4790 (vxlan: dst_port=4790)``."""
    line = f"  port {vport.port_no}: {vport.name}"
    kind = port_type(vport)
    if kind != "system":
        opts = port_options(vport)
        detail = ": " + ", ".join(f"{k}={v}" for k, v in opts.items()) if opts else ""
        line += f" ({kind}{detail})"
    return line


def human_size(value: int) -> str:
    """`` (1.5 KiB)`` for 1536; nothing under 1 KiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f" ({value / scale:.1f} {unit})"
    return ""


def port_stats_lines(vport: Vport) -> list[str]:
    """``show -s``'s counters, from the datapath's vport statistics.

    These count what the datapath saw on the port; ovs-dpctl asks the
    network device instead.  Counters a vport does not keep print ``?``,
    as ovs-dpctl prints them for tunnel ports.
    """
    s = vport.stats
    if s is None:
        return ["    (no statistics)"]
    lines = [
        f"    RX packets:{s.rx_packets} errors:{s.rx_errors} dropped:{s.rx_dropped}"
        " overruns:? frame:?",
        f"    TX packets:{s.tx_packets} errors:{s.tx_errors} dropped:{s.tx_dropped}"
        " aborted:? carrier:?",
        "    collisions:?",
        f"    RX bytes:{s.rx_bytes}{human_size(s.rx_bytes)}"
        f"  TX bytes:{s.tx_bytes}{human_size(s.tx_bytes)}",
    ]
    if vport.upcall_success is not None or vport.upcall_fail is not None:
        lines.append(
            f"    UPCALL packets:{_stat(vport.upcall_success)} errors:{_stat(vport.upcall_fail)}"
        )
    return lines


def _stat(value: int | None) -> str:
    return "?" if value is None else str(value)


def show_lines(
    dp: Datapath, ports: list[Vport], *, stats: bool = False, dpif_type: str = KERNEL_DPIF_TYPE
) -> Iterator[str]:
    """``ovs-dpctl show [-s]`` for one datapath.

    Also prints the mask cache's hit count, as newer Open vSwitch does.
    """
    yield f"{dpif_name(dp, dpif_type)}:"
    yield f"  lookups: hit:{dp.hit} missed:{dp.missed} lost:{dp.lost}"
    yield f"  flows: {dp.flows}"
    yield f"  masks: hit:{dp.mask_hit} total:{dp.masks} hit/pkt:{dp.masks_hit_per_packet:.2f}"
    yield f"  cache: hit:{dp.cache_hit} hit-rate:{dp.cache_hit_rate:.2f}%"
    if dp.masks_cache_size is not None:
        yield "  caches:"
        yield f"    masks-cache: size:{dp.masks_cache_size}"
    for vport in sorted(ports, key=lambda v: v.port_no or 0):
        yield port_line(vport)
        if stats:
            yield from port_stats_lines(vport)


# --- flows ----------------------------------------------------------------------

_TCP_FLAG_LETTERS = (
    (0x02, "S"),
    (0x01, "F"),
    (0x08, "P"),
    (0x04, "R"),
    (0x20, "U"),
    (0x10, "."),
    (0x40, "E"),
    (0x80, "C"),
    (0x100, "N"),
    (0x200, "[200]"),
    (0x400, "[400]"),
    (0x800, "[800]"),
)


def tcp_flags_text(flags: int) -> str:
    """tcpdump's letters, in OVS's order (``S.`` for SYN+ACK)."""
    if not flags:
        return "none"
    return "".join(letter for bit, letter in _TCP_FLAG_LETTERS if flags & bit)


def used_seconds(flow: Flow, now: int) -> float | None:
    """Seconds since the flow last matched a packet; None if it never did."""
    return (now - flow.used) / 1000 if flow.used else None


def stats_text(flow: Flow, now: int) -> str:
    """``packets:3, bytes:294, used:0.512s, flags:S.``."""
    used = used_seconds(flow, now)
    text = f"packets:{flow.packets}, bytes:{flow.bytes}, used:"
    text += "never" if used is None else f"{used:.3f}s"
    if flow.tcp_flags:
        text += f", flags:{tcp_flags_text(flow.tcp_flags)}"
    return text


def format_ufid(ufid: bytes) -> str:
    """``ufid:`` and the UUID whose four 32-bit words are the UFID's, as OVS prints it."""
    w0, w1, w2, w3 = struct.unpack("=4I", ufid)
    return (
        f"ufid:{w0:08x}-{w1 >> 16:04x}-{w1 & 0xFFFF:04x}-{w2 >> 16:04x}-{w2 & 0xFFFF:04x}{w3:08x}"
    )


_UFID_RE = re.compile(
    r"ufid:([0-9a-fA-F]{8})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-"
    r"([0-9a-fA-F]{4})([0-9a-fA-F]{8})"
)


def split_ufid(text: str) -> tuple[bytes | None, str]:
    """A leading ``ufid:UUID`` (and the comma or blank after it), and the rest.

    ``ufid:`` followed by anything but a UUID is a `ParseError`.
    """
    stripped = text.lstrip()
    if not stripped.startswith("ufid:"):
        return None, text
    m = _UFID_RE.match(stripped)
    if m is None:
        column = len(text) - len(stripped) + 6
        raise ParseError("expected a UUID after 'ufid:'", text, column)
    a, b, c, d, e, f = (int(g, 16) for g in m.groups())
    ufid = struct.pack("=4I", a, b << 16 | c, d << 16 | e, f)
    rest = stripped[m.end() :].lstrip(" \t")
    return ufid, rest[1:] if rest.startswith(",") else rest


_IN_PORT_RE = re.compile(r"(?<![\w])in_port\((\d+)\)")


def match_text(
    flow: Flow, *, verbose: bool = False, port_names: Mapping[int, str] | None = None
) -> str:
    """The flow's key and mask as dump-flows prints them (``-m``: ``verbose``)."""
    # Imported here, as in actions_text: the text codec is most of the start-up
    # of commands that print no flow (dp show, vport list).
    from odpctl.odp.text.keys import format_key

    text = format_key(flow.key, flow.mask if flow.mask is not None else None, verbose=verbose)
    if port_names:
        # format_key knows no port names; in_port(N) appears once, at the top.
        text = _IN_PORT_RE.sub(
            lambda m: f"in_port({port_names.get(int(m[1]), m[1])})", text, count=1
        )
    return text


def actions_text(flow: Flow, port_names: Mapping[int, str] | None = None) -> str:
    from odpctl.odp.text.actions import format_actions

    return format_actions(flow.actions, port_names or None)


def flow_line(
    flow: Flow,
    now: int,
    *,
    verbose: bool = False,
    port_names: Mapping[int, str] | None = None,
    match: str | None = None,
) -> str:
    """One line of ``ovs-dpctl dump-flows`` (``-m`` when ``verbose``); ``match``
    is the flow's `match_text` if the caller has it already."""
    parts = []
    if verbose and flow.ufid is not None:
        parts.append(format_ufid(flow.ufid))
    parts.append(match or match_text(flow, verbose=verbose, port_names=port_names))
    parts.append(stats_text(flow, now))
    if verbose:
        parts.append("dp:ovs")
    parts.append("actions:" + actions_text(flow, port_names))
    return ", ".join(parts)

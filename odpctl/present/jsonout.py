"""``--json``: the documented, stable JSON shape of datapaths, ports and flows.

The ``*_KEYS`` tables are the documentation (odpctl(1) prints them) and the
contract: tests check that each object has exactly these keys.  Keys are
only ever added, never renamed or removed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from odpctl.odp.datapath import Datapath
from odpctl.odp.uapi import DpFeature
from odpctl.odp.vport import Vport

if TYPE_CHECKING:
    from odpctl.odp.flow import Flow

from . import odptext

DATAPATH_KEYS: dict[str, str] = {
    "name": "datapath name",
    "type": 'where it lives: "system" (the kernel) or "userspace"',
    "ifindex": "interface index of its local port",
    "lookups": 'object: "hit", "missed", "lost" packet counts',
    "flows": "number of flows",
    "masks": 'object: "hit" (masks visited), "total" (masks in use), "hit_per_packet"',
    "cache": 'object: "hit" (mask cache hits), "hit_rate" (percent), "size" (entries, or null)',
    "features": 'negotiated user features, e.g. ["unaligned", "vport-pids"]',
    "upcall_pid": "netlink port of the local port's upcalls, or null",
    "ports": "(dp show only) the datapath's ports, as below",
}

PORT_KEYS: dict[str, str] = {
    "port_no": "port number",
    "name": "port (network device) name",
    "type": "netdev, internal, vxlan, geneve, gre, ...; an OVS tunnel device "
    "(vxlan_sys_4789) attached as a netdev shows its tunnel type",
    "vport_type": "the type the datapath reports (netdev for such tunnel devices)",
    "options": 'object of options, e.g. {"dst_port": "4790"}',
    "ifindex": "interface index of the device, or null",
    "upcall_pids": "netlink ports that receive the port's upcalls",
    "stats": 'object: "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", '
    '"tx_errors", "rx_dropped", "tx_dropped" as the datapath counts them, or null',
    "upcall": 'object: "success", "fail" upcall counts, or null where the kernel has none',
}

FLOW_KEYS: dict[str, str] = {
    "ufid": "the flow's unique id as a UUID, or null",
    "match": "key and mask in ODP syntax, as ovs-dpctl dump-flows prints them",
    "actions": "actions in ODP syntax",
    "in_port": "input port number, or null",
    "packets": "packets that matched",
    "bytes": "bytes that matched",
    "used": "seconds since the last packet, or null if none ever matched",
    "tcp_flags": 'TCP flags seen, as letters ("S." for SYN+ACK), or null',
}

RESULT_KEYS: dict[str, str] = {
    "datapath": "the datapath changed",
    "added": "flows added",
    "modified": "flows modified",
    "deleted": "flows deleted",
    "failed": "flows the datapath refused or that did not parse",
    "errors": 'list of objects: "line" (of --file, else null), "flow" (its text), '
    '"error" (message), "exit_code"',
    "flows": "(flow del) the deleted flows with their final statistics",
}

_FEATURE_NAMES = {
    DpFeature.UNALIGNED: "unaligned",
    DpFeature.VPORT_PIDS: "vport-pids",
    DpFeature.TC_RECIRC_SHARING: "tc-recirc-sharing",
    DpFeature.DISPATCH_UPCALL_PER_CPU: "dispatch-upcall-per-cpu",
}


def feature_names(features: DpFeature) -> list[str]:
    return [name for bit, name in _FEATURE_NAMES.items() if features & bit]


def datapath_json(
    dp: Datapath, *, dpif_type: str = odptext.KERNEL_DPIF_TYPE, ports: list[Vport] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": dp.name,
        "type": dpif_type,
        "ifindex": dp.ifindex,
        "lookups": {"hit": dp.hit, "missed": dp.missed, "lost": dp.lost},
        "flows": dp.flows,
        "masks": {
            "hit": dp.mask_hit,
            "total": dp.masks,
            "hit_per_packet": round(dp.masks_hit_per_packet, 4),
        },
        "cache": {
            "hit": dp.cache_hit,
            "hit_rate": round(dp.cache_hit_rate, 4),
            "size": dp.masks_cache_size,
        },
        "features": feature_names(dp.features),
        "upcall_pid": dp.upcall_pid,
    }
    if ports is not None:
        obj["ports"] = [port_json(v) for v in ports]
    return obj


def display_type(vport: Vport) -> str:
    kind = odptext.port_type(vport)
    return "netdev" if kind == "system" else kind


def port_json(vport: Vport) -> dict[str, Any]:
    return {
        "port_no": vport.port_no,
        "name": vport.name,
        "type": display_type(vport),
        "vport_type": vport.type_name,
        "options": odptext.effective_options(vport),
        "ifindex": vport.ifindex,
        "upcall_pids": list(vport.upcall_pids),
        "stats": vport.stats._asdict() if vport.stats is not None else None,
        "upcall": (
            {"success": vport.upcall_success, "fail": vport.upcall_fail}
            if vport.upcall_success is not None or vport.upcall_fail is not None
            else None
        ),
    }


def flow_json(
    flow: Flow,
    now: int,
    *,
    verbose: bool = False,
    port_names: Mapping[int, str] | None = None,
    match: str | None = None,
) -> dict[str, Any]:
    """A FLOW object; ``match`` is the flow's match text if the caller has it."""
    used = odptext.used_seconds(flow, now)
    return {
        "ufid": odptext.format_ufid(flow.ufid)[5:] if flow.ufid is not None else None,
        "match": match or odptext.match_text(flow, verbose=verbose, port_names=port_names),
        "actions": odptext.actions_text(flow, port_names),
        "in_port": flow.key.in_port,
        "packets": flow.packets,
        "bytes": flow.bytes,
        "used": round(used, 3) if used is not None else None,
        "tcp_flags": odptext.tcp_flags_text(flow.tcp_flags) if flow.tcp_flags else None,
    }


def emit(document: Mapping[str, Any]) -> None:
    """One JSON document on stdout; keys in the order they were built."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")

"""Vports: the ports of a datapath, as the ``ovs_vport`` family carries them."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from odpctl.errors import DecodeError
from odpctl.netlink.attrs import attr, attr_u16, attrs_to_dict, get_str, get_u32, iter_attrs
from odpctl.odp.uapi import TunnelOptAttr, VportAttr, VportType, VportUpcallAttr, VxlanExt

# Text names as ovs-dpctl prints and reads them.
VPORT_TYPE_NAMES: dict[VportType, str] = {
    VportType.NETDEV: "netdev",
    VportType.INTERNAL: "internal",
    VportType.GRE: "gre",
    VportType.VXLAN: "vxlan",
    VportType.GENEVE: "geneve",
    VportType.ERSPAN: "erspan",
    VportType.IP6ERSPAN: "ip6erspan",
    VportType.IP6GRE: "ip6gre",
    VportType.GTPU: "gtpu",
    VportType.BAREUDP: "bareudp",
    VportType.SRV6: "srv6",
}
VPORT_TYPES_BY_NAME = {name: kind for kind, name in VPORT_TYPE_NAMES.items()}

# The UDP port each tunnel type listens on unless told otherwise.
DEFAULT_DST_PORTS = {VportType.VXLAN: 4789, VportType.GENEVE: 6081}


class VportStats(NamedTuple):
    """struct ovs_vport_stats."""

    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_errors: int
    tx_errors: int
    rx_dropped: int
    tx_dropped: int


_VPORT_STATS = struct.Struct("=8Q")
_U64 = struct.Struct("=Q")


@dataclass(slots=True)
class Vport:
    """One port.  ``dst_port`` and ``vxlan_gbp`` are the tunnel options."""

    name: str
    type: VportType = VportType.NETDEV
    port_no: int | None = None
    dp_ifindex: int = 0
    dst_port: int | None = None
    vxlan_gbp: bool = False
    upcall_pids: tuple[int, ...] = field(default_factory=tuple)
    stats: VportStats | None = None
    ifindex: int | None = None
    netnsid: int | None = None
    upcall_success: int | None = None
    upcall_fail: int | None = None

    @property
    def type_name(self) -> str:
        return VPORT_TYPE_NAMES.get(self.type, f"type{int(self.type)}")

    def options(self) -> dict[str, str]:
        """Options as ovs-dpctl prints them (``dst_port=4789``)."""
        opts: dict[str, str] = {}
        if self.dst_port is not None:
            opts["dst_port"] = str(self.dst_port)
        if self.vxlan_gbp:
            opts["exts"] = "gbp"
        return opts


def encode_vport_options(vport: Vport) -> bytes | None:
    """OVS_VPORT_ATTR_OPTIONS for a tunnel port, None for other types."""
    if vport.type not in DEFAULT_DST_PORTS and vport.dst_port is None and not vport.vxlan_gbp:
        return None
    parts = []
    dst_port = vport.dst_port if vport.dst_port is not None else DEFAULT_DST_PORTS.get(vport.type)
    if dst_port is not None:
        parts.append(attr_u16(TunnelOptAttr.DST_PORT, dst_port))
    if vport.vxlan_gbp:
        parts.append(attr(TunnelOptAttr.EXTENSION, attr(VxlanExt.GBP, b"")))
    return attr(VportAttr.OPTIONS, b"".join(parts))


def decode_vport(dp_ifindex: int, data: bytes) -> Vport:
    attrs = attrs_to_dict(data)
    name = attrs.get(VportAttr.NAME)
    port_no = attrs.get(VportAttr.PORT_NO)
    kind = attrs.get(VportAttr.TYPE)
    if name is None or port_no is None or kind is None:
        raise DecodeError("vport reply without a name, number or type")
    kind_value = get_u32(kind)
    try:
        vport_type = VportType(kind_value)
    except ValueError:
        raise DecodeError(f"vport of unknown type {kind_value}") from None
    vport = Vport(get_str(name), vport_type, get_u32(port_no), dp_ifindex)
    try:
        options = attrs.get(VportAttr.OPTIONS)
        if options is not None:
            for opt, payload in iter_attrs(options):
                if opt == TunnelOptAttr.DST_PORT:
                    (vport.dst_port,) = struct.unpack("=H", payload)
                elif opt == TunnelOptAttr.EXTENSION:
                    vport.vxlan_gbp = any(ext == VxlanExt.GBP for ext, _ in iter_attrs(payload))
        pids = attrs.get(VportAttr.UPCALL_PID)
        if pids is not None:
            if len(pids) % 4:
                raise DecodeError(f"upcall PID array of {len(pids)} bytes")
            vport.upcall_pids = struct.unpack(f"={len(pids) // 4}I", pids)
        stats = attrs.get(VportAttr.STATS)
        if stats is not None:
            vport.stats = VportStats._make(_VPORT_STATS.unpack(stats))
        ifindex = attrs.get(VportAttr.IFINDEX)
        if ifindex is not None:
            vport.ifindex = get_u32(ifindex)
        netnsid = attrs.get(VportAttr.NETNSID)
        if netnsid is not None:
            vport.netnsid = struct.unpack("=i", netnsid)[0]
        upcall_stats = attrs.get(VportAttr.UPCALL_STATS)
        if upcall_stats is not None:
            for stat, payload in iter_attrs(upcall_stats):
                if stat == VportUpcallAttr.SUCCESS:
                    (vport.upcall_success,) = _U64.unpack(payload)
                elif stat == VportUpcallAttr.FAIL:
                    (vport.upcall_fail,) = _U64.unpack(payload)
    except struct.error as exc:
        raise DecodeError(f"malformed vport reply: {exc}") from None
    return vport

"""The ``ovs_datapath`` and ``ovs_vport`` families: datapaths and their ports.

`Registry` holds every datapath the server runs, and answers their
commands with the kernel's semantics (``net/openvswitch/datapath.c``):
which attributes are required, which errno each failure gets (a missing
datapath is ENODEV, a port number in use EBUSY, one past the limit EFBIG,
an unknown vport type EAFNOSUPPORT, port 0 cannot be deleted...), which
replies go to the requester and which to the multicast groups.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable

from odpctl.datapath.dp import Datapath
from odpctl.datapath.errors import RequestError
from odpctl.datapath.layout import DP_MAX_PORTS
from odpctl.datapath.ports import InternalPort, PacketSockets, Port, open_port
from odpctl.datapath.protocol import (
    POLICY_FLAG,
    POLICY_NESTED,
    POLICY_U32,
    DumpItems,
    Policy,
    Request,
    binary,
    get_string,
    string,
)
from odpctl.datapath.upcalls import Deliver
from odpctl.netlink.attrs import attr, attr_str, attr_u32, attr_u64, iter_attrs
from odpctl.netlink.message import encode_message
from odpctl.odp.header import odp_payload
from odpctl.odp.uapi import (
    VPORT_VERSION,
    DpAttr,
    DpCmd,
    DpFeature,
    TunnelOptAttr,
    VportAttr,
    VportCmd,
    VportType,
    VportUpcallAttr,
    VxlanExt,
)

IFNAMSIZ = 16
SUPPORTED_FEATURES = (
    DpFeature.UNALIGNED
    | DpFeature.VPORT_PIDS
    | DpFeature.TC_RECIRC_SHARING
    | DpFeature.DISPATCH_UPCALL_PER_CPU
)
MASKS_CACHE_MAX = 4096  # PCPU_MIN_UNIT_SIZE / sizeof(struct mask_cache_entry)
LOCAL_PORT = 0
# Why a TAP device could not be made that leaves a datapath usable without one.
_NO_TAP = (errno.EPERM, errno.EACCES, errno.ENOENT, errno.ENODEV, errno.ENXIO)

DP_POLICY: dict[int, Policy] = {
    DpAttr.NAME: string(IFNAMSIZ - 1),
    DpAttr.UPCALL_PID: POLICY_U32,
    DpAttr.USER_FEATURES: POLICY_U32,
    DpAttr.MASKS_CACHE_SIZE: POLICY_U32,
    DpAttr.PER_CPU_PIDS: binary(),
    DpAttr.IFINDEX: POLICY_U32,
}
VPORT_POLICY: dict[int, Policy] = {
    VportAttr.NAME: string(IFNAMSIZ - 1),
    VportAttr.STATS: binary(64),
    VportAttr.PORT_NO: POLICY_U32,
    VportAttr.TYPE: POLICY_U32,
    VportAttr.UPCALL_PID: binary(),
    VportAttr.OPTIONS: POLICY_NESTED,
    VportAttr.IFINDEX: POLICY_U32,
    VportAttr.NETNSID: POLICY_U32,
    VportAttr.UPCALL_STATS: POLICY_FLAG,
}

_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_DP_STATS = struct.Struct("=QQQQ")
_MEGAFLOW_STATS = struct.Struct("=QI4xQ8x")
_VPORT_STATS = struct.Struct("=8Q")


def _u32(payload: bytes) -> int:
    value: int = _U32.unpack(payload)[0]
    return value


# The kernel keeps at most one upcall PID per CPU, per port and per datapath.
NR_CPUS = os.cpu_count() or 1


def _pids(payload: bytes) -> tuple[int, ...]:
    if not payload or len(payload) % 4:
        raise RequestError(errno.EINVAL, f"upcall PID array of {len(payload)} bytes")
    return struct.unpack(f"={len(payload) // 4}I", payload)


def _port_pids(payload: bytes) -> tuple[int, ...]:
    pids = _pids(payload)
    if len(pids) > NR_CPUS:
        raise RequestError(errno.EINVAL, f"{len(pids)} upcall PIDs for {NR_CPUS} CPUs")
    return pids


class Registry:
    """The datapaths of one server, and the commands of the dp and vport families."""

    def __init__(
        self,
        deliver: Deliver,
        packet_family: int,
        dp_group: int,
        vport_group: int,
        watch: Callable[[Port], None],
        unwatch: Callable[[Port], None],
        notify: Callable[[int, bytes], None],
        vport_family: int,
    ) -> None:
        self.by_name: dict[str, Datapath] = {}
        self.by_ifindex: dict[int, Datapath] = {}
        # Vport names are unique per host (network namespace), across datapaths.
        self.ports_by_name: dict[str, tuple[Datapath, Port]] = {}
        self._deliver = deliver
        self._packet_family = packet_family
        self._vport_family = vport_family
        self._dp_group = dp_group
        self._vport_group = vport_group
        self._watch = watch
        self._unwatch = unwatch
        self._notify = notify
        self.sockets = PacketSockets()

    # --- lookups ----------------------------------------------------------------

    def datapath(self, ifindex: int) -> Datapath:
        dp = self.by_ifindex.get(ifindex)
        if dp is None:
            raise RequestError(errno.ENODEV, f"no datapath with ifindex {ifindex}")
        return dp

    def _lookup_dp(self, req: Request) -> Datapath:
        name = req.attrs.get(DpAttr.NAME)
        if name is not None:
            dp = self.by_name.get(get_string(name))
            if dp is None:
                raise RequestError(errno.ENODEV, f"no datapath named {get_string(name)}")
            return dp
        return self.datapath(req.dp_ifindex)

    def _lookup_vport(self, req: Request) -> tuple[Datapath, Port]:
        name = req.attrs.get(VportAttr.NAME)
        if name is not None:
            found = self.ports_by_name.get(get_string(name))
            if found is None:
                raise RequestError(errno.ENODEV, f"no port named {get_string(name)}")
            if req.dp_ifindex and req.dp_ifindex != found[0].ifindex:
                raise RequestError(errno.ENODEV, f"port {get_string(name)} is in another datapath")
            return found
        port_no = req.attrs.get(VportAttr.PORT_NO)
        if port_no is None:
            raise RequestError(errno.EINVAL, "name the port by name or number")
        number = _u32(port_no)
        if number >= DP_MAX_PORTS:
            raise RequestError(errno.EFBIG, f"port number {number} is beyond the maximum")
        dp = self.datapath(req.dp_ifindex)
        port = dp.ports.get(number)
        if port is None:
            raise RequestError(errno.ENODEV, f"no port {number} in datapath {dp.name}")
        return dp, port

    # --- replies ------------------------------------------------------------------

    @staticmethod
    def dp_attrs(dp: Datapath) -> bytes:
        parts = [
            attr_str(DpAttr.NAME, dp.name),
            attr(DpAttr.STATS, _DP_STATS.pack(dp.hit, dp.missed, dp.lost, len(dp.table))),
            attr(
                DpAttr.MEGAFLOW_STATS,
                _MEGAFLOW_STATS.pack(dp.table.mask_hit, dp.table.n_masks, dp.table.cache_hit),
            ),
            attr_u32(DpAttr.USER_FEATURES, int(dp.features)),
            attr_u32(DpAttr.MASKS_CACHE_SIZE, dp.masks_cache_size),
        ]
        if dp.features & DpFeature.DISPATCH_UPCALL_PER_CPU and dp.per_cpu_pids:
            parts.append(
                attr(
                    DpAttr.PER_CPU_PIDS, struct.pack(f"={len(dp.per_cpu_pids)}I", *dp.per_cpu_pids)
                )
            )
        return b"".join(parts)

    @staticmethod
    def vport_attrs(port: Port) -> bytes:
        parts = [
            attr_u32(VportAttr.PORT_NO, port.port_no),
            attr_u32(VportAttr.TYPE, int(port.type)),
            attr_str(VportAttr.NAME, port.name),
        ]
        if port.ifindex is not None and port.type in (VportType.NETDEV, VportType.INTERNAL):
            parts.append(attr_u32(VportAttr.IFINDEX, port.ifindex))
        parts.append(attr(VportAttr.STATS, _VPORT_STATS.pack(*port.stats())))
        parts.append(
            attr(
                VportAttr.UPCALL_STATS,
                attr_u64(VportUpcallAttr.SUCCESS, port.upcall_success)
                + attr_u64(VportUpcallAttr.FAIL, port.upcall_fail),
            )
        )
        parts.append(
            attr(VportAttr.UPCALL_PID, struct.pack(f"={len(port.upcall_pids)}I", *port.upcall_pids))
        )
        if port.dst_port is not None:
            options = attr(TunnelOptAttr.DST_PORT, _U16.pack(port.dst_port))
            if port.vxlan_gbp:
                options += attr(TunnelOptAttr.EXTENSION, attr(VxlanExt.GBP, b""))
            parts.append(attr(VportAttr.OPTIONS, options))
        return b"".join(parts)

    # --- datapath commands ------------------------------------------------------

    def dp_new(self, req: Request) -> None:
        attrs = req.attrs
        if DpAttr.NAME not in attrs or DpAttr.UPCALL_PID not in attrs:
            raise RequestError(errno.EINVAL, "a new datapath needs a name and an upcall PID")
        name = get_string(attrs[DpAttr.NAME])
        if name in self.by_name or name in self.ports_by_name:
            raise RequestError(errno.EEXIST, f"datapath {name} exists")
        dp = Datapath(name, self._deliver, self._packet_family, self._port_gone)
        self._change(dp, req)
        try:
            local = InternalPort(dp, name, LOCAL_PORT)
        except OSError as e:
            if e.errno not in _NO_TAP:
                raise RequestError(
                    e.errno or errno.EINVAL, f"datapath {name}: {e.strerror}"
                ) from None
            # Without CAP_NET_ADMIN or /dev/net/tun the datapath still works,
            # with a local port that is only a number.
            local = InternalPort(dp, name, LOCAL_PORT, device=False)
        local.upcall_pids = (_u32(attrs[DpAttr.UPCALL_PID]),)
        dp.ifindex = local.ifindex or 0
        self._add_port(dp, local)
        self.by_name[name] = dp
        self.by_ifindex[dp.ifindex] = dp
        self.sockets.prepare()  # for its first netdev port
        req.announce(self._dp_group, DpCmd.NEW, dp.ifindex, self.dp_attrs(dp))

    def _change(self, dp: Datapath, req: Request) -> None:
        """ovs_dp_change: features (absent means none), cache size, per-CPU PIDs."""
        attrs = req.attrs
        features = _u32(attrs[DpAttr.USER_FEATURES]) if DpAttr.USER_FEATURES in attrs else 0
        if features & ~int(SUPPORTED_FEATURES):
            raise RequestError(errno.EOPNOTSUPP, f"unknown datapath features {features:#x}")
        if DpAttr.MASKS_CACHE_SIZE in attrs:
            size = _u32(attrs[DpAttr.MASKS_CACHE_SIZE])
            if size & (size - 1) or size > MASKS_CACHE_MAX:
                raise RequestError(
                    errno.EINVAL,
                    f"masks cache size {size} is not a power of 2 up to {MASKS_CACHE_MAX}",
                )
            dp.masks_cache_size = size
        dp.features = DpFeature(features)
        if features & DpFeature.DISPATCH_UPCALL_PER_CPU and DpAttr.PER_CPU_PIDS in attrs:
            dp.per_cpu_pids = _pids(attrs[DpAttr.PER_CPU_PIDS])[:NR_CPUS]

    def dp_get(self, req: Request) -> None:
        dp = self._lookup_dp(req)
        req.reply(DpCmd.GET, dp.ifindex, self.dp_attrs(dp))

    def dp_set(self, req: Request) -> None:
        dp = self._lookup_dp(req)
        self._change(dp, req)
        req.announce(self._dp_group, DpCmd.SET, dp.ifindex, self.dp_attrs(dp))

    def dp_del(self, req: Request) -> None:
        dp = self._lookup_dp(req)
        attrs = self.dp_attrs(dp)
        self.destroy(dp)
        req.announce(self._dp_group, DpCmd.DEL, dp.ifindex, attrs)

    def dp_dump(self, _req: Request) -> DumpItems:
        for dp in list(self.by_name.values()):
            yield DpCmd.GET, dp.ifindex, self.dp_attrs(dp)

    def destroy(self, dp: Datapath) -> None:
        for port in list(dp.ports.values()):
            self._remove_port(dp, port)
        dp.close()
        self.by_name.pop(dp.name, None)
        self.by_ifindex.pop(dp.ifindex, None)

    def close(self) -> None:
        for dp in list(self.by_name.values()):
            self.destroy(dp)
        self.sockets.close()

    # --- vport commands ------------------------------------------------------------

    def _add_port(self, dp: Datapath, port: Port) -> None:
        dp.ports[port.port_no] = port
        self.ports_by_name[port.name] = (dp, port)
        self._watch(port)

    def _remove_port(self, dp: Datapath, port: Port) -> None:
        dp.forget(port)
        self._unwatch(port)
        port.close()
        dp.ports.pop(port.port_no, None)
        self.ports_by_name.pop(port.name, None)

    def _port_gone(self, dp: Datapath, port: Port, _reason: str) -> None:
        """A port's device disappeared: detach it and say so, as the kernel does."""
        if dp.ports.get(port.port_no) is not port:
            return
        attrs = self.vport_attrs(port)
        self._remove_port(dp, port)
        payload = odp_payload(VportCmd.DEL, VPORT_VERSION, dp.ifindex, attrs)
        self._notify(self._vport_group, encode_message(self._vport_family, 0, 0, 0, payload))

    def vport_new(self, req: Request) -> None:
        attrs = req.attrs
        if (
            VportAttr.NAME not in attrs
            or VportAttr.TYPE not in attrs
            or (VportAttr.UPCALL_PID not in attrs)
        ):
            raise RequestError(errno.EINVAL, "a new port needs a name, a type and upcall PIDs")
        name = get_string(attrs[VportAttr.NAME])
        kind_value = _u32(attrs[VportAttr.TYPE])
        if VportAttr.IFINDEX in attrs and kind_value != VportType.INTERNAL:
            raise RequestError(errno.EOPNOTSUPP, "only internal ports take an ifindex")
        # Port number 0 asks for the lowest free one, as in the kernel.
        port_no = _u32(attrs[VportAttr.PORT_NO]) if VportAttr.PORT_NO in attrs else 0
        if port_no >= DP_MAX_PORTS:
            raise RequestError(errno.EFBIG, f"port number {port_no} is beyond the maximum")
        dp = self.datapath(req.dp_ifindex)
        if port_no:
            if port_no in dp.ports:
                raise RequestError(errno.EBUSY, f"port number {port_no} is in use")
        else:
            port_no = 1
            while port_no in dp.ports:
                port_no += 1
            if port_no >= DP_MAX_PORTS:
                raise RequestError(errno.EFBIG, "no free port number")
        pids = _port_pids(attrs[VportAttr.UPCALL_PID])
        if name in self.ports_by_name:
            raise RequestError(errno.EEXIST, f"{name} is a port already")
        try:
            kind = VportType(kind_value)
        except ValueError:
            raise RequestError(errno.EAFNOSUPPORT, f"unknown vport type {kind_value}") from None
        dst_port, gbp = self._tunnel_options(kind, attrs.get(VportAttr.OPTIONS))
        try:
            port = open_port(dp, kind, name, port_no, dst_port, gbp, self.sockets)
        except OSError as e:
            err = e.errno or errno.EINVAL
            raise RequestError(err, f"port {name}: {e.strerror or e}") from None
        port.upcall_pids = pids
        self._add_port(dp, port)
        req.announce(self._vport_group, VportCmd.NEW, dp.ifindex, self.vport_attrs(port))

    @staticmethod
    def _tunnel_options(kind: VportType, options: bytes | None) -> tuple[int | None, bool]:
        if kind not in (VportType.VXLAN, VportType.GENEVE):
            return None, False
        dst_port = None
        gbp = False
        for opt, payload in iter_attrs(options or b""):
            if opt == TunnelOptAttr.DST_PORT and len(payload) == 2:
                dst_port = _U16.unpack(payload)[0]
            elif opt == TunnelOptAttr.EXTENSION and kind == VportType.VXLAN:
                gbp = any(ext == VxlanExt.GBP for ext, _ in iter_attrs(payload))
        if dst_port is None:
            raise RequestError(errno.EINVAL, "a tunnel port needs its UDP destination port")
        return dst_port, gbp

    def vport_get(self, req: Request) -> None:
        dp, port = self._lookup_vport(req)
        req.reply(VportCmd.GET, dp.ifindex, self.vport_attrs(port))

    def vport_set(self, req: Request) -> None:
        dp, port = self._lookup_vport(req)
        attrs = req.attrs
        if VportAttr.TYPE in attrs and _u32(attrs[VportAttr.TYPE]) != port.type:
            raise RequestError(errno.EINVAL, "a port's type cannot change")
        if VportAttr.OPTIONS in attrs:
            raise RequestError(errno.EOPNOTSUPP, "a port's options cannot change")
        if VportAttr.UPCALL_PID in attrs:
            port.upcall_pids = _port_pids(attrs[VportAttr.UPCALL_PID])
        req.announce(self._vport_group, VportCmd.SET, dp.ifindex, self.vport_attrs(port))

    def vport_del(self, req: Request) -> None:
        dp, port = self._lookup_vport(req)
        if port.port_no == LOCAL_PORT:
            raise RequestError(errno.EINVAL, "the local port goes only with its datapath")
        attrs = self.vport_attrs(port)
        self._remove_port(dp, port)
        req.announce(self._vport_group, VportCmd.DEL, dp.ifindex, attrs)

    def vport_dump(self, req: Request) -> DumpItems:
        dp = self.datapath(req.dp_ifindex)
        for port_no in sorted(dp.ports):
            port = dp.ports.get(port_no)
            if port is not None:
                yield VportCmd.GET, dp.ifindex, self.vport_attrs(port)

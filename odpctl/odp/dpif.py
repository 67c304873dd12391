"""The datapath interface: datapaths, vports, flows, packets and upcalls.

`Dpif` is the library's front door, go-odp's surface and more.  It speaks
the four ODP generic-netlink families over one connection from an
`Endpoint` (the kernel, or a userspace datapath's socket, in any network
namespace) and returns typed objects; every failure is a typed `OdpError`.

    with Dpif.open() as dpif:
        dp = dpif.create_datapath("dp0")
        dpif.add_vport(dp, Vport("veth0"))
        for flow in dpif.dump_flows(dp):
            ...
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Self

from odpctl.errors import DatapathUnavailableError, NotFoundError, OdpError, UsageError
from odpctl.netlink.attrs import attr, attr_str, attr_u32
from odpctl.netlink.genl import Family, resolve_family
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, Message
from odpctl.odp.datapath import Datapath, decode_datapath, encode_pids
from odpctl.odp.endpoint import NO_DATAPATH_HINT, Endpoint, resolve_endpoint
from odpctl.odp.header import ODP_HEADER_SIZE, odp_payload, split_odp
from odpctl.odp.uapi import (
    DATAPATH_FAMILY,
    FLOW_FAMILY,
    PACKET_FAMILY,
    VPORT_FAMILY,
    DpAttr,
    DpCmd,
    DpFeature,
    FlowAttr,
    FlowCmd,
    PacketCmd,
    VportAttr,
    VportCmd,
    VportType,
)
from odpctl.odp.vport import Vport, decode_vport, encode_vport_options

# The flow and packet codec (keys, actions) is imported by the methods that
# use it: it is most of the library's import time, which a client that never
# touches a flow (`odpctl dp show`, `vport list`) should not pay at start-up.
if TYPE_CHECKING:
    from odpctl.odp.flow import Flow
    from odpctl.odp.keys import FlowKey
    from odpctl.odp.packet import Execute
    from odpctl.odp.upcalls import UpcallChannel, VportEvents

# A datapath named by name, by ifindex, or by a Datapath from this library.
DpRef = str | int | Datapath
# A vport named by name or by port number.
PortRef = str | int

# Requests per window of the batches whose requests are answered only if they
# fail (flow add/modify/delete without echo, packet execution): the window is
# one ACK to wait for, and must leave room in the socket's default receive
# buffer (~208 KiB) for all of it to fail.  An error is ~830 bytes of it with
# NETLINK_CAP_ACK, ~1.3 KiB on a kernel that echoes the whole request.
QUIET_BATCH_WINDOW = 128

# One request of a batch (`Dpif.operate`): generic netlink family id, flags, payload.
Op = tuple[int, int, bytes]

# What Open vSwitch asks for; per-CPU dispatch is added when PIDs are given.
DEFAULT_FEATURES = DpFeature.UNALIGNED | DpFeature.VPORT_PIDS


class Dpif:
    """A client of one datapath endpoint (kernel or userspace)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._conn = endpoint.connect()
        try:
            self._dp_family = self._family(DATAPATH_FAMILY)
            self._vport_family = self._family(VPORT_FAMILY)
            self._flow_family = self._family(FLOW_FAMILY)
            self._packet_family = self._family(PACKET_FAMILY)
        except BaseException:
            self._conn.close()
            raise
        self._ifindex_by_name: dict[str, int] = {}

    @classmethod
    def open(cls, datapath: str | None = None, *, netns: str | None = None) -> Self:
        """Open the datapath endpoint named by ``datapath`` (see resolve_endpoint)."""
        return cls(resolve_endpoint(datapath, netns_name=netns))

    def _family(self, name: str) -> Family:
        try:
            return resolve_family(self._conn, name)
        except NotFoundError:
            raise DatapathUnavailableError(
                f"generic netlink family '{name}' not found on the {self.endpoint.describe()}",
                hint=NO_DATAPATH_HINT,
            ) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------

    def _request(
        self, family: Family, cmd: int, dp_ifindex: int, attrs: bytes, flags: int, what: str
    ) -> list[Message]:
        payload = odp_payload(cmd, family.version, dp_ifindex, attrs)
        return self._conn.request(family.id, flags, payload, what)

    def _dump(
        self, family: Family, cmd: int, dp_ifindex: int, attrs: bytes, what: str
    ) -> Iterator[Message]:
        payload = odp_payload(cmd, family.version, dp_ifindex, attrs)
        return self._conn.dump(family.id, payload, what)

    def dp_ifindex(self, dp: DpRef) -> int:
        """The ifindex that names ``dp`` in flow, vport and packet requests."""
        if isinstance(dp, Datapath):
            return dp.ifindex
        if isinstance(dp, int):
            return dp
        ifindex = self._ifindex_by_name.get(dp)
        if ifindex is None:
            ifindex = self.get_datapath(dp).ifindex
        return ifindex

    # --- datapaths ------------------------------------------------------------

    def create_datapath(
        self,
        name: str,
        *,
        upcall_pid: int = 0,
        features: DpFeature = DEFAULT_FEATURES,
        per_cpu_pids: Iterable[int] | None = None,
    ) -> Datapath:
        """Create a datapath; its local port gets ``upcall_pid``.

        Features the kernel does not offer are dropped one by one (the
        kernel answers EOPNOTSUPP for a bit it does not know), so the
        returned Datapath's ``features`` say what was negotiated.
        """
        pids = tuple(per_cpu_pids) if per_cpu_pids is not None else ()
        if pids:
            features |= DpFeature.DISPATCH_UPCALL_PER_CPU
        what = f"create datapath {name}"
        while True:
            attrs = [
                attr_str(DpAttr.NAME, name),
                attr_u32(DpAttr.UPCALL_PID, upcall_pid),
                attr_u32(DpAttr.USER_FEATURES, int(features)),
            ]
            if features & DpFeature.DISPATCH_UPCALL_PER_CPU:
                attrs.append(attr(DpAttr.PER_CPU_PIDS, encode_pids(pids)))
            try:
                replies = self._request(
                    self._dp_family, DpCmd.NEW, 0, b"".join(attrs), NLM_F_ECHO, what
                )
                break
            except OdpError as exc:
                fewer = _drop_newest_feature(features)
                if exc.errno != errno.EOPNOTSUPP or fewer == features:
                    raise
                features = fewer
        return self._datapath_reply(replies, what)

    def _datapath_reply(self, replies: list[Message], what: str) -> Datapath:
        for message in replies:
            _cmd, ifindex, attrs = split_odp(message.payload)
            dp = decode_datapath(ifindex, attrs)
            self._ifindex_by_name[dp.name] = dp.ifindex
            return dp
        raise OdpError(f"{what}: the datapath sent no reply")

    def get_datapath(self, dp: DpRef) -> Datapath:
        name_attr, ifindex = self._dp_selector(dp)
        what = f"datapath {dp if not isinstance(dp, Datapath) else dp.name}"
        try:
            replies = self._request(self._dp_family, DpCmd.GET, ifindex, name_attr, 0, what)
        except NotFoundError as exc:
            raise NotFoundError(
                f"no datapath {_describe(dp)}",
                errno=exc.errno,
                hint="see `odpctl dp list`",
            ) from None
        return self._datapath_reply(replies, what)

    def _dp_selector(self, dp: DpRef) -> tuple[bytes, int]:
        if isinstance(dp, str):
            return attr_str(DpAttr.NAME, dp), 0
        return b"", self.dp_ifindex(dp)

    def list_datapaths(self) -> list[Datapath]:
        dps = []
        for message in self._dump(self._dp_family, DpCmd.GET, 0, b"", "list datapaths"):
            _cmd, ifindex, attrs = split_odp(message.payload)
            dp = decode_datapath(ifindex, attrs)
            self._ifindex_by_name[dp.name] = dp.ifindex
            dps.append(dp)
        return dps

    def delete_datapath(self, dp: DpRef) -> None:
        name_attr, ifindex = self._dp_selector(dp)
        try:
            self._request(self._dp_family, DpCmd.DEL, ifindex, name_attr, 0, f"delete {dp}")
        except NotFoundError as exc:
            raise NotFoundError(
                f"no datapath {_describe(dp)}", errno=exc.errno, hint="see `odpctl dp list`"
            ) from None
        if isinstance(dp, str):
            self._ifindex_by_name.pop(dp, None)

    def set_datapath(
        self,
        dp: DpRef,
        *,
        features: DpFeature | None = None,
        per_cpu_pids: Iterable[int] | None = None,
        masks_cache_size: int | None = None,
        upcall_pid: int | None = None,
    ) -> Datapath:
        name_attr, ifindex = self._dp_selector(dp)
        attrs = [name_attr]
        if features is None:
            # The kernel takes the features of every SET as the new ones, so
            # leaving them out would clear them: send the current ones back.
            features = self.get_datapath(dp).features
        attrs.append(attr_u32(DpAttr.USER_FEATURES, int(features)))
        if per_cpu_pids is not None:
            attrs.append(attr(DpAttr.PER_CPU_PIDS, encode_pids(tuple(per_cpu_pids))))
        if masks_cache_size is not None:
            attrs.append(attr_u32(DpAttr.MASKS_CACHE_SIZE, masks_cache_size))
        if upcall_pid is not None:
            attrs.append(attr_u32(DpAttr.UPCALL_PID, upcall_pid))
        what = f"set datapath {_describe(dp)}"
        replies = self._request(
            self._dp_family, DpCmd.SET, ifindex, b"".join(attrs), NLM_F_ECHO, what
        )
        return self._datapath_reply(replies, what)

    # --- vports -----------------------------------------------------------------

    def add_vport(self, dp: DpRef, vport: Vport) -> Vport:
        """Add ``vport`` (name, type, options, optional number and upcall PIDs)."""
        ifindex = self.dp_ifindex(dp)
        attrs = [
            attr_str(VportAttr.NAME, vport.name),
            attr_u32(VportAttr.TYPE, int(vport.type)),
            attr(VportAttr.UPCALL_PID, encode_pids(vport.upcall_pids or (0,))),
        ]
        if vport.port_no is not None:
            attrs.append(attr_u32(VportAttr.PORT_NO, vport.port_no))
        options = encode_vport_options(vport)
        if options is not None:
            attrs.append(options)
        what = f"add port {vport.name} to {_describe(dp)}"
        replies = self._request(
            self._vport_family,
            VportCmd.NEW,
            ifindex,
            b"".join(attrs),
            NLM_F_ECHO | NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
        return self._vport_reply(replies, what)

    def _vport_reply(self, replies: list[Message], what: str) -> Vport:
        for message in replies:
            _cmd, ifindex, attrs = split_odp(message.payload)
            return decode_vport(ifindex, attrs)
        raise OdpError(f"{what}: the datapath sent no reply")

    def _port_selector(self, port: PortRef) -> bytes:
        if isinstance(port, str):
            return attr_str(VportAttr.NAME, port)
        return attr_u32(VportAttr.PORT_NO, port)

    def get_vport(self, dp: DpRef, port: PortRef) -> Vport:
        # A port looked up by name needs no datapath: names are unique per host.
        ifindex = 0 if isinstance(port, str) else self.dp_ifindex(dp)
        what = f"port {port} of {_describe(dp)}"
        try:
            replies = self._request(
                self._vport_family, VportCmd.GET, ifindex, self._port_selector(port), 0, what
            )
        except NotFoundError as exc:
            raise NotFoundError(
                f"no port {port} in datapath {_describe(dp)}",
                errno=exc.errno,
                hint=f"see `odpctl vport list {_describe(dp)}`",
            ) from None
        return self._vport_reply(replies, what)

    def list_vports(self, dp: DpRef) -> list[Vport]:
        ifindex = self.dp_ifindex(dp)
        vports = []
        for message in self._dump(
            self._vport_family, VportCmd.GET, ifindex, b"", f"list ports of {_describe(dp)}"
        ):
            _cmd, dp_ifindex, attrs = split_odp(message.payload)
            vports.append(decode_vport(dp_ifindex, attrs))
        vports.sort(key=lambda v: v.port_no or 0)
        return vports

    def delete_vport(self, dp: DpRef, port: PortRef) -> None:
        ifindex = 0 if isinstance(port, str) else self.dp_ifindex(dp)
        what = f"delete port {port} of {_describe(dp)}"
        try:
            self._request(
                self._vport_family, VportCmd.DEL, ifindex, self._port_selector(port), 0, what
            )
        except NotFoundError as exc:
            raise NotFoundError(
                f"no port {port} in datapath {_describe(dp)}", errno=exc.errno
            ) from None

    def set_vport(
        self,
        dp: DpRef,
        port: PortRef,
        *,
        upcall_pids: Iterable[int] | None = None,
        type_: VportType | None = None,
    ) -> Vport:
        ifindex = 0 if isinstance(port, str) else self.dp_ifindex(dp)
        attrs = [self._port_selector(port)]
        if type_ is not None:
            attrs.append(attr_u32(VportAttr.TYPE, int(type_)))
        if upcall_pids is not None:
            attrs.append(attr(VportAttr.UPCALL_PID, encode_pids(tuple(upcall_pids))))
        what = f"set port {port} of {_describe(dp)}"
        replies = self._request(
            self._vport_family, VportCmd.SET, ifindex, b"".join(attrs), NLM_F_ECHO, what
        )
        return self._vport_reply(replies, what)

    # --- flows ------------------------------------------------------------------

    def add_flow(self, dp: DpRef, flow: Flow, *, replace: bool = False) -> None:
        """Install ``flow``.

        Create-only by default: an identical or overlapping flow makes the
        datapath answer EEXIST (`AlreadyExistsError`).  ``replace=True``
        upserts: an existing flow with the same key gets the new actions.
        """
        from odpctl.odp.flow import encode_flow_attrs

        self._request(
            self._flow_family,
            FlowCmd.NEW,
            self.dp_ifindex(dp),
            encode_flow_attrs(flow),
            _new_flow_flags(replace),
            "add flow",
        )

    def add_flows(
        self, dp: DpRef, flows: Iterable[Flow], *, replace: bool = False
    ) -> list[OdpError | None]:
        """Install many flows in batches; one result per flow, None for success."""
        return self._flow_batch(dp, FlowCmd.NEW, flows, replace=replace)

    def modify_flow(self, dp: DpRef, flow: Flow, *, clear_stats: bool = False) -> None:
        """Replace the actions of the existing flow with ``flow``'s key."""
        from odpctl.odp.flow import encode_flow_attrs

        self._request(
            self._flow_family,
            FlowCmd.SET,
            self.dp_ifindex(dp),
            encode_flow_attrs(flow, clear=clear_stats),
            0,
            "modify flow",
        )

    def modify_flows(
        self, dp: DpRef, flows: Iterable[Flow], *, clear_stats: bool = False
    ) -> list[OdpError | None]:
        return self._flow_batch(dp, FlowCmd.SET, flows, clear=clear_stats)

    def delete_flows(self, dp: DpRef, flows: Iterable[Flow]) -> list[OdpError | None]:
        return self._flow_batch(dp, FlowCmd.DEL, flows)

    def _flow_batch(
        self,
        dp: DpRef,
        cmd: FlowCmd,
        flows: Iterable[Flow],
        *,
        replace: bool = False,
        clear: bool = False,
    ) -> list[OdpError | None]:
        from odpctl.odp.flow import encode_flow_attrs

        ifindex = self.dp_ifindex(dp)
        fam = self._flow_family
        flags = _new_flow_flags(replace) if cmd == FlowCmd.NEW else 0
        with_actions = cmd != FlowCmd.DEL
        head = odp_payload(cmd, fam.version, ifindex, b"")  # the same for every flow
        family_id = fam.id
        requests = [
            (family_id, flags, head + encode_flow_attrs(flow, actions=with_actions, clear=clear))
            for flow in flows
        ]
        results = self._conn.batch(
            requests, f"{cmd.name.lower()} flows", window=QUIET_BATCH_WINDOW, ack_each=False
        )
        return [r if isinstance(r, OdpError) else None for r in results]

    def get_flow(self, dp: DpRef, key: FlowKey | None = None, *, ufid: bytes | None = None) -> Flow:
        """The flow with exactly ``key`` (or with ``ufid``), with its stats."""
        replies = self._request(
            self._flow_family,
            FlowCmd.GET,
            self.dp_ifindex(dp),
            _flow_selector(key, ufid),
            0,
            "get flow",
        )
        return _flow_reply(replies)

    def delete_flow(
        self, dp: DpRef, key: FlowKey | None = None, *, ufid: bytes | None = None
    ) -> Flow:
        """Delete one flow; returns it with its final statistics."""
        replies = self._request(
            self._flow_family,
            FlowCmd.DEL,
            self.dp_ifindex(dp),
            _flow_selector(key, ufid),
            NLM_F_ECHO,
            "delete flow",
        )
        return _flow_reply(replies)

    def flush_flows(self, dp: DpRef) -> None:
        """Delete every flow of the datapath."""
        self._request(self._flow_family, FlowCmd.DEL, self.dp_ifindex(dp), b"", 0, "flush flows")

    def dump_flows(self, dp: DpRef) -> Iterator[Flow]:
        """Every flow with key, mask, actions and statistics, as they stream in."""
        from odpctl.odp.flow import decode_flow_attrs

        with contextlib.closing(self.dump_flow_attrs(dp)) as raw:
            for payload, start in raw:
                yield decode_flow_attrs(payload, start)

    def dump_flow_attrs(self, dp: DpRef) -> Generator[tuple[bytes, int], None, None]:
        """Every flow undecoded, as it streams in: its message's payload and the
        offset of its OVS_FLOW_ATTR_* attributes there.  For a reader that needs
        only a few of them (a revalidator: the key's bytes, stats, used) and
        would waste most of a full decode."""
        what = f"dump flows of {_describe(dp)}"
        for message in self._dump(self._flow_family, FlowCmd.GET, self.dp_ifindex(dp), b"", what):
            payload = message.payload
            if len(payload) < ODP_HEADER_SIZE:
                split_odp(payload)  # raises the DecodeError
            yield payload, ODP_HEADER_SIZE

    # --- packets and upcalls ----------------------------------------------------

    def execute(self, dp: DpRef, request: Execute) -> None:
        """Run a packet through actions; the datapath's error is raised here."""
        from odpctl.odp.packet import encode_execute

        self._request(
            self._packet_family,
            PacketCmd.EXECUTE,
            self.dp_ifindex(dp),
            encode_execute(request),
            0,
            "execute packet",
        )

    def execute_many(self, dp: DpRef, requests: Iterable[Execute]) -> list[OdpError | None]:
        from odpctl.odp.packet import encode_execute

        ifindex = self.dp_ifindex(dp)
        fam = self._packet_family
        batch = [
            (fam.id, 0, odp_payload(PacketCmd.EXECUTE, fam.version, ifindex, encode_execute(r)))
            for r in requests
        ]
        results = self._conn.batch(
            batch, "execute packets", window=QUIET_BATCH_WINDOW, ack_each=False
        )
        return [r if isinstance(r, OdpError) else None for r in results]

    # --- batched operations ------------------------------------------------------
    #
    # A miss handler decides a whole round of misses, then sends their flow
    # puts, packet executes (and a flush, when a MAC moved) in one batch:
    # a datagram per window, one ACK per window (see `NetlinkConnection.batch`).

    def put_op(self, dp: DpRef, flow: Flow, *, replace: bool = False) -> Op:
        """A flow install for `operate` (``replace``: an upsert, as `add_flow`)."""
        from odpctl.odp.flow import encode_flow_attrs

        fam = self._flow_family
        payload = odp_payload(
            FlowCmd.NEW, fam.version, self.dp_ifindex(dp), encode_flow_attrs(flow)
        )
        return fam.id, _new_flow_flags(replace), payload

    def execute_op(self, dp: DpRef, request: Execute) -> Op:
        """A packet execute for `operate`."""
        from odpctl.odp.packet import encode_execute

        fam = self._packet_family
        payload = odp_payload(
            PacketCmd.EXECUTE, fam.version, self.dp_ifindex(dp), encode_execute(request)
        )
        return fam.id, 0, payload

    def delete_op(self, dp: DpRef, key_attrs: bytes) -> Op:
        """Deleting the flow whose key is ``key_attrs`` (its OVS_KEY_ATTR_*
        attributes, as a dump gave them), for `operate`."""
        fam = self._flow_family
        payload = odp_payload(
            FlowCmd.DEL, fam.version, self.dp_ifindex(dp), attr(FlowAttr.KEY, key_attrs)
        )
        return fam.id, 0, payload

    def flush_op(self, dp: DpRef) -> Op:
        """Deleting every flow, for `operate`."""
        fam = self._flow_family
        return fam.id, 0, odp_payload(FlowCmd.DEL, fam.version, self.dp_ifindex(dp), b"")

    def operate(self, ops: list[Op], what: str = "miss round") -> list[OdpError | None]:
        """Run ``ops`` in order, batched; one result per op, None for success."""
        results = self._conn.batch(ops, what, window=QUIET_BATCH_WINDOW, ack_each=False)
        return [r if isinstance(r, OdpError) else None for r in results]

    def open_upcall_channel(self, *, rcvbuf: int = 4 << 20) -> UpcallChannel:
        """A new socket to receive upcalls on: give its ``port_id`` to a vport
        (``Vport.upcall_pids`` / `set_vport`) or to the datapath's per-CPU PIDs."""
        from odpctl.odp.upcalls import UpcallChannel

        return UpcallChannel(self.endpoint.connect(), rcvbuf=rcvbuf)

    def watch_vports(self) -> VportEvents:
        """A listener for vport events (ports added, changed, deleted)."""
        from odpctl.odp.upcalls import VportEvents

        return VportEvents(self.endpoint.connect(), self._vport_family)


def _new_flow_flags(replace: bool) -> int:
    # The kernel refuses to touch an existing flow when NLM_F_CREATE is set
    # (it accepts CREATE in place of EXCL, which generic netlink would take
    # for part of a dump request); without it, NEW updates or creates.
    return 0 if replace else NLM_F_CREATE


def _drop_newest_feature(features: DpFeature) -> DpFeature:
    for bit in (DpFeature.DISPATCH_UPCALL_PER_CPU, DpFeature.TC_RECIRC_SHARING):
        if features & bit:
            return features & ~bit
    return features


def _describe(dp: DpRef) -> str:
    return dp.name if isinstance(dp, Datapath) else str(dp)


def _flow_selector(key: FlowKey | None, ufid: bytes | None) -> bytes:
    if key is None and ufid is None:
        raise UsageError("name a flow by its key or its UFID")
    from odpctl.odp.flow import Flow, encode_flow_attrs
    from odpctl.odp.keys import FlowKey

    return encode_flow_attrs(Flow(key or FlowKey(), ufid=ufid), actions=False)


def _flow_reply(replies: list[Message]) -> Flow:
    from odpctl.odp.flow import decode_flow_attrs

    for message in replies:
        return decode_flow_attrs(split_odp(message.payload)[2])
    raise OdpError("the datapath sent no flow in its reply")

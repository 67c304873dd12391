"""The ``ovs_flow`` family: installing, changing, reading and removing flows.

The kernel's rules (``ovs_flow_cmd_*`` in ``net/openvswitch/datapath.c``):

* NEW needs a key and actions.  A flow whose key an installed megaflow
  already matches "exists": with NLM_F_CREATE or NLM_F_EXCL that is EEXIST,
  without them the existing flow gets the new actions (its mask stays).
* A flow is named by its UFID if it was installed with one, else by the
  unmasked key it was installed with; GET, SET and DEL find it that way,
  or answer ENOENT.
* DEL without a key or UFID flushes the table.
* Replies carry the identifier, the key (masked, for UFID flows), the mask,
  the statistics that are non-zero and the actions, each unless the
  request's UFID flags ask to leave it out.
"""

from __future__ import annotations

import errno
import struct

from odpctl.datapath.actcache import checked_actions
from odpctl.datapath.classifier import DpFlow
from odpctl.datapath.dpcmds import Registry
from odpctl.datapath.errors import RequestError
from odpctl.datapath.execute import Program
from odpctl.datapath.keyencode import put_flat_key, put_key
from odpctl.datapath.keyparse import Match, parse_key_only, parse_match
from odpctl.datapath.layout import unpack
from odpctl.datapath.protocol import (
    POLICY_FLAG,
    POLICY_NESTED,
    POLICY_U32,
    DumpItems,
    Policy,
    Request,
    binary,
)
from odpctl.netlink.attrs import attr, attr_u64
from odpctl.netlink.message import NLM_F_CREATE, NLM_F_EXCL
from odpctl.odp.actions import Action, encode_actions
from odpctl.odp.uapi import FlowAttr, FlowCmd, UfidFlag

FLOW_POLICY: dict[int, Policy] = {
    FlowAttr.KEY: POLICY_NESTED,
    FlowAttr.MASK: POLICY_NESTED,
    FlowAttr.ACTIONS: POLICY_NESTED,
    FlowAttr.CLEAR: POLICY_FLAG,
    FlowAttr.PROBE: POLICY_FLAG,
    FlowAttr.UFID: binary(1),
    FlowAttr.UFID_FLAGS: POLICY_U32,
}
MAX_UFID_LENGTH = 16
# As plain ints: IntFlag arithmetic is slow, and this runs for every flow dumped.
_OMIT_KEY = int(UfidFlag.OMIT_KEY)
_OMIT_MASK = int(UfidFlag.OMIT_MASK)
_OMIT_ACTIONS = int(UfidFlag.OMIT_ACTIONS)

_FLOW_STATS = struct.Struct("=QQ")
_U32 = struct.Struct("=I")


def _ufid(req: Request) -> bytes | None:
    """The request's UFID; one longer than 16 bytes counts as none, as in the kernel."""
    ufid = req.attrs.get(FlowAttr.UFID)
    if ufid is None or not 1 <= len(ufid) <= MAX_UFID_LENGTH:
        return None
    return ufid


def _ufid_flags(req: Request) -> int:
    flags = req.attrs.get(FlowAttr.UFID_FLAGS)
    return _U32.unpack(flags)[0] if flags is not None else 0


def flow_attrs(flow: DpFlow, ufid_flags: int = 0) -> bytes:
    """The OVS_FLOW_ATTR_* of a reply about ``flow`` (ovs_flow_cmd_fill_info)."""
    if flow.mask_attr is None:
        _encode(flow)
    parts = []
    if flow.ufid is not None:
        parts.append(attr(FlowAttr.UFID, flow.ufid))
        if not ufid_flags & _OMIT_KEY:
            parts.append(attr(FlowAttr.KEY, flow.ufid_key_attr or b""))
    else:
        parts.append(attr(FlowAttr.KEY, flow.key_attr or b""))
    if not ufid_flags & _OMIT_MASK:
        parts.append(attr(FlowAttr.MASK, flow.mask_attr or b""))
    if flow.used:
        parts.append(attr_u64(FlowAttr.USED, flow.used))
    if flow.packets:
        parts.append(attr(FlowAttr.STATS, _FLOW_STATS.pack(flow.packets, flow.bytes)))
    if flow.tcp_flags & 0xFF:
        parts.append(attr(FlowAttr.TCP_FLAGS, bytes([flow.tcp_flags & 0xFF])))
    if not ufid_flags & _OMIT_ACTIONS:
        if flow.actions_attr is None:
            flow.actions_attr = encode_actions(flow.actions)
        parts.append(attr(FlowAttr.ACTIONS, flow.actions_attr))
    return b"".join(parts)


def _encode(flow: DpFlow) -> None:
    """The key and mask attributes of a flow, as the kernel writes them.

    Made on first use, not at install time: a router installs many flows
    and reads few back.
    """
    match = flow.match
    masked_key = match.masked_key()
    if flow.ufid is None:
        flow.key_attr = put_flat_key(match.key, match.key_opts)
    else:
        flow.ufid_key_attr = put_flat_key(masked_key, match.masked_opts())
    flow.mask_attr = put_key(unpack(masked_key), unpack(match.mask), match.mask_opts, True)


def _same_identity(flow: DpFlow, match: Match) -> bool:
    """ovs_flow_cmp: a UFID flow compares its masked key, others their unmasked one."""
    if flow.ufid is not None:
        return flow.masked == match.key_int()
    return flow.match.key == match.key and flow.match.key_opts == match.key_opts


class FlowCommands:
    def __init__(self, registry: Registry, group: int) -> None:
        self._registry = registry
        self._group = group

    @staticmethod
    def _set_actions(flow: DpFlow, checked: tuple[list[Action], Program]) -> None:
        flow.actions, flow.program = checked
        flow.actions_attr = None

    def _announce(
        self, req: Request, cmd: FlowCmd, dp_ifindex: int, flow: DpFlow, ufid_flags: int
    ) -> None:
        if req.must_notify(self._group):
            req.announce(self._group, cmd, dp_ifindex, flow_attrs(flow, ufid_flags))

    def flow_new(self, req: Request) -> None:
        attrs = req.attrs
        if FlowAttr.KEY not in attrs:
            raise RequestError(errno.EINVAL, "flow key attribute not present in new flow")
        if FlowAttr.ACTIONS not in attrs:
            raise RequestError(errno.EINVAL, "flow actions attribute not present in new flow")
        match = parse_match(attrs[FlowAttr.KEY], attrs.get(FlowAttr.MASK))
        ufid = _ufid(req)
        masked = unpack(match.masked_key())
        actions = checked_actions(attrs[FlowAttr.ACTIONS], masked)
        ufid_flags = _ufid_flags(req)
        dp = self._registry.datapath(req.dp_ifindex)
        table = dp.table
        existing = table.find_ufid(ufid) if ufid is not None else None
        if existing is None:
            existing = table.find_overlap(match)
        if existing is None:
            flow = DpFlow(match, ufid)
            self._set_actions(flow, actions)
            table.insert(flow)
            self._announce(req, FlowCmd.NEW, dp.ifindex, flow, ufid_flags)
            return
        if req.msg.flags & (NLM_F_CREATE | NLM_F_EXCL):
            raise RequestError(errno.EEXIST, "a flow that matches this key is installed")
        if not _same_identity(existing, match):
            found = table.find_exact(match) if existing.ufid is None else None
            if found is None:
                raise RequestError(errno.ENOENT, "an overlapping flow has another key")
            existing = found
        self._set_actions(existing, actions)
        self._announce(req, FlowCmd.NEW, dp.ifindex, existing, ufid_flags)

    def _find(self, req: Request, match: Match | None, ufid: bytes | None) -> DpFlow:
        table = self._registry.datapath(req.dp_ifindex).table
        flow = table.find_ufid(ufid) if ufid is not None else None
        if flow is None and ufid is None and match is not None:
            flow = table.find_exact(match)
        if flow is None:
            raise RequestError(errno.ENOENT, "no such flow")
        return flow

    def flow_set(self, req: Request) -> None:
        attrs = req.attrs
        ufid = _ufid(req)
        match = None
        if FlowAttr.KEY in attrs:
            match = parse_match(attrs[FlowAttr.KEY], attrs.get(FlowAttr.MASK))
        elif ufid is None:
            raise RequestError(errno.EINVAL, "flow set message rejected: key attribute missing")
        actions = None
        if FlowAttr.ACTIONS in attrs:
            if match is None:
                raise RequestError(errno.EINVAL, "flow key attribute not present in set flow")
            actions = checked_actions(attrs[FlowAttr.ACTIONS], unpack(match.masked_key()))
        dp = self._registry.datapath(req.dp_ifindex)
        flow = self._find(req, match, ufid)
        if actions is not None:
            self._set_actions(flow, actions)
        # The reply shows the statistics from before a clear.
        self._announce(req, FlowCmd.SET, dp.ifindex, flow, _ufid_flags(req))
        if FlowAttr.CLEAR in attrs:
            flow.clear_stats()

    def _key_match(self, req: Request, what: str) -> tuple[Match | None, bytes | None]:
        ufid = _ufid(req)
        match = None
        if FlowAttr.KEY in req.attrs:
            match = parse_key_only(req.attrs[FlowAttr.KEY])
        elif ufid is None:
            raise RequestError(errno.EINVAL, f"flow {what} message rejected: key attribute missing")
        return match, ufid

    def flow_get(self, req: Request) -> None:
        match, ufid = self._key_match(req, "get")
        dp = self._registry.datapath(req.dp_ifindex)
        flow = self._find(req, match, ufid)
        req.reply(FlowCmd.GET, dp.ifindex, flow_attrs(flow, _ufid_flags(req)))

    def flow_del(self, req: Request) -> None:
        ufid = _ufid(req)
        match = parse_key_only(req.attrs[FlowAttr.KEY]) if FlowAttr.KEY in req.attrs else None
        dp = self._registry.datapath(req.dp_ifindex)
        if match is None and ufid is None:
            dp.table.flush()
            return
        flow = self._find(req, match, ufid)
        dp.table.remove(flow)
        self._announce(req, FlowCmd.DEL, dp.ifindex, flow, _ufid_flags(req))

    def flow_dump(self, req: Request) -> DumpItems:
        dp = self._registry.datapath(req.dp_ifindex)
        ufid_flags = _ufid_flags(req)
        for flow in dp.table:
            if flow.mask is not None:  # still installed
                yield FlowCmd.GET, dp.ifindex, flow_attrs(flow, ufid_flags)

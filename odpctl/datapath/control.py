"""The generic-netlink families the server answers to, and the "nlctrl" controller.

Clients find families by name with CTRL_CMD_GETFAMILY, as on a kernel
netlink socket; the ids here are this server's own, stable for its life.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from odpctl.datapath.errors import RequestError
from odpctl.datapath.protocol import DumpItems, Policy, Request, parse_attrs, string
from odpctl.netlink.attrs import attr, attr_str, attr_u16, attr_u32, nested
from odpctl.netlink.genl import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_ATTR_HDRSIZE,
    CTRL_ATTR_MAXATTR,
    CTRL_ATTR_MCAST_GROUPS,
    CTRL_ATTR_MCAST_GRP_ID,
    CTRL_ATTR_MCAST_GRP_NAME,
    CTRL_ATTR_OPS,
    CTRL_ATTR_VERSION,
    CTRL_CMD_GETFAMILY,
    CTRL_CMD_NEWFAMILY,
    GENL_ID_CTRL,
    GENL_NAMSIZ,
)
from odpctl.netlink.message import GENL_HDR, Message

CTRL_VERSION = 2
CTRL_ATTR_OP_ID = 1
CTRL_ATTR_OP_FLAGS = 2
# Operation flags reported in CTRL_ATTR_OPS (GENL_ADMIN_PERM, GENL_CMD_CAP_*).
GENL_ADMIN_PERM = 0x01
GENL_CMD_CAP_DO = 0x02
GENL_CMD_CAP_DUMP = 0x04

DoIt = Callable[[Request], None]
DumpIt = Callable[[Request], DumpItems]


@dataclass
class Operation:
    doit: DoIt | None = None
    dumpit: DumpIt | None = None
    admin: bool = True  # needs privilege, like GENL_UNS_ADMIN_PERM


@dataclass
class FamilySpec:
    """An ODP family as served: its id, version, policy, groups and commands."""

    name: str
    id: int
    version: int
    max_attr: int
    policy: dict[int, Policy]
    groups: dict[str, int] = field(default_factory=dict)
    ops: dict[int, Operation] = field(default_factory=dict)
    hdrsize: int = 4  # struct ovs_header


_CTRL_POLICY = {CTRL_ATTR_FAMILY_ID: Policy("u16"), CTRL_ATTR_FAMILY_NAME: string(GENL_NAMSIZ - 1)}
_CTRL_GROUP = ("notify", GENL_ID_CTRL)


def _family_attrs(f: FamilySpec) -> bytes:
    ops = [
        nested(
            i + 1,
            attr_u32(CTRL_ATTR_OP_ID, cmd),
            attr_u32(
                CTRL_ATTR_OP_FLAGS,
                (GENL_ADMIN_PERM if op.admin else 0)
                | (GENL_CMD_CAP_DO if op.doit else 0)
                | (GENL_CMD_CAP_DUMP if op.dumpit else 0),
            ),
        )
        for i, (cmd, op) in enumerate(sorted(f.ops.items()))
    ]
    parts = [
        attr_str(CTRL_ATTR_FAMILY_NAME, f.name),
        attr_u16(CTRL_ATTR_FAMILY_ID, f.id),
        attr_u32(CTRL_ATTR_VERSION, f.version),
        attr_u32(CTRL_ATTR_HDRSIZE, f.hdrsize),
        attr_u32(CTRL_ATTR_MAXATTR, f.max_attr),
    ]
    if ops:
        parts.append(attr(CTRL_ATTR_OPS, b"".join(ops)))
    if f.groups:
        groups = [
            nested(
                i + 1,
                attr_str(CTRL_ATTR_MCAST_GRP_NAME, name),
                attr_u32(CTRL_ATTR_MCAST_GRP_ID, gid),
            )
            for i, (name, gid) in enumerate(f.groups.items())
        ]
        parts.append(attr(CTRL_ATTR_MCAST_GROUPS, b"".join(groups)))
    return b"".join(parts)


class Controller:
    """CTRL_CMD_GETFAMILY over the families the server has."""

    def __init__(self, families: list[FamilySpec]) -> None:
        self.itself = FamilySpec(
            "nlctrl",
            GENL_ID_CTRL,
            CTRL_VERSION,
            10,
            _CTRL_POLICY,
            dict([_CTRL_GROUP]),
            {CTRL_CMD_GETFAMILY: Operation(admin=False)},
            hdrsize=0,
        )
        self.families = [self.itself, *families]

    def _payload(self, f: FamilySpec) -> bytes:
        return GENL_HDR.pack(CTRL_CMD_NEWFAMILY, CTRL_VERSION, 0) + _family_attrs(f)

    def get(self, msg: Message) -> bytes:
        """The GENL payload of the reply to a GETFAMILY request; RequestError if none."""
        if len(msg.payload) < GENL_HDR.size:
            raise RequestError(errno.EINVAL, "message shorter than the generic netlink header")
        cmd = msg.payload[0]
        if cmd != CTRL_CMD_GETFAMILY:
            raise RequestError(errno.EOPNOTSUPP, f"nlctrl command {cmd} is not supported")
        attrs = parse_attrs(msg.payload, GENL_HDR.size, _CTRL_POLICY)
        for f in self.families:
            if CTRL_ATTR_FAMILY_ID in attrs:
                if f.id == int.from_bytes(attrs[CTRL_ATTR_FAMILY_ID], "little"):
                    return self._payload(f)
            elif CTRL_ATTR_FAMILY_NAME in attrs:
                wanted = attrs[CTRL_ATTR_FAMILY_NAME]
                if f.name.encode() == wanted[: wanted.index(0)]:
                    return self._payload(f)
            else:
                raise RequestError(errno.EINVAL, "GETFAMILY names no family")
        raise RequestError(errno.ENOENT, "no such generic netlink family")

    def dump(self) -> Iterator[bytes]:
        for f in self.families:
            yield self._payload(f)

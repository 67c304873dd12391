"""Generic netlink: the genlmsghdr, and family lookup through the "nlctrl" controller."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from odpctl.errors import DecodeError, NetlinkProtocolError, NotFoundError
from odpctl.netlink.attrs import attr_str, attrs_to_dict, get_str, get_u16, get_u32, iter_attrs
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.message import GENL_HDR

GENL_HDRLEN = GENL_HDR.size

GENL_ID_CTRL = 0x10
CTRL_CMD_NEWFAMILY = 1
CTRL_CMD_GETFAMILY = 3
CTRL_VERSION = 2

CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
CTRL_ATTR_HDRSIZE = 4
CTRL_ATTR_MAXATTR = 5
CTRL_ATTR_OPS = 6
CTRL_ATTR_MCAST_GROUPS = 7

CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

# Family names are at most this long, NUL included.
GENL_NAMSIZ = 16


@dataclass(frozen=True)
class Family:
    name: str
    id: int
    version: int
    hdrsize: int
    max_attr: int
    # Left out of the hash so that a Family can still be a dict key.
    groups: dict[str, int] = field(hash=False)

    def group(self, name: str) -> int:
        """The id of multicast group ``name``."""
        try:
            return self.groups[name]
        except KeyError:
            raise NotFoundError(
                f"generic netlink family {self.name!r} has no multicast group {name!r}",
                errno=errno.ENOENT,
            ) from None


def genl_payload(cmd: int, version: int, body: bytes) -> bytes:
    """A genlmsghdr followed by ``body``: the payload of a generic netlink message."""
    return GENL_HDR.pack(cmd, version, 0) + body


def split_genl(payload: bytes) -> tuple[int, int, bytes]:
    """``(cmd, version, attributes)`` of a generic netlink payload.

    The attributes are a copy; a hot decoder can instead read the header with
    GENL_HDR and pass ``start=GENL_HDRLEN`` to ``iter_attrs``.
    """
    if len(payload) < GENL_HDRLEN:
        raise DecodeError(
            f"generic netlink message: {len(payload)} bytes, header needs {GENL_HDRLEN}"
        )
    cmd, version, _ = GENL_HDR.unpack_from(payload)
    return cmd, version, payload[GENL_HDRLEN:]


def resolve_family(conn: NetlinkConnection, name: str) -> Family:
    """Look up a generic netlink family (its id, version and multicast groups) by name."""
    not_found = NotFoundError(f"generic netlink family {name!r} not found", errno=errno.ENOENT)
    if len(name.encode()) >= GENL_NAMSIZ:
        # The kernel rejects such a name as EINVAL; no family can have it.
        raise not_found
    request = genl_payload(CTRL_CMD_GETFAMILY, CTRL_VERSION, attr_str(CTRL_ATTR_FAMILY_NAME, name))
    try:
        replies = conn.request(GENL_ID_CTRL, 0, request, f"resolve generic netlink family {name!r}")
    except NotFoundError:
        raise not_found from None
    if not replies:
        raise NetlinkProtocolError(
            f"resolve generic netlink family {name!r}: no reply before the ACK"
        )
    return _parse_family(replies[0].payload)


def _parse_family(payload: bytes) -> Family:
    attrs = attrs_to_dict(payload, GENL_HDRLEN) if len(payload) >= GENL_HDRLEN else {}
    if CTRL_ATTR_FAMILY_ID not in attrs or CTRL_ATTR_FAMILY_NAME not in attrs:
        raise DecodeError("generic netlink family reply: no family id or name")
    groups: dict[str, int] = {}
    if CTRL_ATTR_MCAST_GROUPS in attrs:
        for _, entry in iter_attrs(attrs[CTRL_ATTR_MCAST_GROUPS]):
            grp = attrs_to_dict(entry)
            if CTRL_ATTR_MCAST_GRP_NAME in grp and CTRL_ATTR_MCAST_GRP_ID in grp:
                groups[get_str(grp[CTRL_ATTR_MCAST_GRP_NAME])] = get_u32(
                    grp[CTRL_ATTR_MCAST_GRP_ID]
                )

    def u32(type_: int) -> int:
        return get_u32(attrs[type_]) if type_ in attrs else 0

    return Family(
        name=get_str(attrs[CTRL_ATTR_FAMILY_NAME]),
        id=get_u16(attrs[CTRL_ATTR_FAMILY_ID]),
        version=u32(CTRL_ATTR_VERSION),
        hdrsize=u32(CTRL_ATTR_HDRSIZE),
        max_attr=u32(CTRL_ATTR_MAXATTR),
        groups=groups,
    )

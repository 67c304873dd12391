"""Generic netlink helpers and family lookup, against a scripted controller."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

import pytest

from odpctl.errors import DecodeError, NotFoundError, PermissionDeniedError
from odpctl.netlink import attrs as A
from odpctl.netlink import genl as G
from odpctl.netlink.connection import NetlinkConnection
from odpctl.netlink.message import NLM_F_ACK, NLM_F_REQUEST, Message

from .nl_helpers import FakePeer, Handler, ack, reply

pytestmark = pytest.mark.timeout(20)

MakePeer = Callable[[Handler], tuple[FakePeer, NetlinkConnection]]


def test_controller_constants() -> None:
    assert (G.GENL_ID_CTRL, G.CTRL_CMD_GETFAMILY) == (0x10, 3)
    assert (G.CTRL_ATTR_FAMILY_ID, G.CTRL_ATTR_FAMILY_NAME, G.CTRL_ATTR_VERSION) == (1, 2, 3)
    assert (G.CTRL_ATTR_HDRSIZE, G.CTRL_ATTR_MAXATTR, G.CTRL_ATTR_MCAST_GROUPS) == (4, 5, 7)
    assert (G.CTRL_ATTR_MCAST_GRP_NAME, G.CTRL_ATTR_MCAST_GRP_ID) == (1, 2)


@pytest.mark.skipif(sys.byteorder != "little", reason="golden bytes are LE")
def test_genl_payload_golden() -> None:
    assert G.genl_payload(3, 2, b"body") == b"\x03\x02\x00\x00body"


def test_split_genl() -> None:
    assert G.split_genl(b"\x01\x02\x00\x00rest") == (1, 2, b"rest")
    assert G.split_genl(b"\x01\x02\x00\x00") == (1, 2, b"")
    with pytest.raises(DecodeError, match="3 bytes"):
        G.split_genl(b"\x01\x02\x00")


def family_reply(name: str, id_: int, groups: dict[str, int]) -> bytes:
    grps = b"".join(
        A.nested(
            i + 1,
            A.attr_str(G.CTRL_ATTR_MCAST_GRP_NAME, g),
            A.attr_u32(G.CTRL_ATTR_MCAST_GRP_ID, gid),
        )
        for i, (g, gid) in enumerate(groups.items())
    )
    return G.genl_payload(
        G.CTRL_CMD_NEWFAMILY,
        2,
        A.attr_u16(G.CTRL_ATTR_FAMILY_ID, id_)
        + A.attr_str(G.CTRL_ATTR_FAMILY_NAME, name)
        + A.attr_u32(G.CTRL_ATTR_VERSION, 1)
        + A.attr_u32(G.CTRL_ATTR_HDRSIZE, 4)
        + A.attr_u32(G.CTRL_ATTR_MAXATTR, 9)
        + A.nested(G.CTRL_ATTR_MCAST_GROUPS, grps),
    )


def controller(families: dict[str, tuple[int, dict[str, int]]]) -> Handler:
    def handler(_peer: FakePeer, msgs: list[Message]) -> list[bytes]:
        out = []
        for m in msgs:
            cmd, _, body = G.split_genl(m.payload)
            assert m.type == G.GENL_ID_CTRL and cmd == G.CTRL_CMD_GETFAMILY
            name = A.get_str(A.attrs_to_dict(body)[G.CTRL_ATTR_FAMILY_NAME])
            if name in families:
                id_, groups = families[name]
                out.append(reply(m, family_reply(name, id_, groups), type_=G.GENL_ID_CTRL) + ack(m))
            else:
                out.append(ack(m, errno.ENOENT))
        return out

    return handler


def test_resolve_family_parses_id_version_and_groups(peer: MakePeer) -> None:
    p, conn = peer(controller({"ovs_vport": (0x21, {"ovs_vport": 7}), "ovs_flow": (0x22, {})}))
    fam = G.resolve_family(conn, "ovs_vport")
    assert fam == G.Family("ovs_vport", 0x21, 1, 4, 9, {"ovs_vport": 7})
    assert fam.group("ovs_vport") == 7
    assert G.resolve_family(conn, "ovs_flow").groups == {}
    (req, _) = p.received
    assert req.flags == NLM_F_REQUEST | NLM_F_ACK
    assert req.payload == G.genl_payload(3, 2, A.attr_str(G.CTRL_ATTR_FAMILY_NAME, "ovs_vport"))
    # Hashable despite the groups dict.
    assert {fam: 1}[fam] == 1


def test_family_group_unknown() -> None:
    fam = G.Family("ovs_vport", 0x21, 1, 0, 9, {"ovs_vport": 7})
    with pytest.raises(NotFoundError, match="has no multicast group 'nope'"):
        fam.group("nope")


def test_unknown_family_is_not_found(peer: MakePeer) -> None:
    _, conn = peer(controller({}))
    with pytest.raises(NotFoundError) as info:
        G.resolve_family(conn, "ovs_datapath")
    assert info.value.message == "generic netlink family 'ovs_datapath' not found"
    assert info.value.errno == errno.ENOENT


def test_other_errors_pass_through(peer: MakePeer) -> None:
    _, conn = peer(lambda _peer, msgs: [ack(m, errno.EPERM) for m in msgs])
    with pytest.raises(PermissionDeniedError, match="resolve generic netlink family 'x'"):
        G.resolve_family(conn, "x")


def test_reply_without_an_id_is_a_decode_error(peer: MakePeer) -> None:
    body = G.genl_payload(1, 2, A.attr_str(G.CTRL_ATTR_FAMILY_NAME, "x"))
    _, conn = peer(lambda _peer, msgs: [reply(m, body) + ack(m) for m in msgs])
    with pytest.raises(DecodeError, match="no family id"):
        G.resolve_family(conn, "x")

"""The ``ovs_packet`` family: EXECUTE, a client's packet run through actions.

As the kernel's ovs_packet_cmd_execute: the key attributes give only the
metadata (input port, tunnel, marks, recirculation); the rest of the key is
extracted from the packet, and the actions are checked against that key
before they run.  A packet whose input port does not exist enters from the
local port.  What the packet's actions send leaves once the server has
served the whole datagram the request came in (all of a batch's executes
together), before the replies.
"""

from __future__ import annotations

import errno

from odpctl.datapath.actcache import checked_actions
from odpctl.datapath.dpcmds import Registry
from odpctl.datapath.errors import RequestError
from odpctl.datapath.execute import run
from odpctl.datapath.keyparse import parse_metadata_key
from odpctl.datapath.layout import META_SIZE, unpack
from odpctl.datapath.packet import ZERO_VNET, Packet
from odpctl.datapath.protocol import (
    POLICY_FLAG,
    POLICY_NESTED,
    POLICY_U16,
    POLICY_U32,
    POLICY_U64,
    Policy,
    Request,
    binary,
)
from odpctl.odp.uapi import PacketAttr

ETH_HLEN = 14

PACKET_POLICY: dict[int, Policy] = {
    PacketAttr.PACKET: binary(ETH_HLEN),
    PacketAttr.KEY: POLICY_NESTED,
    PacketAttr.ACTIONS: POLICY_NESTED,
    PacketAttr.PROBE: POLICY_FLAG,
    PacketAttr.MRU: POLICY_U16,
    PacketAttr.HASH: POLICY_U64,
    PacketAttr.UPCALL_PID: POLICY_U32,
}


class PacketCommands:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def execute(self, req: Request) -> None:
        attrs = req.attrs
        packet = attrs.get(PacketAttr.PACKET)
        key = attrs.get(PacketAttr.KEY)
        actions = attrs.get(PacketAttr.ACTIONS)
        if packet is None or key is None or actions is None:
            raise RequestError(errno.EINVAL, "execute needs a packet, a key and actions")
        meta, opts = parse_metadata_key(key)
        pkt = Packet(ZERO_VNET + packet, meta[:META_SIZE], opts)
        _checked, program = checked_actions(actions, unpack(pkt.key()))
        run(program, self._registry.datapath(req.dp_ifindex), pkt, 0)

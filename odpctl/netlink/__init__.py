"""Netlink for odpctl: message codec, transports, request/dump/batch, generic netlink.

This layer knows nothing of Open vSwitch.  The submodules are the API;
the names below are the ones most callers need.
"""

from odpctl.netlink.connection import DumpInterrupted, NetlinkConnection, ReceiveOverrun
from odpctl.netlink.genl import Family, genl_payload, resolve_family, split_genl
from odpctl.netlink.message import Message, decode_messages, encode_message
from odpctl.netlink.netns import current_netns_id, netns
from odpctl.netlink.transport import KernelTransport, Transport, UnixTransport

__all__ = [
    "DumpInterrupted",
    "Family",
    "KernelTransport",
    "Message",
    "NetlinkConnection",
    "ReceiveOverrun",
    "Transport",
    "UnixTransport",
    "current_netns_id",
    "decode_messages",
    "encode_message",
    "genl_payload",
    "netns",
    "resolve_family",
    "split_genl",
]

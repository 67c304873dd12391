"""Netlink for odpctl: message codec, transports, request/dump/batch, generic netlink.

This layer knows nothing of Open vSwitch.  The submodules are the API;
the names below are the ones most callers need.  (``netns``, the context
manager, is ``odpctl.netlink.netns.netns``: as a name of the package it would
be shadowed by its own submodule.)
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from odpctl.netlink.connection import DumpInterrupted, NetlinkConnection, ReceiveOverrun
    from odpctl.netlink.genl import Family, genl_payload, resolve_family, split_genl
    from odpctl.netlink.message import Message, decode_messages, encode_message
    from odpctl.netlink.netns import current_netns_id
    from odpctl.netlink.transport import KernelTransport, Transport, UnixTransport

# Where each name lives, loaded on first use: a caller that needs one submodule
# (the CNI plugin needs netns alone) does not pay for all of them at start-up.
_HOME = {
    "DumpInterrupted": "connection",
    "NetlinkConnection": "connection",
    "ReceiveOverrun": "connection",
    "Family": "genl",
    "genl_payload": "genl",
    "resolve_family": "genl",
    "split_genl": "genl",
    "Message": "message",
    "decode_messages": "message",
    "encode_message": "message",
    "current_netns_id": "netns",
    "KernelTransport": "transport",
    "Transport": "transport",
    "UnixTransport": "transport",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module  # here: a caller of netns alone never needs it

    return getattr(import_module(f"{__name__}.{home}"), name)


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
    "resolve_family",
    "split_genl",
]

"""The generic-netlink payload every ODP family shares.

Each request and reply is ``genlmsghdr`` + ``struct ovs_header { int
dp_ifindex; }`` + attributes.  The datapath is named by its ifindex (0 when a
datapath command names it by ``OVS_DP_ATTR_NAME`` instead).
"""

from __future__ import annotations

import struct

from odpctl.errors import DecodeError

# genlmsghdr (cmd, version, reserved) followed by ovs_header (dp_ifindex).
ODP_HEADER = struct.Struct("=BBHi")
ODP_HEADER_SIZE = ODP_HEADER.size


def odp_payload(cmd: int, version: int, dp_ifindex: int, attrs: bytes) -> bytes:
    return ODP_HEADER.pack(cmd, version, 0, dp_ifindex) + attrs


def split_odp(payload: bytes) -> tuple[int, int, bytes]:
    """(cmd, dp_ifindex, attributes) of a reply or notification."""
    if len(payload) < ODP_HEADER_SIZE:
        raise DecodeError(f"ODP message of {len(payload)} bytes is shorter than its header")
    cmd, _version, _reserved, dp_ifindex = ODP_HEADER.unpack_from(payload)
    return cmd, dp_ifindex, payload[ODP_HEADER_SIZE:]

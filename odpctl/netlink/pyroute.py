"""pyroute2 (rtnetlink: links, addresses, namespaces) as odpctl uses it.

`NetNS` and `netns.create` fork a child that does the work inside the namespace
and hands the result back; pyroute2 waits 2 s for it.  A fork of a large Python
process takes longer than that on a loaded host or in a user-mode-linux guest,
and the namespace then "cannot be created" for no reason but time: wait longer.
"""

from __future__ import annotations

from pyroute2 import IPRoute, NetNS, config, netns
from pyroute2.netlink.exceptions import NetlinkError

config.default_communicate_timeout = max(config.default_communicate_timeout, 30)

__all__ = ["IPRoute", "NetNS", "NetlinkError", "netns"]

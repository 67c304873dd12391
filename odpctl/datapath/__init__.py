"""The userspace datapath: ODP semantics in a process, over the same protocol.

`serve` runs, in the foreground, a server that answers the generic-netlink
messages of the Open vSwitch kernel datapath (family lookup, and the
datapath, vport, flow and packet families) on a unix socket, so that the
library's `Dpif`, every ``odpctl`` command and the router work unchanged
where the openvswitch kernel module is missing: only the transport differs.

Layout of the package, by concern:

``server``      selector loop, clients, port ids, multicast groups, dispatch
``control``     the nlctrl controller (family and group lookup)
``dpcmds``      datapath and vport commands; the registry of datapaths
``flowcmds``    flow commands; ``pktcmds``: packet execution
``protocol``    requests, replies, attribute policies
``layout``      the flat flow key; ``keyparse``/``keyencode``: it and netlink
``extract``     flow keys from packet bytes
``classifier``  megaflow table with an exact-match cache
``validate``    install-time action checks; ``execute``: running actions
``packet``      packets and their offloads (virtio-net headers, GSO, checksums)
``ports``       netdev (AF_PACKET), internal (TAP), vxlan and geneve (UDP)
``upcalls``     upcall messages and their delivery
``dp``          one datapath: ports, flows, the packet path
``pktring``     memory-mapped AF_PACKET rings (batched I/O for netdev ports)

What differs from the kernel datapath, on purpose or for want of a kernel:

* Actions it cannot run are refused when the flow is installed, with
  EOPNOTSUPP and a reason: ct (there is no connection tracking), MPLS,
  NSH, Ethernet push/pop, meter, psample; set() of SCTP ports, MPLS and
  conntrack fields.  Keys with conntrack tuples, NSH or no Ethernet header
  likewise.  Vport types other than netdev, internal, vxlan and geneve get
  EAFNOSUPPORT, as an unknown type does from the kernel.
* Tunnels run over IPv4 only.  A received packet's tunnel key has no DF or
  CSUM flag (a UDP socket does not show them), and packets leave from the
  port's own UDP port rather than a per-flow source port.  Tunnel ports
  have no device, hence no ifindex.
* With per-CPU upcall dispatch the "CPU" is the packet's flow hash: one
  connection always reaches the same handler.
* Vport replies carry OVS_VPORT_ATTR_UPCALL_STATS (Linux 6.2+) whatever the
  kernel of the host.
"""

from __future__ import annotations

import signal
import threading

from odpctl.datapath.server import Access, Server
from odpctl.netlink.netns import netns as in_netns
from odpctl.odp.endpoint import default_datapath_socket

__all__ = ["Access", "Server", "serve"]


def serve(
    socket_path: str | None = None, netns: str | None = None, access: Access | None = None
) -> None:
    """Run a userspace datapath in the foreground until SIGINT or SIGTERM.

    ``socket_path`` defaults to the per-namespace default socket that
    clients look for by themselves (`default_datapath_socket`); ``netns``
    is the network namespace whose interfaces the datapath uses; ``access``
    who may connect and how much a user may take.  Refuses
    to start (`AlreadyExistsError`) if another server answers on the
    socket; removes the socket, and every device it made, on the way out.
    """
    path = socket_path or str(default_datapath_socket(netns))
    with in_netns(netns):
        server = Server(path, access)
        server.start()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: server.stop())
        try:
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

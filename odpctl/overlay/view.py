"""An immutable picture of the mesh, for the miss handlers.

The mesh lives on its event loop; the miss handlers run on threads of their
own.  Rather than lock the mesh, the loop publishes a fresh `MeshView` when
anything the forwarder depends on changes (routes, short IDs, neighbours'
addresses), and the handlers read whichever view is current: swapping one
reference is atomic.  Two views compare equal when forwarding would be the
same, which is how the router knows whether installed flows went stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from odpctl.mesh.names import PeerName


@dataclass(frozen=True)
class MeshView:
    ourself: PeerName
    our_short_id: int
    # Reachable peers (over established connections): short ID, next hop.
    short_ids: dict[PeerName, int] = field(default_factory=dict)
    next_hops: dict[PeerName, PeerName] = field(default_factory=dict)
    # Our children on each source's broadcast tree.
    broadcast: dict[PeerName, tuple[PeerName, ...]] = field(default_factory=dict)
    # Neighbours with a working fast path: their underlay address.
    neighbour_ips: dict[PeerName, str] = field(default_factory=dict)
    # Neighbours reached through the userspace fallback instead.
    fallback_ips: dict[PeerName, str] = field(default_factory=dict)
    by_short_id: dict[int, PeerName] = field(default_factory=dict)
    # With a mesh password: the underlay addresses VXLAN is taken from (their
    # connections are on ESP, or trusted); None: from anywhere, as without one.
    vxlan_from: frozenset[str] | None = None

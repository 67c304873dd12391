"""IP address management without a consistent store (Weave Net's ring, our code).

The range (``--ipalloc-range``) is split among peers on a ring of tokens
(`ring`), a CRDT gossiped over the mesh; each peer hands out addresses only
from what it owns (`space`), asks the others for space when it runs short,
and the ring is made either from a given seed list or by Paxos among the
first peers (`paxos`).  `Allocator` ties these to a mesh gossip channel and
to the state kept across restarts (`store`).
"""

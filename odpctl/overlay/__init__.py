"""The overlay: how container frames cross between hosts.

`fastdp` is the kernel fast path (ODP flows + VXLAN, the router sees misses
only); `maccache` says where each MAC lives; `flows` builds the matches and
actions the forwarder installs.  The mesh knows nothing of this package: the
router hands a `FastDatapath` to the mesh as its `Overlay`.
"""

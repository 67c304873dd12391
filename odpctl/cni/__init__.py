"""The CNI plugin ``odpctl-cni``: containers on the overlay for CNI runtimes.

A thin adapter over the router's control socket: ADD asks the router of the
namespace the plugin runs in to attach the container's namespace (veth,
address from the router's IPAM or from a delegated IPAM plugin, MTU, route),
DEL asks it to detach, CHECK compares the container's interface with the
result the runtime kept.  Spec: containernetworking/cni SPEC.md 1.0.0
(results also in 0.4.0 and 0.3.x; STATUS and GC from 1.1.0).
"""

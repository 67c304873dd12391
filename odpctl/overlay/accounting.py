"""Where every frame went, as a router's status tells it.

A frame that arrives on a datapath port either matched a flow (``hit``),
or was sent up (``missed``, less the ``lost`` the datapath could not
deliver), or never got that far: ``rx_dropped``, summed over the ports (the
userspace datapath's receive ring was full; for the kernel, the devices'
own drops).  Every miss a handler read is, in turn, exactly one of: a flow
installed, sent on without a flow, a heartbeat, dropped or an error, the
last two by their reasons.
"""

from __future__ import annotations

from typing import Any

from odpctl.odp.dpif import Dpif, DpRef

from .forwarder import Forwarder


def datapath_counts(dpif: Dpif, dp: DpRef) -> dict[str, int]:
    """The datapath's lookups and flows, and its ports' receive drops."""
    datapath = dpif.get_datapath(dp)
    rx_dropped = sum(v.stats.rx_dropped for v in dpif.list_vports(dp) if v.stats is not None)
    return {
        "hit": datapath.hit,
        "missed": datapath.missed,
        "lost": datapath.lost,
        "rx_dropped": rx_dropped,
        "flows": datapath.flows,
    }


def miss_counts(forwarder: Forwarder) -> dict[str, Any]:
    """What became of the misses the handlers read, with the reasons of drops and errors."""
    s = forwarder.stats
    return {
        "misses": s.misses,
        "flows_installed": s.flows_installed,
        "no_flow": s.no_flow,
        "over_limit": s.over_limit,
        "heartbeats_received": s.heartbeats,
        "drops": s.dropped,
        "errors": s.errors,
        "drop_reasons": forwarder.drop_reasons.snapshot(),
        "error_reasons": forwarder.error_reasons.snapshot(),
        "max_flows": forwarder.max_flows,
        "unhandled": unhandled(forwarder),
        "last_installed": forwarder.last_installed,
    }


def unhandled(forwarder: Forwarder) -> dict[str, int]:
    """The misses read but not handled: drops and errors, by reason."""
    return {
        **{f"drop: {why}": n for why, n in forwarder.drop_reasons.snapshot().items()},
        **{f"error: {why}": n for why, n in forwarder.error_reasons.snapshot().items()},
    }

"""The datapath: which one, how its upcalls are dispatched, lost upcalls, flow count."""

from __future__ import annotations

from odpctl.odp.uapi import DpFeature

from .facts import Facts
from .report import Check, ok, problem, warn

# Open vSwitch's default flow limit (other_config:flow-limit): past it, a
# datapath that big means flows nobody expires, or more misses than handled.
FLOW_LIMIT = 200_000
NO_DATAPATH_FIX = (
    "modprobe openvswitch (kernel datapath), or run `odpctl dp serve` "
    "(userspace datapath), then `odpctl router start`"
)


def datapath_checks(f: Facts) -> list[Check]:
    module = "the openvswitch module is loaded" if f.module_loaded else "no openvswitch module"
    d = f.datapath
    if d is None:
        return [
            problem("datapath", "-", "available", f"{f.datapath_error}; {module}", NO_DATAPATH_FIX)
        ]
    return [
        ok("datapath", d.name, "kind", f"{d.where} ({module})"),
        _dispatch(f),
        _lost(f),
        _flows(f),
    ]


def _dispatch(f: Facts) -> Check:
    assert f.datapath is not None
    d = f.datapath
    resets = (f.router or {}).get("dispatch_resets", 0)
    if d.second.features & DpFeature.DISPATCH_UPCALL_PER_CPU:
        pids = len(d.second.per_cpu_pids)
        return problem(
            "datapath",
            d.name,
            "dispatch",
            f"per-CPU upcall dispatch with {pids} handler PID(s): the router's "
            "miss handlers listen per port, so misses go nowhere",
            "restart `odpctl router start` (it sets per-port dispatch), and use "
            "odpctl, not ovs-dpctl, on this datapath",
        )
    if resets:
        return warn(
            "datapath",
            d.name,
            "dispatch",
            f"per-port upcall dispatch now, but something switched it to per-CPU "
            f"{resets} time(s) since the router started (ovs-dpctl does, silently)",
            "use odpctl rather than ovs-dpctl on this datapath",
        )
    return ok(
        "datapath",
        d.name,
        "dispatch",
        "per-port upcall dispatch, where the router's miss handlers listen",
    )


def _lost(f: Facts) -> Check:
    assert f.datapath is not None
    d = f.datapath
    grew = d.second.lost - d.first.lost
    if grew > 0:
        return problem(
            "datapath",
            d.name,
            "lost",
            f"lost upcalls growing: +{grew} in {d.interval:g} s ({d.second.lost} in all)",
            "the miss handlers cannot keep up or are gone: see `odpctl router "
            "status` and `odpctl watch upcalls`",
        )
    return ok(
        "datapath",
        d.name,
        "lost",
        f"no upcall lost in {d.interval:g} s ({d.second.lost} lost since the start)",
    )


def _flows(f: Facts) -> Check:
    assert f.datapath is not None
    d = f.datapath
    flows = d.second.flows
    evidence = f"{flows} flow(s), against Open vSwitch's default limit of {FLOW_LIMIT:,}"
    if flows >= FLOW_LIMIT * 0.9:
        return problem(
            "datapath",
            d.name,
            "flows",
            evidence,
            "flows are not expiring: check the router's revalidator, or flush "
            "with `odpctl flow flush`",
        )
    if flows >= FLOW_LIMIT * 0.75:
        return warn(
            "datapath",
            d.name,
            "flows",
            evidence,
            "watch it with `odpctl watch stats`: near the limit, misses pile up",
        )
    return ok("datapath", d.name, "flows", evidence)

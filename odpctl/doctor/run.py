"""One run of the doctor: gather the facts, run every check."""

from __future__ import annotations

from pathlib import Path

from .checks_datapath import datapath_checks
from .checks_host import host_checks
from .checks_peers import peer_checks
from .checks_ports import port_checks
from .checks_router import router_checks
from .facts import Facts, gather
from .report import Report

CHECKS = (datapath_checks, router_checks, peer_checks, port_checks, host_checks)


def diagnose(
    netns: str | None, control: Path, datapath: str | None = None, interval: float = 1.0
) -> tuple[Report, Facts]:
    """The report on this host (namespace ``netns``); raises `OdpError` if it cannot look."""
    facts = gather(netns, control, datapath, interval)
    return Report([c for check in CHECKS for c in check(facts)]), facts

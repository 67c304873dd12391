"""``odpctl doctor``: what is wrong on this host's overlay, and how to fix it.

Facts are gathered once (`facts`: the router's status, the datapath, links,
sysctls, firewall rules); the checks are plain functions of them, each
giving `Check`s: ok, warn or problem, with the evidence and a one-line fix.
"""

from __future__ import annotations

from .report import Check, Level, Report
from .run import diagnose

__all__ = ["Check", "Level", "Report", "diagnose"]

"""`odpctl watch flows|stats|vports` on the kernel datapath with real traffic.

The same scenarios as on the userspace datapath (tests/watch/scenarios.py),
and the live screen in a real terminal (tests/watch/test_live.py, whose
tests are imported here to run with the kernel's ``hosted``).
"""

from __future__ import annotations

from collections.abc import Callable

from watch import scenarios
from watch.fixtures import Hosted, Result, kernel_hosted_fixture, odpctl_fixture
from watch.test_live import (
    terminal,
    test_watch_flows_live,
    test_watch_stats_live_stops_on_ctrl_c,
    test_watch_vports_live_shows_events,
)

__all__ = [  # fixtures and tests, known to pytest by their names
    "kernel_hosted_fixture",
    "odpctl_fixture",
    "terminal",
    "test_watch_flows_live",
    "test_watch_stats_live_stops_on_ctrl_c",
    "test_watch_vports_live_shows_events",
]


def test_flows(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.flows_show_rates_new_and_removed_flows(hosted.bed, hosted.a, hosted.b, odpctl)


def test_stats(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.stats_show_hit_rates(hosted.bed, hosted.a, hosted.b, odpctl)


def test_vports(hosted: Hosted, odpctl: Callable[..., Result]) -> None:
    scenarios.vports_show_events_and_rates(hosted.bed, hosted.a, hosted.b, odpctl)

"""Rates and times as people read them, shared by the live view and the lines."""

from __future__ import annotations

import time

from odpctl.present import tables

NO_RATE = "-"


def count_rate(value: float | None) -> str:
    """``0``, ``12``, ``980``, ``1.2k``, ``3.4M`` (per second, unit left to the caller)."""
    if value is None:
        return NO_RATE
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def byte_rate(value: float | None) -> str:
    """``980 B/s``, ``1.5 KiB/s``."""
    if value is None:
        return NO_RATE
    return f"{tables.size(round(value))}/s"


def percent(value: float | None) -> str:
    return NO_RATE if value is None else f"{value:.1f}%"


def clock(wall: float) -> str:
    """``12:00:01.003``: local time of day, to the millisecond."""
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"

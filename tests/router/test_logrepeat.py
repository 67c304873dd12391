"""Repeated identical warnings: one line, then a count."""

from __future__ import annotations

import logging
import time

import pytest

from odpctl.overlay.logrepeat import RepeatFilter


@pytest.fixture(name="logger")
def logger_fixture() -> logging.Logger:
    logger = logging.getLogger("odpctl.test-repeats")
    logger.setLevel(logging.DEBUG)
    return logger


def test_a_storm_of_one_warning_is_one_line_then_a_count(
        logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    repeats = RepeatFilter(window=0.3)
    repeats.install(logger.name)
    try:
        with caplog.at_level(logging.DEBUG, logger.name):
            for _ in range(10_000):
                logger.warning("vport events: %s", "the server closed the connection")
            logger.warning("another warning")
            logger.debug("debug lines always pass")
            logger.debug("debug lines always pass")
            time.sleep(0.35)
            repeats.flush()
            logger.warning("vport events: %s", "the server closed the connection")
    finally:
        repeats.uninstall(logger.name)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "vport events: the server closed the connection",
        "another warning",
        "debug lines always pass",
        "debug lines always pass",
        "vport events: the server closed the connection (repeated 9999 more times)",
        "vport events: the server closed the connection",
    ]
    assert repeats.suppressed == 9999


def test_the_count_rides_on_the_next_line_after_the_window(
        logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    repeats = RepeatFilter(window=0.2)
    repeats.install(logger.name)
    try:
        with caplog.at_level(logging.WARNING, logger.name):
            for _ in range(3):
                logger.error("handler died")
            time.sleep(0.25)
            logger.error("handler died")
    finally:
        repeats.uninstall(logger.name)
    assert [r.getMessage() for r in caplog.records] == [
        "handler died", "handler died (repeated 2 more times in the 0.2 s before)"]

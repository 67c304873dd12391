"""Repeated identical warnings: one line, then a count."""

from __future__ import annotations

import logging

import pytest

from odpctl.overlay.logrepeat import RepeatFilter


class Clock:
    """Time that moves only when told: the test does not depend on the machine's speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="logger")
def logger_fixture() -> logging.Logger:
    logger = logging.getLogger("odpctl.test-repeats")
    logger.setLevel(logging.DEBUG)
    return logger


def test_a_storm_of_one_warning_is_one_line_then_a_count(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    repeats = RepeatFilter(window=10, clock=clock)
    repeats.install(logger.name)
    try:
        with caplog.at_level(logging.DEBUG, logger.name):
            for _ in range(10_000):
                logger.warning("vport events: %s", "the server closed the connection")
            logger.warning("another warning")
            logger.debug("debug lines always pass")
            logger.debug("debug lines always pass")
            clock.now += 9.9
            repeats.flush()  # the window is not over: nothing to say yet
            clock.now += 0.2
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
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    repeats = RepeatFilter(window=5, clock=clock)
    repeats.install(logger.name)
    try:
        with caplog.at_level(logging.WARNING, logger.name):
            for _ in range(3):
                logger.error("handler died")
            clock.now += 5
            logger.error("handler died")
    finally:
        repeats.uninstall(logger.name)
    assert [r.getMessage() for r in caplog.records] == [
        "handler died",
        "handler died (repeated 2 more times in the 5 s before)",
    ]

"""The shell tests' fixtures: a userspace datapath with hosts (tests/watch/fixtures.py)."""

from watch.fixtures import hosted_fixture, odpctl_fixture

__all__ = ["hosted_fixture", "odpctl_fixture"]

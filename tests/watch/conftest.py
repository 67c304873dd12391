"""The watch tests' fixtures: see fixtures.py."""

from watch.fixtures import hosted_fixture, odpctl_fixture

__all__ = ["hosted_fixture", "odpctl_fixture"]

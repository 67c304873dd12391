"""The README's first command, for real: `odpctl demo` (the 3-host overlay) in the guest."""

from __future__ import annotations

from router.demo_check import check_demo


def test_demo_pings_every_pair_and_leaves_nothing_behind() -> None:
    check_demo("kernel")

"""`odpctl demo` on this machine: the userspace datapath stands in for the kernel's."""

from __future__ import annotations

import os

import pytest

from .demo_check import check_demo


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_demo_on_the_userspace_datapath() -> None:
    check_demo("userspace")

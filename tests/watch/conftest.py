"""Fixtures of the watch tests on this machine: a userspace datapath with hosts.

``bed``     a `Bed` (tests/watch/bed.py): datapath ``dp0`` of a userspace
            datapath (``python -m odpctl.datapath``) in a fresh namespace,
            hosts ``a`` (10.0.0.1) and ``b`` (10.0.0.2) plugged in, no flows.
``odpctl``  runs one odpctl command line in this process against the bed,
            as the installed command would; returns (code, out, err).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from odpctl.cli import run
from odpctl.odp.dpif import Dpif

from .bed import Bed, userspace_datapath


@dataclass
class Hosted:
    bed: Bed
    a: str
    b: str


@pytest.fixture
def hosted(netns: Callable[[], str]) -> Iterator[Hosted]:
    ns, a, b = netns(), netns(), netns()
    socket_dir = tempfile.mkdtemp(prefix="odpt-")
    try:
        with userspace_datapath(ns, socket_dir) as spec, Dpif.open(spec, netns=ns) as dpif:
            dpif.create_datapath("dp0")
            bed = Bed(dpif, ns, "dp0", ["--netns", ns, "--datapath", spec])
            bed.plug(a, "10.0.0.1")
            bed.plug(b, "10.0.0.2")
            yield Hosted(bed, a, b)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def odpctl(hosted: Hosted, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def call(*argv: str) -> Result:
        capsys.readouterr()
        code = run([*hosted.bed.options, *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call

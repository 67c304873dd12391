"""Fixtures of the watch and shell tests: a datapath with hosts plugged in.

conftest.py of tests/watch and tests/shell, and tests/kernel/test_watch_*.py,
import them (pytest knows them by the names below).

``hosted``  a `Hosted`: a `Bed` (tests/watch/bed.py) with datapath ``dp0`` in a
            fresh namespace, hosts ``a`` (10.0.0.1) and ``b`` (10.0.0.2) plugged
            in, no flows.  `hosted_fixture` makes it on a userspace datapath
            (``python -m odpctl.datapath``), `kernel_hosted_fixture` on the
            kernel's (in the test-bed guest).
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


def _hosted(dpif: Dpif, ns: str, spec: str, netns: Callable[[], str]) -> Hosted:
    a, b = netns(), netns()
    dpif.create_datapath("dp0")
    bed = Bed(dpif, ns, "dp0", ["--netns", ns, "--datapath", spec])
    bed.plug(a, "10.0.0.1")
    bed.plug(b, "10.0.0.2")
    return Hosted(bed, a, b)


@pytest.fixture(name="hosted")
def hosted_fixture(netns: Callable[[], str]) -> Iterator[Hosted]:
    ns = netns()
    socket_dir = tempfile.mkdtemp(prefix="odpt-")
    try:
        with userspace_datapath(ns, socket_dir) as spec, Dpif.open(spec, netns=ns) as dpif:
            yield _hosted(dpif, ns, spec, netns)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture(name="hosted")
def kernel_hosted_fixture(netns: Callable[[], str]) -> Iterator[Hosted]:
    # The datapath goes with its namespace, when the netns fixture deletes it.
    ns = netns()
    with Dpif.open("kernel", netns=ns) as dpif:
        yield _hosted(dpif, ns, "kernel", netns)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(name="odpctl")
def odpctl_fixture(hosted: Hosted, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def call(*argv: str) -> Result:
        capsys.readouterr()
        code = run([*hosted.bed.options, *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call

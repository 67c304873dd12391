"""Fixtures for tests of the real Open vSwitch kernel datapath.

Every test in this directory is marked ``kernel`` automatically (but for the userspace
datapath's variants of the command tests, which run in the host suite). They need the
openvswitch module, which our machines' kernel lacks, so they run inside the
user-mode-linux guest; ``tests/run`` does that for you, or by hand:

    testbed/uml-run --rw "$PWD" -- .venv/bin/python -m pytest -m kernel -p no:cacheprovider tests

Outside the guest they fail (not skip): a kernel suite that silently ran nothing
would look green.

Fixtures here: ``veth_pair`` (factory), ``ovs_dpctl`` (the real ovs-dpctl) and
``datapath_name`` (a unique datapath name; the datapath is deleted afterwards).
``netns`` and ``run`` come from tests/conftest.py. Each test should build its
hosts in namespaces of its own and use unique names, so that tests cannot see
each other's leftovers.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

KERNEL_TESTS = Path(__file__).parent


def _userspace_variant(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "userspace"


# tryfirst: the mark must be on the items before pytest's own -m filtering looks.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's collection_modifyitems sees the items of the whole session,
    # so pick ours by path. The userspace datapath's variants of these tests need no
    # kernel module: they run in the host suite, where they start much faster than
    # in the guest (every process start is slow under user-mode-linux).
    for item in items:
        if item.path.is_relative_to(KERNEL_TESTS) and not _userspace_variant(item):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(autouse=True)
def _kernel_datapath_present(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("kernel") is None:
        return
    if not Path("/sys/module/openvswitch").is_dir():
        pytest.fail(
            'kernel tests must run inside the guest: testbed/uml-run --rw "$PWD" -- '
            ".venv/bin/python -m pytest -m kernel tests  (or simply: tests/run). "
            "Here the openvswitch kernel module is not loaded (/sys/module/openvswitch "
            "is absent).",
            pytrace=False,
        )


@pytest.fixture
def veth_pair(run: Callable[..., str]) -> Iterator[Callable[..., tuple[str, str]]]:
    """Factory: ``outer, inner = veth_pair(netns=ns)`` creates a veth pair, both ends up.

    ``outer`` stays in the current namespace, ready to become a datapath port;
    ``inner`` is moved into ``netns`` when given. Names are unique (``vo<hex>`` /
    ``vi<hex>``, within the kernel's 15-character limit). The pair is deleted when
    the test ends (unless deleting ``netns`` already took it away).
    """
    created: list[str] = []

    def make(netns: str | None = None) -> tuple[str, str]:
        tag = secrets.token_hex(3)
        outer, inner = f"vo{tag}", f"vi{tag}"
        peer = ["peer", "name", inner] + (["netns", netns] if netns else [])
        run("ip", "link", "add", outer, "type", "veth", *peer)
        created.append(outer)
        run("ip", "link", "set", outer, "up")
        run("ip", "link", "set", inner, "up", netns=netns)
        return outer, inner

    yield make

    for outer in created:
        # Deleting one end deletes both; failing with "Cannot find device" means
        # it is gone already.
        subprocess.run(["ip", "link", "del", outer], capture_output=True)


@pytest.fixture
def ovs_dpctl(run: Callable[..., str]) -> Callable[..., str]:
    """``ovs_dpctl("show", dp)`` -> stdout of Open vSwitch's own ovs-dpctl, which
    talks to the kernel directly (no ovs-vswitchd needed). A failure raises
    ``subprocess.CalledProcessError`` whose message has ovs-dpctl's stderr.
    ``netns=ns`` runs it in a namespace (a datapath lives in the namespace that
    created it, and goes away with it)."""

    def ovs_dpctl(*args: str, netns: str | None = None) -> str:
        return run("ovs-dpctl", *args, netns=netns)

    return ovs_dpctl


@pytest.fixture
def datapath_name(ovs_dpctl: Callable[..., str]) -> Iterator[str]:
    """A datapath name no other test uses (``odpt<hex>``, also the name of its
    internal port). The test creates the datapath, in the current namespace, with
    whatever tool it is testing; it is deleted afterwards if it still exists."""
    name = f"odpt{secrets.token_hex(4)}"
    yield name
    try:
        ovs_dpctl("del-dp", name)
    except subprocess.CalledProcessError as exc:
        if "No such device" not in exc.stderr:
            raise

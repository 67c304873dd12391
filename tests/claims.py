"""Share one test run between several pytest processes: ``--claim-dir DIR``.

tests/run starts the kernel suite in two user-mode-linux guests at once (a UML
guest has one CPU, the machine has more). Each guest collects the same tests and
walks them in the same order; before the first test of a module it tries to
claim that module by creating ``DIR/<module>`` with O_EXCL (atomic on the host's
file system, which both guests see). The guest that wins runs the whole module;
the other passes over it without a report, so each test is run and counted once.

Whole modules, not single tests: module-scoped fixtures (a booted overlay of
three routers, say) are built once, and a guest that is free takes the next
module, which balances the load without knowing how long anything takes.
"""

from __future__ import annotations

import os

import pytest

_claimed: dict[str, bool] = {}  # module node id -> whether this process runs it


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--claim-dir",
        metavar="DIR",
        help="share the run with other pytest processes given the same DIR: each "
        "test module runs in the process that claims it first",
    )


def _ours(item: pytest.Item, directory: str) -> bool:
    module = item.nodeid.split("::", 1)[0]
    if module not in _claimed:
        path = os.path.join(directory, module.replace("/", "_"))
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            _claimed[module] = True
        except FileExistsError:
            _claimed[module] = False
    return _claimed[module]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(
    item: pytest.Item,
    nextitem: pytest.Item | None,  # noqa: ARG001 - pytest calls hooks by argument name
) -> bool | None:
    directory = item.config.getoption("claim_dir")
    if not directory:
        return None
    if not _ours(item, directory):
        return True  # another process runs this module: no report from us
    # The item we ran last was torn down as far as the one after it needed, and that
    # one may have been passed over: finish what this item's chain does not share
    # (pytest's own runner does the same with the real next item; it is private API,
    # and pytest is pinned in pyproject.toml).
    item.session._setupstate.teardown_exact(item)
    return None

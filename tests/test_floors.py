"""The floors of the house: no module of odpctl imports from a higher floor.

Every import counts, at module level or inside a function (an import put off
into a function is still a dependency).  There is no list of exceptions.  The
test prints the import graph by floor (``pytest -s tests/test_floors.py``), so
that a new part's place is seen at a glance.

The table is our own copy of the plan (CI also runs ../shared/tools/floors.py,
which must agree); a new first-level part of odpctl must be given a floor here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "odpctl"

# floor of each first-level part of odpctl (a module or a package)
FLOORS = {
    "errors": 0,
    "netlink": 0,
    "odp": 1,
    "datapath": 2,
    "mesh": 2,
    "control": 2,
    "present": 2,
    "overlay": 3,
    "ipam": 3,
    "dns": 3,
    "crypto": 3,
    "ipsec": 3,
    "router": 4,
    "demo": 5,
    "cni": 5,
    "docker": 5,
    "plugin": 5,
    "watch": 6,
    "shell": 6,
    "commands": 6,
    "repl": 6,
    "doctor": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 8,
}
# parts on the same floor that must still not know each other
NEVER = {
    ("mesh", "control"),
    ("mesh", "datapath"),
    ("mesh", "odp"),
    ("datapath", "mesh"),
    ("control", "mesh"),
    ("control", "datapath"),
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "odpctl" and len(parts) > 1 else None


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file at ``path``."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = rel[:-1]  # a module's relative imports start from its package
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer part, imported part) -> the places, for every import across parts."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _part(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        assert me is not None
        for line, module in _imports(path):
            other = _part(module)
            if other is not None and other != me:
                edges[me, other].append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return edges


def test_relative_imports_resolve_like_python() -> None:
    # odpctl/present/tables.py's "from .jsonout import x" and "from . import odptext"
    imports = dict(_imports(PACKAGE / "present" / "tables.py"))
    assert "odpctl.present.jsonout" in imports.values()
    assert "odpctl.present" in imports.values()


def test_every_part_has_a_floor() -> None:
    parts = {
        _part(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
        for p in PACKAGE.rglob("*.py")
    }
    assert parts - FLOORS.keys() == set(), "give the new part a floor in FLOORS"


def test_no_import_points_up(capsys: pytest.CaptureFixture[str]) -> None:
    edges = _edges()
    with capsys.disabled():
        print("\nimport graph by floor (part -> parts it imports, with their floors):")
        for part in sorted(
            {me for me, _ in edges} | FLOORS.keys() & {o for _, o in edges},
            key=lambda p: (FLOORS[p], p),
        ):
            targets = sorted({o for me, o in edges if me == part}, key=lambda p: (FLOORS[p], p))
            arrows = ", ".join(f"{o} ({FLOORS[o]})" for o in targets) or "-"
            print(f"  {FLOORS[part]} {part:9} -> {arrows}")
    bad = [
        f"{where} {me} (floor {FLOORS[me]}) -> {other} (floor {FLOORS[other]})"
        for (me, other), places in sorted(edges.items())
        if FLOORS[other] > FLOORS[me] or (me, other) in NEVER
        for where in places
    ]
    assert bad == [], "imports that point up a floor or across a never:\n" + "\n".join(bad)

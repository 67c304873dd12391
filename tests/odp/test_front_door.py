"""The library's front door: `odpctl.odp` names the public API, and the README uses only it."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import odpctl.odp

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return str(code)


def test_the_readme_example_imports_only_from_the_front_door() -> None:
    tree = ast.parse(_readme_example())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports, "the README's example imports nothing"
    assert all(isinstance(n, ast.ImportFrom) and n.module == "odpctl.odp" for n in imports)
    # ... and its imports run: every name it takes is there.
    namespace: dict[str, object] = {}
    # the README's own import lines, nothing else of it
    body: list[ast.stmt] = [*imports]
    exec(compile(ast.Module(body, type_ignores=[]), "README.md", "exec"), namespace)  # noqa: S102
    names = {a.name for n in imports for a in n.names}
    assert names <= set(odpctl.odp.__all__)


def test_every_public_name_is_its_module_s_own() -> None:
    for name, module in odpctl.odp._WHERE.items():
        assert getattr(odpctl.odp, name) is getattr(importlib.import_module(module), name)
    assert sorted(odpctl.odp._WHERE) == odpctl.odp.__all__
    assert set(dir(odpctl.odp)) >= set(odpctl.odp.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(odpctl.odp, "NoSuchThing")


def test_the_front_door_loads_nothing_until_asked() -> None:
    # Importing a submodule (as every command does) must not pay for the rest.
    code = (
        "import sys, odpctl.odp.keys; "
        "print(sorted(m for m in sys.modules if m.startswith('odpctl.odp.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = set(ast.literal_eval(out))
    assert not loaded & {
        "odpctl.odp.dpif",
        "odpctl.odp.text.keys",
        "odpctl.odp.text.actions",
        "odpctl.odp.endpoint",
        "odpctl.odp.upcalls",
    }

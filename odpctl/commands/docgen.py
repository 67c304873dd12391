"""Regenerate (or check) the checked-in man pages and completion scripts.

    python -m odpctl docgen            # write man/ and completions/
    python -m odpctl docgen --check    # exit 1 if any file is stale

Both are generated from the app's command tree (`odpctl.cli.command`), which
the caller passes in (the app sits above its commands); the test suite runs
the check, so a command changed without regenerating fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typer import _click as click

from .cmdtree import build
from .completions import scripts
from .manpages import pages

ROOT = Path(__file__).resolve().parents[2]


def generated(tree: click.Command) -> dict[Path, str]:
    """Path (relative to the repository) -> content of every generated file."""
    spec = build(tree)
    files = {Path("man", name): text for name, text in pages(spec).items()}
    files.update({Path("completions", name): text for name, text in scripts(spec).items()})
    return files


def stale(tree: click.Command, root: Path = ROOT) -> list[Path]:
    """The generated files whose checked-in copy differs (or is missing)."""
    out = []
    for rel, text in generated(tree).items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            out.append(rel)
    return out


def main(tree: click.Command, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odpctl docgen")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository")
    args = parser.parse_args(argv)
    if args.check:
        old = stale(tree, args.root)
        for rel in old:
            print(f"stale: {rel} (run: python -m odpctl docgen)", file=sys.stderr)
        return 1 if old else 0
    for rel, text in generated(tree).items():
        path = args.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {rel}")
    return 0

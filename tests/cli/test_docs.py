"""Man pages and completion scripts: checked in, current, complete, and clean for groff."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from odpctl import errors
from odpctl.cli import command
from odpctl.commands import docgen, manpages
from odpctl.commands.cmdtree import CommandSpec, build
from odpctl.odp.text.actions import parse_actions
from odpctl.odp.text.keys import parse_key
from odpctl.present import jsonout

from .conftest import Result

ROOT = docgen.ROOT
SPEC = build(command())


def test_checked_in_files_are_current() -> None:
    stale = docgen.stale(command())
    assert not stale, (
        f"stale generated files {[str(p) for p in stale]}: run python -m odpctl docgen"
    )


def test_check_mode_finds_a_stale_file(tmp_path: Path) -> None:
    assert docgen.main(command(), ["--root", str(tmp_path)]) == 0  # writes a fresh copy there
    assert docgen.main(command(), ["--check", "--root", str(tmp_path)]) == 0
    page = tmp_path / "man" / "odpctl-flow.1"
    page.write_text(page.read_text().replace("dump", "dmup"))
    assert docgen.main(command(), ["--check", "--root", str(tmp_path)]) == 1


def test_every_exit_code_is_documented() -> None:
    codes = {getattr(errors, n) for n in dir(errors) if n.startswith("EXIT_")}
    assert codes <= set(manpages.EXIT_CODES)
    page = (ROOT / "man" / "odpctl.1").read_text()
    for code in codes:
        assert f".TP\n\\fB{code}\\fR\n" in page


def _page_of(cmd: CommandSpec) -> str:
    # A group's commands are on the group's page; others on odpctl(1).
    name = "odpctl.1" if len(cmd.path) < 2 else f"odpctl-{cmd.path[0]}.1"
    return (ROOT / "man" / name).read_text()


@pytest.mark.parametrize("cmd", [c for c in SPEC.walk() if not c.subcommands], ids=lambda c: c.name)
def test_every_option_is_in_the_man_page(cmd: CommandSpec) -> None:
    page = _page_of(cmd)
    assert manpages._escape(cmd.usage) in page
    for opt in cmd.options:
        for name in [*opt.names, *opt.negations]:
            if name not in ("--help", "-h"):
                assert f"\\fB{manpages._escape(name)}\\fR" in page, (cmd.name, name)


def test_global_options_and_json_keys_in_odpctl_1() -> None:
    page = (ROOT / "man" / "odpctl.1").read_text()
    for opt in SPEC.options:
        if opt.names[0] != "--help":
            assert f"\\fB{manpages._escape(opt.names[0])}\\fR" in page
    for keys in (jsonout.DATAPATH_KEYS, jsonout.PORT_KEYS, jsonout.FLOW_KEYS, jsonout.RESULT_KEYS):
        for key in keys:
            assert f".TP\n\\fB{manpages._escape(key)}\\fR\n" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "man").glob("*.1")))
def test_groff_renders_without_warnings(page: str) -> None:
    proc = subprocess.run(
        ["groff", "-man", "-Tutf8", "-wall", str(ROOT / "man" / page)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert "odpctl" in proc.stdout


def test_a_page_per_group() -> None:
    names = {p.name for p in (ROOT / "man").glob("*.1")}
    groups = [g for g in SPEC.subcommands if g.subcommands]
    assert {"dp", "vport", "flow"} <= {g.path[0] for g in groups}
    # and odpctl-cni(1), the page of the CNI plugin (an executable of its own)
    assert names == {"odpctl.1", "odpctl-cni.1"} | {f"odpctl-{g.path[0]}.1" for g in groups}


@pytest.mark.parametrize("cmd", SPEC.walk(), ids=lambda c: c.name)
def test_help_of_every_command(cli: Callable[..., Result], cmd: CommandSpec) -> None:
    result = cli(*cmd.path, "--help")
    assert result.code == 0
    assert result.out.startswith(f"Usage: {cmd.usage}")


def _help_examples(paragraph_start: str) -> list[str]:
    """The `quoted` examples of the `odpctl flow --help` paragraph that starts so.

    An example may be cut over two lines: a span ending in a comma goes on in
    the next one.
    """
    (flow,) = [c for c in SPEC.subcommands if c.path == ("flow",)]
    (paragraph,) = [p for p in flow.help.split("\n\n") if p.startswith(paragraph_start)]
    examples: list[str] = []
    for span in re.findall(r"`([^`]*)`", paragraph):
        if examples and examples[-1].endswith(","):
            examples[-1] += span
        else:
            examples.append(span)
    return examples


def test_help_examples_parse() -> None:
    # The flow and action examples of `odpctl flow --help`, as the help says them.
    keys = [e for e in _help_examples("FLOW is") if e.startswith("in_port(")]
    actions = _help_examples("ACTIONS are")
    assert len(keys) == 1 and len(actions) >= 5
    for key in keys:
        parse_key(key)
    for action in actions:
        parse_actions(action)

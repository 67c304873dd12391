"""Expected failures: one line on stderr, the documented exit code, no traceback.

These need no datapath: they fail before one is asked, or because there is
none on this machine (no openvswitch module here; the kernel suite covers the
datapath's own refusals).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from odpctl.errors import EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE

from .conftest import Result

ODPCTL = Path(sys.executable).with_name("odpctl")


def one_line(result: Result) -> str:
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("odpctl: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["dp", "shw"], "no such command 'shw'. Did you mean 'show'? (see `odpctl dp --help`)"),
        (["dp", "show", "--bogus"], "no such option: --bogus"),
        (["flow", "dump", "--sort", "fastest"], "'fastest' is not one of"),
        (["flow", "add"], "expected [DP] FLOW ACTIONS, got nothing"),
        (["flow", "add", "a", "b", "c", "d"], "expected [DP] FLOW ACTIONS, got 4 arguments"),
        (["flow", "add", "dp0", "in_port(1),eth()"], "'dp0' is not a flow"),
        (["flow", "get"], "expected [DP] FLOW, got nothing"),
        (["flow", "add", "--file", "f", "dp0", "x"], "with --file, give at most the datapath"),
        (["flow", "dump", "--used-within", "soon"], "invalid duration 'soon'"),
        (["dp", "set", "dp0"], "nothing to set"),
        (["vport", "set", "dp0", "p"], "nothing to set: give --upcall-pid"),
        (["vport", "add", "dp0", "eth0", "--dst-port", "4790"], "--dst-port is for vxlan"),
        (["vport", "add", "dp0", "gnv", "-t", "geneve", "--gbp"], "--gbp is for vxlan ports"),
        (["dp", "set", "dp0", "--per-cpu-pids", "1,x"], "expected numbers separated by commas"),
        (["--datapath", "bogus", "dp", "list"], "unknown datapath 'bogus'"),
    ],
)
def test_usage_errors(cli: Callable[..., Result], argv: list[str], says: str) -> None:
    result = cli(*argv)
    assert result.code == EXIT_USAGE
    assert says in one_line(result)
    assert result.out == ""


@pytest.mark.parametrize(
    ("argv", "text", "column"),
    [
        (["flow", "add", "in_port(1),eth(src=zz)", "2"], "in_port(1),eth(src=zz)", 20),
        (["flow", "add", "in_port(1),eth()", "push_vlan(vid=x)"], "push_vlan(vid=x)", None),
        (["flow", "del", "ufid:1234"], "ufid:1234", 6),
        (["flow", "dump", "--filter", "in_port=1,ipv4.bogus=2"], "in_port=1,ipv4.bogus=2", 11),
    ],
)
def test_malformed_text_gets_a_caret(
    cli: Callable[..., Result], argv: list[str], text: str, column: int | None
) -> None:
    result = cli(*argv)
    assert result.code == EXIT_USAGE
    first, shown, caret = result.err.splitlines()
    assert first.startswith("odpctl: error: column ")
    assert shown == f"  {text}"
    assert caret.endswith("^")
    if column is not None:
        assert len(caret) - 2 == column  # two spaces of indent, then the caret's column


@pytest.mark.skipif(Path("/sys/module/openvswitch").is_dir(), reason="this kernel has the module")
def test_no_datapath_says_what_to_do(cli: Callable[..., Result]) -> None:
    result = cli("--datapath", "auto", "dp", "list")
    assert result.code == EXIT_UNAVAILABLE
    assert "modprobe openvswitch" in one_line(result)
    assert "odpctl dp serve" in one_line(result)


def test_no_server_at_socket(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("--datapath", f"unix:{tmp_path}/none.sock", "flow", "dump")
    assert result.code == EXIT_UNAVAILABLE
    assert "odpctl dp serve" in one_line(result)


def test_unknown_netns(cli: Callable[..., Result]) -> None:
    result = cli("--netns", "odpctl-no-such-ns", "dp", "list")
    assert result.code == EXIT_NOT_FOUND
    assert "ip netns" in one_line(result)


def test_unreadable_file(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("flow", "parse", "keys", str(tmp_path / "missing"))
    assert result.code == EXIT_FAILURE
    assert "cannot read" in one_line(result)


def test_serve_without_the_userspace_datapath(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "odpctl.datapath", types.ModuleType("odpctl.datapath"))
    result = cli("dp", "serve")
    assert result.code == EXIT_FAILURE
    assert "no userspace datapath" in one_line(result)


def test_help_needs_no_datapath(cli: Callable[..., Result]) -> None:
    result = cli("flow", "dump", "--help")
    assert result.code == 0
    assert "Usage: odpctl flow dump [OPTIONS] [DP]" in result.out


def test_no_arguments_shows_help(cli: Callable[..., Result]) -> None:
    result = cli()
    assert result.code == EXIT_USAGE
    assert "Usage: odpctl" in result.out + result.err


# --- the installed command, as a shell runs it -------------------------------------------


def test_real_command_exit_status_and_one_line() -> None:
    proc = subprocess.run(
        [str(ODPCTL), "flow", "add", "in_port(1),eth(src=zz)", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0].startswith("odpctl: error: column 20: ")


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("in_port(1),eth()\n" * 20000)
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {ODPCTL} flow parse keys {keys} | head -n 1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.startswith("in_port(1)")
    assert proc.stderr == ""
    assert proc.returncode == EXIT_FAILURE


def test_parse_json(cli: Callable[..., Result], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("in_port(1),eth()\n# comment\n\nbogus(\n")
    result = cli("flow", "parse", "keys", str(keys), "--json")
    assert result.code == EXIT_FAILURE  # as without --json: a line did not parse
    assert json.loads(result.out) == {
        "lines": [
            {"line": 1, "text": "in_port(1),eth()", "canonical": "in_port(1),eth()", "error": None},
            {
                "line": 4,
                "text": "bogus(",
                "canonical": None,
                "error": "column 1: unknown key attribute 'bogus'",
            },
        ]
    }


def test_bad_trusted_subnets_are_one_line_and_exit_2(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = cli("router", "start", "--trusted-subnets", "10.0.0.0/8,bogus")
    assert result.code == EXIT_USAGE and "'bogus'" in one_line(result)
    empty = tmp_path / "pw"
    empty.write_text("\n")
    result = cli("router", "start", "--password-file", str(empty))
    assert result.code == EXIT_USAGE and "is empty" in one_line(result)

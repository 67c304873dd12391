"""Start-up: a command imports what it uses and no more (bench/startup.py times it).

Each case runs in a fresh interpreter, as the installed ``odpctl`` does, and
lists the modules the command line left imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from .conftest import Result

PROBE = """
import json, sys
from odpctl.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

# Half of a command's start-up each, before they were loaded lazily.
CODEC = ("odpctl.odp.actions", "odpctl.odp.keys", "odpctl.odp.text.keys", "odpctl.odp.text.actions")
HEAVY = ("pydantic", "rich", "pyroute2", "odpctl.demo.overlaylab", "odpctl.mesh", "odpctl.router")


def imported(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    report = json.loads(proc.stderr.splitlines()[-1])
    return report["code"], set(report["modules"])


def top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} | modules


def test_version_imports_no_command() -> None:
    code, modules = imported("--version")
    assert code == 0
    loaded = top(modules)
    assert not [m for m in (*CODEC, *HEAVY, "odpctl.odp.dpif") if m in loaded]
    assert not [
        m
        for m in modules
        if m.startswith("odpctl.commands.")
        and m.rsplit(".", 1)[1] in ("dp", "vport", "flow", "watch", "router", "peer")
    ]


def test_dp_show_imports_no_flow_codec_nor_other_groups() -> None:
    # No datapath at this address: the command runs up to asking it.
    code, modules = imported("--datapath", "unix:/nonexistent/odpctl.sock", "dp", "show", "--json")
    assert code != 0
    assert "odpctl.commands.dp" in modules
    loaded = top(modules)
    assert not [m for m in (*CODEC, *HEAVY) if m in loaded]
    assert "odpctl.commands.flow" not in modules


def test_help_still_lists_every_group(cli: Callable[..., Result]) -> None:
    result = cli("--help")
    listed = [
        line.split()[0] for line in result.out.split("Commands:")[1].splitlines() if line.strip()
    ]
    assert listed == [
        "shell",
        "demo",
        "doctor",
        "dp",
        "vport",
        "flow",
        "watch",
        "router",
        "peer",
        "ipam",
        "dns",
        "docker-plugin",
    ]


def test_a_mistyped_command_is_still_suggested(cli: Callable[..., Result]) -> None:
    result = cli("flwo")
    assert result.code != 0
    assert "Did you mean 'flow'?" in result.err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["vport", "add", "dp0", "x", "--port-no", "abc"], "invalid value for '--port-no'"),
        (["dp", "show", "-f", "xx"], "'xx' is not one of 'table', 'odp', 'json'"),
    ],
)
def test_values_typer_must_convert_still_fail_as_before(
    cli: Callable[..., Result], argv: list[str], says: str
) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert says in result.err

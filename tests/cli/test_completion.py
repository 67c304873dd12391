"""Shell completion, tried in real shells: bash and zsh on a terminal, fish's
own completion engine, and bash's completion function called as bash calls it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from odpctl.cli import command
from odpctl.commands.cmdtree import build

from .shells import COMPLETIONS, fake_path, type_in_terminal

# What follows `odpctl `: the app's commands, hidden ones left out.
GROUPS = [cmd.path[0] for cmd in build(command()).subcommands]

SHELLS = ("bash", "zsh", "fish")
needs = {
    sh: pytest.mark.skipif(shutil.which(sh) is None, reason=f"{sh} is not installed")
    for sh in SHELLS
}
SETUP = Path(__file__).resolve().parents[2] / "setup"


def test_setup_installs_every_shell_tested() -> None:
    # Else CI skips that shell's tests (the skips above are for machines without ./setup).
    packages = re.search(r"^PACKAGES=\((.*?)^\)", SETUP.read_text(), re.M | re.S)
    assert packages is not None
    words = {w for line in packages[1].splitlines() for w in line.split("#")[0].split()}
    # bash is Essential in Debian: every machine has it.
    assert [sh for sh in SHELLS if sh != "bash" and sh not in words] == []


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return fake_path(tmp_path)


def ran(shown: str) -> str:
    """The command line the fake odpctl received, as '[a] [b]'."""
    found = re.findall(r"ARGS:([^\r\n]*)", shown)
    assert found, f"the command did not run; the terminal showed: {shown!r}"
    return str(found[-1]).strip()


# --- bash: the completion function, as bash calls it ------------------------------------


def bash_complete(env: dict[str, str], line: str) -> list[str]:
    script = (
        f"source {COMPLETIONS / 'odpctl.bash'}\n"
        "COMP_LINE=$1; COMP_POINT=${#COMP_LINE}\n"
        "_odpctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "--norc", "-c", script, "bash", line],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stderr == ""
    return [w for w in proc.stdout.split("\n") if w]


@needs["bash"]
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("odpctl ", GROUPS),
        ("odpctl v", ["vport"]),
        ("odpctl dp ", ["list", "show", "add", "del", "set", "serve"]),
        ("odpctl --netns ns1 fl", ["flow"]),
        ("odpctl dp show -", ["--statistics", "-s", "--format", "-f", "--json", "--help", "-h"]),
        ("odpctl flow dump --sort ", ["key", "packets", "bytes", "used", "none"]),
        ("odpctl flow dump --format=j", ["json"]),  # readline completes after the '='
        ("odpctl dp show ", ["dpA", "dpB"]),
        ("odpctl dp show dpA d", ["dpA", "dpB"]),  # show takes several
        ("odpctl vport del ", ["dpA", "dpB"]),
        ("odpctl vport del dpA ", ["port-of-dpA", "va", "vb"]),
        ("odpctl flow parse ", ["keys", "actions"]),
        ("odpctl flow dump dpA ", []),  # one datapath only
        # Unquoted, readline replaces only what follows its last break character, '('.
        ("odpctl flow add dpA in_port(1),eth_t", ["1),eth_type("]),
        (
            "odpctl flow add 'in_port(1),ipv4(pr",
            ["in_port(1),ipv4(proto=", "in_port(1),ipv4(proto= "],
        ),
        ("odpctl flow add 'in_port(1),tcp(", ["in_port(1),tcp(src=", "in_port(1),tcp(dst="]),
        ("odpctl flow get dp", ["dpA", "dpB", "dp_hash("]),  # a datapath, or a flow
    ],
)
def test_bash_function(env: dict[str, str], line: str, expected: list[str]) -> None:
    assert bash_complete(env, line) == expected


@needs["bash"]
def test_bash_flow_attributes(env: dict[str, str]) -> None:
    got = bash_complete(env, "odpctl flow add 'in_port(1),")
    for attr in ("eth(", "tunnel(", "ct_state("):
        assert f"in_port(1),{attr}" in got


@needs["bash"]
def test_bash_passes_global_options_to_name_lookups(env: dict[str, str], tmp_path: Path) -> None:
    bash_complete(env, "odpctl --netns blue --datapath kernel vport del dp0 ")
    assert (tmp_path / "log").read_text() == "--netns blue --datapath kernel _names port dp0\n"


@needs["bash"]
@pytest.mark.parametrize(
    ("keys", "runs"),
    [
        ("odpctl dp sh\t", "[dp] [show]"),
        (
            "odpctl --netns blue vport del dpA port\t",
            "[--netns] [blue] [vport] [del] [dpA] [port-of-dpA]",
        ),
        ("odpctl flow dump --for\tj\t", "[flow] [dump] [--format] [json]"),
        (
            "odpctl flow add 'in_port(1),ipv4\ts\t10.0.0.1)' 2",
            "[flow] [add] [in_port(1),ipv4(src=10.0.0.1)] [2]",
        ),
    ],
)
def test_bash_on_a_terminal(env: dict[str, str], keys: str, runs: str) -> None:
    shown = type_in_terminal(
        ["bash", "--norc", "--noprofile", "-i"],
        env,
        ["PS1='$ '", f"source {COMPLETIONS / 'odpctl.bash'}"],
        keys,
    )
    assert ran(shown) == runs


# --- zsh ------------------------------------------------------------------------------


@needs["zsh"]
@pytest.mark.parametrize(
    ("keys", "runs"),
    [
        ("odpctl dp sh\t", "[dp] [show]"),
        ("odpctl vport del dpA port\t", "[vport] [del] [dpA] [port-of-dpA]"),
        ("odpctl flow dump --sort=pa\t", "[flow] [dump] [--sort=packets]"),
        (
            "odpctl flow add 'in_port(1),ipv4\ts\t10.0.0.1)' 2",
            "[flow] [add] [in_port(1),ipv4(src=10.0.0.1)] [2]",
        ),
    ],
)
def test_zsh_on_a_terminal(env: dict[str, str], tmp_path: Path, keys: str, runs: str) -> None:
    fpath = tmp_path / "zfunc"
    fpath.mkdir()
    shutil.copy(COMPLETIONS / "odpctl.zsh", fpath / "_odpctl")
    shown = type_in_terminal(
        ["zsh", "-f", "-i"],
        env,
        ["PS1='$ '", f"fpath=({fpath} $fpath)", "autoload -U compinit && compinit -u -D"],
        keys,
    )
    assert ran(shown) == runs


# --- fish -----------------------------------------------------------------------------


def fish_complete(env: dict[str, str], line: str) -> list[str]:
    script = f"source {COMPLETIONS / 'odpctl.fish'}; complete -C $argv[1]"
    proc = subprocess.run(
        ["fish", "--no-config", "-c", script, line],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stderr == ""
    return [w.split("\t")[0] for w in proc.stdout.split("\n") if w]


@needs["fish"]
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("odpctl ", sorted(GROUPS)),
        ("odpctl dp sh", ["show"]),
        ("odpctl flow dump --sort ", ["bytes", "key", "none", "packets", "used"]),
        ("odpctl flow dump --format=js", ["--format=json"]),
        ("odpctl vport del ", ["dpA", "dpB"]),
        ("odpctl --netns blue vport del dpA v", ["va", "vb"]),
        ("odpctl flow add 'in_port(1),ipv4(s", ["in_port(1),ipv4(src="]),
        ("odpctl flow add in_port\\(1\\),udp\\(", ["in_port(1),udp(dst=", "in_port(1),udp(src="]),
        ("odpctl flow parse k", ["keys"]),
    ],
)
def test_fish(env: dict[str, str], line: str, expected: list[str]) -> None:
    assert fish_complete(env, line) == expected


@needs["fish"]
def test_fish_describes_commands(env: dict[str, str]) -> None:
    script = f"source {COMPLETIONS / 'odpctl.fish'}; complete -C 'odpctl flow d'"
    out = subprocess.run(
        ["fish", "--no-config", "-c", script], env=env, capture_output=True, text=True, timeout=30
    ).stdout
    assert "dump\tShow a datapath's flows with their statistics." in out

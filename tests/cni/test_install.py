"""``odpctl-cni install [DIR]``: the launcher runtimes run, lean at start-up.

The other CNI tests run the plugin through this launcher (``plugin_dir``);
these check what it is: the interpreter isolated and without site, and a
start-up that imports no more than ADD, DEL and CHECK need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import CONSOLE_SCRIPT

# Costly at start-up and needed by none of ADD, DEL, CHECK (typing is for
# the type checker; setns, which needs ctypes on Python 3.11, is ADD's alone).
NOT_AT_START = {"site", "typing", "ctypes", "importlib.metadata", "pyroute2", "subprocess"}


def test_the_launcher_runs_the_interpreter_isolated_without_site(plugin_dir: Path) -> None:
    launcher = plugin_dir / "odpctl-cni"
    first = launcher.read_text().splitlines()[0]
    interpreter, flags = first.removeprefix("#!").split(" ")
    # The venv's python or python3 (whichever ran the installer): the same interpreter.
    assert flags == "-IS" and Path(interpreter).resolve() == Path(sys.executable).resolve()
    assert os.access(launcher, os.X_OK)
    # Isolated: the caller's PYTHONPATH and site directories count for nothing.
    env = {"CNI_COMMAND": "VERSION", "PYTHONPATH": "/nonexistent", "PATH": os.environ["PATH"]}
    proc = subprocess.run(
        [str(launcher)], input=b"{}", env=env, capture_output=True, timeout=60, check=True
    )
    assert "1.0.0" in json.loads(proc.stdout)["supportedVersions"]


def test_start_up_imports_only_what_the_commands_need(plugin_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-IS", "-X", "importtime", str(plugin_dir / "odpctl-cni")],
        input=b"{}",
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        timeout=60,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "odpctl.cni.plugin" in imported and "json" in imported  # the list is real
    assert imported & NOT_AT_START == set()


def test_install_replaces_a_launcher_already_there(tmp_path: Path) -> None:
    for _ in range(2):
        proc = subprocess.run(
            [str(CONSOLE_SCRIPT), "install", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0 and proc.stdout == f"{tmp_path / 'odpctl-cni'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odpctl-cni"]


def test_install_into_a_missing_directory_fails_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "install", str(missing)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert (
        proc.stderr.startswith("odpctl-cni: cannot install into") and proc.stderr.count("\n") == 1
    )
    assert not missing.exists()


def test_other_arguments_are_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "instal", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stderr.startswith("usage: odpctl-cni install")
    assert list(tmp_path.iterdir()) == []

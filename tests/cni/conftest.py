"""Fixtures of the CNI plugin tests: the plugin as a runtime runs it, and libcni.

``cni``      runs ``odpctl-cni`` the way a runtime does (a process: CNI_* environment,
             config on stdin) and returns (exit status, stdout parsed as JSON, stderr).
``cni_path`` a CNI_PATH: a directory holding ``odpctl-cni`` as ``odpctl-cni install``
             writes it (the lean launcher a runtime runs), then Debian's plugins.
``libcni``   runs the libcni driver (tests/cni/libcni-driver, built by ./setup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = VENV_BIN / "odpctl-cni"
DRIVER = VENV_BIN / "libcni-driver"
DEBIAN_PLUGINS = Path("/usr/lib/cni")

Outcome = tuple[int, Any, str]


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the console script installed the launcher, as a user would."""
    if not CONSOLE_SCRIPT.exists():
        pytest.fail(f"{CONSOLE_SCRIPT} is missing: pip install -e . (./setup) installs it")
    own = tmp_path_factory.mktemp("cni-bin")
    subprocess.run([str(CONSOLE_SCRIPT), "install", str(own)], check=True, timeout=60)
    return own


@pytest.fixture(scope="session")
def cni_path(plugin_dir: Path) -> str:
    return f"{plugin_dir}:{DEBIAN_PLUGINS}"


def _outcome(proc: subprocess.CompletedProcess[bytes]) -> Outcome:
    out = proc.stdout.decode()
    try:
        parsed = json.loads(out) if out.strip() else None
    except ValueError:
        pytest.fail(f"stdout is not JSON: {out!r}\nstderr: {proc.stderr.decode()}")
    return proc.returncode, parsed, proc.stderr.decode()


@pytest.fixture
def cni(cni_path: str, plugin_dir: Path) -> Callable[..., Outcome]:
    def invoke(command: str | None, config: dict[str, Any] | bytes, **env: str) -> Outcome:
        stdin = config if isinstance(config, bytes) else json.dumps(config).encode()
        environ = {"PATH": os.environ["PATH"], "CNI_PATH": cni_path, **env}
        if command is not None:
            environ["CNI_COMMAND"] = command
        proc = subprocess.run(
            [str(plugin_dir / "odpctl-cni")],
            input=stdin,
            capture_output=True,
            env=environ,
            timeout=60,
        )
        return _outcome(proc)

    return invoke


@pytest.fixture
def libcni(cni_path: str, tmp_path: Path) -> Callable[..., Outcome]:
    if not DRIVER.exists():
        pytest.fail(
            f"{DRIVER} is missing: ./setup builds it (needs golang-go and "
            "golang-github-appc-cni-dev)"
        )
    cache = tmp_path / "libcni-cache"

    def drive(
        action: str,
        conflist: dict[str, Any],
        *,
        netns: str,
        container: str,
        ifname: str = "eth0",
        args: str = "",
        runs_in: str | None = None,
    ) -> Outcome:
        """``runs_in``: the (host's) namespace the runtime, so the plugins, run in."""
        path = tmp_path / f"{conflist['name']}.conflist"
        path.write_text(json.dumps(conflist))
        argv = [
            str(DRIVER),
            action,
            "-conflist",
            str(path),
            "-netns",
            netns,
            "-id",
            container,
            "-ifname",
            ifname,
            "-path",
            cni_path,
            "-cache",
            str(cache),
            "-args",
            args,
        ]
        if runs_in is not None:
            argv = ["ip", "netns", "exec", runs_in, *argv]
        return _outcome(subprocess.run(argv, capture_output=True, timeout=120))

    return drive

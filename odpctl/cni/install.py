"""``odpctl-cni install [DIR]``: the plugin's lean launcher, where runtimes look.

A runtime starts the plugin afresh for every container.  pip's console
script starts the interpreter with ``site``, which in an editable install
runs a path hook importing pathlib, re and urllib.parse before the
plugin's first line (``python -c pass`` 32-37 ms against 16 ms with
``-S``; the plugin needs some of those itself, so the launcher's start-up
saves 4 ms of 40), on a budget of twice a 12 ms reference plugin.
The launcher runs the same interpreter isolated and without ``site``
(``-IS``: no environment, no user or site directories) and puts odpctl's
own directory on ``sys.path`` itself; ADD needs nothing but the standard
library and odpctl.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

DEFAULT_DIR = "/opt/cni/bin"
NAME = "odpctl-cni"
USAGE = f"usage: {NAME} install [DIR]  (DIR: a runtime's CNI_PATH, {DEFAULT_DIR} if not given)"

_LAUNCHER = """#!{python} -IS
# {name}: the CNI plugin, as `{name} install` wrote it.  Isolated and without
# site (its start-up is most of a container's ADD): odpctl from {root}.
import sys

sys.path.insert(0, {root!r})
from odpctl.cni.main import main

main()
"""


def package_root() -> str:
    """The directory holding the ``odpctl`` package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def launcher(python: str, root: str) -> str:
    """The launcher's text: ``python`` run isolated, odpctl imported from ``root``."""
    if any(c.isspace() for c in python) or len(python) > 200:
        # The kernel splits a #! line at no space and cuts it at 255 bytes.
        raise ValueError(f"{python} cannot start a #! line (spaces, or too long)")
    return _LAUNCHER.format(python=python, name=NAME, root=root)


def write_launcher(directory: str) -> str:
    """Write the launcher as ``directory/odpctl-cni`` (replacing what is there, at
    once: a runtime may be running it); its path."""
    text = launcher(sys.executable, package_root())
    path = os.path.join(directory, NAME)
    partial = os.path.join(directory, f".{NAME}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
    return path


def command(args: list[str], stdout: IO[str], stderr: IO[str]) -> int:
    """``odpctl-cni ARGS``: a runtime gives none, so any are a person's command."""
    if args[0] != "install" or len(args) > 2:
        stderr.write(USAGE + "\n")
        return 2
    directory = args[1] if len(args) == 2 else DEFAULT_DIR
    try:
        path = write_launcher(directory)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        stderr.write(f"{NAME}: cannot install into {directory}: {reason}\n")
        return 1
    stdout.write(f"{path}\n")
    return 0

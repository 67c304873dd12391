"""``odpctl-cni``: the executable a CNI runtime runs (a console script, or
the launcher ``odpctl-cni install`` writes: see `odpctl.cni.install`).

Whatever happens, the runtime reads either the result or the spec's error
JSON on stdout, with a non-zero exit for an error; a person running it by
hand also gets one line on stderr.  Never a traceback.

A runtime starts it for every container: what ADD, DEL and CHECK import is
kept to json, os and socket of the standard library, typing only for the
type checker.
"""

from __future__ import annotations

import json
import os
import sys

from .plugin import execute
from .request import command_of, parse
from .spec import INTERNAL, SUPPORTED_VERSIONS, CniError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO


def run(env: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    version = "1.0.0"
    try:
        command_of(env)  # before reading stdin: run by hand, it would wait on the terminal
        data = stdin.read()
        inv = parse(env, data)
        if inv.version in SUPPORTED_VERSIONS:
            version = inv.version
        result = execute(inv, env)
    except CniError as exc:
        return _fail(exc, version, stdout, stderr)
    except Exception as exc:  # a bug: still the spec's error, not a traceback
        return _fail(CniError(INTERNAL, f"internal error: {exc!r}"), version, stdout, stderr)
    if result is not None:
        stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _fail(exc: CniError, version: str, stdout: IO[str], stderr: IO[str]) -> int:
    stdout.write(json.dumps(exc.result(version), indent=2) + "\n")
    details = f" ({exc.details})" if exc.details else ""
    stderr.write(f"odpctl-cni: {exc.message}{details}\n")
    return 1


def main() -> None:
    if len(sys.argv) > 1:
        from .install import command

        sys.exit(command(sys.argv[1:], sys.stdout, sys.stderr))
    code = run(os.environ, sys.stdin.buffer, sys.stdout, sys.stderr)
    # The runtime waits for the exit, and the interpreter's teardown (freeing
    # every module) is a tenth of the plugin's start-up: the output is all
    # there is to finish.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the runtime stopped reading: nothing more to tell it
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()

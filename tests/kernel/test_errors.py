"""Failures against the real kernel come out as typed errors that say what to do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

PROBE = """
import sys
from odpctl.errors import OdpError
from odpctl.odp.dpif import Dpif
try:
    with Dpif.open("kernel") as dpif:
        dpif.create_datapath("nopriv")
except OdpError as exc:
    print(type(exc).__name__, exc.errno, exc, sep="|")
    sys.exit(exc.exit_code)
"""


def test_not_root_is_a_permission_error(netns: Callable[[], str]) -> None:
    # setpriv drops to nobody with no capabilities; the module is there, the
    # right to change it is not.
    ns = netns()
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            PROBE,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    kind, err, message = proc.stdout.strip().split("|")
    assert kind == "PermissionDeniedError"
    assert err == "1"  # EPERM
    assert "run as root" in message
    assert proc.returncode == 4

"""The router as the driver sees it: control requests, failures as `DriverError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odpctl.control.client import ControlClient
from odpctl.errors import OdpError


class DriverError(OdpError):
    """A request the driver refuses or cannot complete; Docker reads it as {"Err": ...}."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


class Router:
    # Attaching creates links and may wait for IPAM to reach its cluster.
    TIMEOUT = 30.0

    def __init__(self, control: Path) -> None:
        self.client = ControlClient(control, timeout=self.TIMEOUT)

    def request(self, cmd: str, **args: Any) -> Any:
        try:
            return self.client.request(cmd, **args)
        except OdpError as exc:
            raise DriverError(f"router: {exc}") from None

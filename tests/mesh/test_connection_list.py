"""The connection list's rows for connections not established yet."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from odpctl.mesh.status import connection_list

FAILED = "password mismatch: the peers' passwords differ"


def _dialling(address: str, outbound: bool = True) -> Any:
    # What the list reads of a connection in its handshake: no remote peer known yet.
    return SimpleNamespace(
        address=address, remote=None, outbound=outbound, encrypted=True, created=time.monotonic()
    )


def _target(address: str, last_error: str | None) -> dict[str, Any]:
    return {"address": address, "peer": None, "state": "failed", "last_error": last_error}


def _rows(handshaking: list[Any], targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return connection_list([], handshaking, targets, topology=None, refusals=[])  # type: ignore[arg-type]


def test_a_retry_in_its_handshake_shows_why_the_attempt_before_failed() -> None:
    rows = _rows([_dialling("10.0.0.2:6783")], [_target("10.0.0.2:6783", FAILED)])
    assert [(r["state"], r["reason"]) for r in rows] == [("handshake", f"last attempt: {FAILED}")]


def test_a_first_attempt_or_an_inbound_handshake_has_no_reason() -> None:
    rows = _rows(
        [_dialling("10.0.0.2:6783"), _dialling("10.0.0.3:40000", outbound=False)],
        [_target("10.0.0.2:6783", None), _target("10.0.0.3:40000", FAILED)],
    )
    assert [(r["address"], r["reason"]) for r in rows] == [
        ("10.0.0.2:6783", None),
        ("10.0.0.3:40000", None),
    ]

"""The ODP library: the Open vSwitch datapath from Python.

    from odpctl.odp import Dpif, Flow, Vport, parse_key, parse_actions, format_actions

The names below are the public API; the submodules hold the rest (the
uAPI's numbers in `odpctl.odp.uapi`, every key attribute's type in
`odpctl.odp.keys`, every action in `odpctl.odp.actions`).  They load when
first used: importing ``odpctl.odp.keys`` alone (as every command does)
must not pay for the text syntax or the `Dpif`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odpctl.errors import (
        AlreadyExistsError,
        DatapathUnavailableError,
        DecodeError,
        KernelRefusedError,
        NotFoundError,
        OdpError,
        ParseError,
        PermissionDeniedError,
        UsageError,
    )
    from odpctl.odp.actions import Action, decode_actions, encode_actions
    from odpctl.odp.datapath import Datapath
    from odpctl.odp.dpif import Dpif, DpRef
    from odpctl.odp.endpoint import Endpoint, resolve_endpoint
    from odpctl.odp.flow import Flow
    from odpctl.odp.keys import FlowKey, decode_key, encode_key
    from odpctl.odp.packet import Execute, Upcall
    from odpctl.odp.text.actionparse import parse_actions
    from odpctl.odp.text.actions import format_actions
    from odpctl.odp.text.keys import format_key, parse_key
    from odpctl.odp.uapi import KeyAttr, VportType
    from odpctl.odp.upcalls import UpcallChannel, VportEvent, VportEvents
    from odpctl.odp.vport import Vport, VportStats

# public name -> the module that defines it
_WHERE = {
    **dict.fromkeys(
        [
            "AlreadyExistsError",
            "DatapathUnavailableError",
            "DecodeError",
            "KernelRefusedError",
            "NotFoundError",
            "OdpError",
            "ParseError",
            "PermissionDeniedError",
            "UsageError",
        ],
        "odpctl.errors",
    ),
    **dict.fromkeys(["Action", "decode_actions", "encode_actions"], "odpctl.odp.actions"),
    "Datapath": "odpctl.odp.datapath",
    **dict.fromkeys(["Dpif", "DpRef"], "odpctl.odp.dpif"),
    **dict.fromkeys(["Endpoint", "resolve_endpoint"], "odpctl.odp.endpoint"),
    "Flow": "odpctl.odp.flow",
    **dict.fromkeys(["FlowKey", "decode_key", "encode_key"], "odpctl.odp.keys"),
    **dict.fromkeys(["Execute", "Upcall"], "odpctl.odp.packet"),
    "format_actions": "odpctl.odp.text.actions",
    "parse_actions": "odpctl.odp.text.actionparse",
    **dict.fromkeys(["format_key", "parse_key"], "odpctl.odp.text.keys"),
    **dict.fromkeys(["KeyAttr", "VportType"], "odpctl.odp.uapi"),
    **dict.fromkeys(["UpcallChannel", "VportEvent", "VportEvents"], "odpctl.odp.upcalls"),
    **dict.fromkeys(["Vport", "VportStats"], "odpctl.odp.vport"),
}

__all__ = [
    "Action",
    "AlreadyExistsError",
    "Datapath",
    "DatapathUnavailableError",
    "DecodeError",
    "DpRef",
    "Dpif",
    "Endpoint",
    "Execute",
    "Flow",
    "FlowKey",
    "KernelRefusedError",
    "KeyAttr",
    "NotFoundError",
    "OdpError",
    "ParseError",
    "PermissionDeniedError",
    "Upcall",
    "UpcallChannel",
    "UsageError",
    "Vport",
    "VportEvent",
    "VportEvents",
    "VportStats",
    "VportType",
    "decode_actions",
    "decode_key",
    "encode_actions",
    "encode_key",
    "format_actions",
    "format_key",
    "parse_actions",
    "parse_key",
    "resolve_endpoint",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

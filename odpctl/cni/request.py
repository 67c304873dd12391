"""One invocation of the plugin: the CNI_* environment and the JSON config on stdin."""

from __future__ import annotations

import json

from .spec import (
    DECODE_FAILURE,
    INVALID_CONFIG,
    INVALID_ENVIRONMENT,
    CniError,
    check_version,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
# The variables each command cannot do without (DEL copes without a namespace).
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "VERSION": (),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
}
_IFNAME_MAX = 15  # IFNAMSIZ - 1


class Invocation:
    # A plain class: a dataclass loads inspect and ast, and the first NamedTuple a
    # process makes costs a millisecond and a half; every container start pays.
    __slots__ = ("args", "command", "config", "container_id", "ifname", "netns", "path", "stdin")

    def __init__(
        self,
        command: str,
        config: dict[str, Any],
        stdin: bytes,  # as received: a delegated IPAM plugin is given the same bytes
        *,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: Mapping[str, str] | None = None,
        path: tuple[str, ...] = (),
    ) -> None:
        self.command = command
        self.config = config
        self.stdin = stdin
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args: Mapping[str, str] = args or {}
        self.path = path

    @property
    def version(self) -> str:
        return str(self.config.get("cniVersion") or "1.0.0")

    @property
    def attachment_id(self) -> str:
        """The router's key of this attachment."""
        return attachment_id(str(self.config.get("name")), self.container_id, self.ifname)


def attachment_id(network: str, container_id: str, ifname: str) -> str:
    """The router's key of an attachment: the network, the container and the interface
    (a container may have several on one network); GC knows ours by the prefix."""
    return f"{gc_prefix(network)}{container_id}:{ifname}"


def gc_prefix(network: str) -> str:
    return f"cni:{network}:"


def command_of(env: Mapping[str, str]) -> str:
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        shown = repr(command) if command else "not set"
        raise CniError(
            INVALID_ENVIRONMENT, f"CNI_COMMAND is {shown}", f"one of {', '.join(COMMANDS)}"
        )
    return command


def parse(env: Mapping[str, str], stdin: bytes) -> Invocation:
    """The invocation, or the spec's error for what is missing or malformed."""
    command = command_of(env)
    for name in _REQUIRED[command]:
        if not env.get(name):
            raise CniError(INVALID_ENVIRONMENT, f"{name} is not set (required by {command})")
    config = _decode(stdin)
    if command == "VERSION":
        return Invocation(command, config, stdin)
    _validate(config)
    container_id = env.get("CNI_CONTAINERID", "")
    if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in container_id):
        raise CniError(
            INVALID_ENVIRONMENT,
            f"CNI_CONTAINERID {container_id!r}: letters, digits, '-', '_' and '.' only",
        )
    ifname = env.get("CNI_IFNAME", "")
    if (
        len(ifname) > _IFNAME_MAX
        or "/" in ifname
        or ifname in (".", "..")
        or any(c.isspace() for c in ifname)
    ):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_IFNAME {ifname!r} is not an interface name")
    return Invocation(
        command,
        config,
        stdin,
        container_id=container_id,
        netns=env.get("CNI_NETNS", ""),
        ifname=ifname,
        args=_cni_args(env.get("CNI_ARGS", "")),
        path=tuple(p for p in env.get("CNI_PATH", "").split(":") if p),
    )


def _decode(stdin: bytes) -> dict[str, Any]:
    try:
        config = json.loads(stdin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(
            DECODE_FAILURE, "the network configuration on stdin is not JSON", str(exc)
        ) from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not an object")
    if "cniVersion" in config and not isinstance(config["cniVersion"], str):
        raise CniError(INVALID_CONFIG, "cniVersion must be a string")
    return config


_TYPES: dict[str, type] = {
    "name": str,
    "type": str,
    "ipam": dict,
    "dns": dict,
    "prevResult": dict,
    "runtimeConfig": dict,
    "args": dict,
    "control": str,
    "mtu": int,
}


def _validate(config: dict[str, Any]) -> None:
    check_version(str(config.get("cniVersion") or ""))
    for key in ("name", "type"):
        if not config.get(key):
            raise CniError(INVALID_CONFIG, f"the network configuration has no {key!r}")
    for key, kind in _TYPES.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise CniError(
                INVALID_CONFIG,
                f"{key!r} in the network configuration must be "
                f"{'an object' if kind is dict else 'a ' + kind.__name__}",
            )
    mtu = config.get("mtu")
    if mtu is not None and not 68 <= mtu <= 65535:
        raise CniError(INVALID_CONFIG, f"mtu {mtu} is out of range (68-65535)")
    ipam = config.get("ipam")
    if ipam is not None and ipam and not isinstance(ipam.get("type"), str):
        raise CniError(INVALID_CONFIG, 'the "ipam" section needs a "type" (an IPAM plugin)')


def _cni_args(text: str) -> dict[str, str]:
    args: dict[str, str] = {}
    for pair in filter(None, text.split(";")):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS: {pair!r} is not KEY=VALUE")
        args[key] = value
    return args

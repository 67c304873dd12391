"""What the CNI spec fixes: versions, error codes, and the error every failure becomes."""

from __future__ import annotations

from odpctl.errors import OdpError

# The versions whose results this plugin writes; the newest first.
SUPPORTED_VERSIONS = ("1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.3.0")
# CHECK arrived with 0.4.0; STATUS and GC with 1.1.0.
CHECK_SINCE = (0, 4, 0)
STATUS_SINCE = GC_SINCE = (1, 1, 0)

# The spec's well-known error codes.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
CONTAINER_UNKNOWN = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
PLUGIN_NOT_AVAILABLE = 50
# This plugin's own codes (the spec leaves 100 and up to plugins).
ROUTER_REFUSED = 100
INTERFACE_EXISTS = 101
CHECK_FAILED = 102
INTERNAL = 999


class CniError(OdpError):
    """A failure as the runtime sees it: a spec error code, a message, details."""

    def __init__(self, code: int, message: str, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details

    def result(self, cni_version: str) -> dict[str, object]:
        """The error as the JSON object the spec prints on stdout."""
        error: dict[str, object] = {
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.message,
        }
        if self.details:
            error["details"] = self.details
        return error


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.4.0"`` -> ``(0, 4, 0)``; a version that is not three numbers is refused."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CniError(INCOMPATIBLE_VERSION, f"malformed cniVersion {version!r}")
    return tuple(int(p) for p in parts)


def check_version(version: str) -> str:
    """``version`` if this plugin speaks it, else the spec's incompatible-version error."""
    if version not in SUPPORTED_VERSIONS:
        version_tuple(version)
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {version} is not supported",
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version

"""Per-direction keys derived from a connection's session key (HKDF-SHA256).

Both ends hold the same session key; each direction of the connection needs its
own key so that a datagram can never be reflected back to its sender as valid.
The direction is named by who dialled the connection, which both ends know
(`OverlayConnectionParams.outbound`), so the two ends derive the same pair in
opposite roles.  A purpose label separates keys for different uses (ESP, sealing)
so that one can never be taken for the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_DIALLER_TO_LISTENER = b"dialler->listener"
_LISTENER_TO_DIALLER = b"listener->dialler"


@dataclass(frozen=True, slots=True)
class DirectionKeys:
    send: bytes  # what this end seals (or encrypts) with
    receive: bytes  # what this end opens with


def _derive(session_key: bytes, purpose: bytes, direction: bytes, length: int) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,
        info=b"odpctl " + purpose + b" " + direction,
    )
    return hkdf.derive(session_key)


def direction_keys(
    session_key: bytes, purpose: bytes, *, outbound: bool, length: int = 32
) -> DirectionKeys:
    """This end's send and receive keys for `purpose`, `length` bytes each."""
    if not session_key:
        raise ValueError("an empty session key")
    to_listener = _derive(session_key, purpose, _DIALLER_TO_LISTENER, length)
    to_dialler = _derive(session_key, purpose, _LISTENER_TO_DIALLER, length)
    if outbound:
        return DirectionKeys(send=to_listener, receive=to_dialler)
    return DirectionKeys(send=to_dialler, receive=to_listener)

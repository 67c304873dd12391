"""Password-bound session keys and sealed messages (PyNaCl).

Each connection makes a fresh X25519 key pair (forward secrecy: a password
that leaks later does not open recorded traffic).  The two ends turn the
Diffie-Hellman secret into two session keys, one per direction, bound to:

- the shared password, stretched once per process with Argon2id, so that an
  active man in the middle who records a handshake must pay Argon2 for
  every password guess it tries offline;
- the handshake transcript (both greetings and HELLOs), so that nobody can
  alter the negotiated versions or features in transit.

Every control message is then sealed with XSalsa20-Poly1305 (NaCl's
secretbox); the nonce is the message's sequence number on that direction,
which both ends count, so it is never sent, never repeats under one key, and
a replayed, dropped or reordered message fails to open.  Separate keys per
direction make reflecting a peer's own messages back at it fail as well.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
from nacl.public import PrivateKey

from .errors import AuthenticationFailed, HandshakeRefused

KEY_BYTES = 32
MAC_BYTES = nacl.secret.SecretBox.MACBYTES
# The password stretch is keyed to this protocol: the same password used by
# another program yields unrelated keys.  Argon2 wants exactly 16 bytes of salt.
_PASSWORD_SALT = b"odpctl-mesh-pw-1"
_MAX_SEQUENCE = (1 << 64) - 1


@functools.lru_cache(maxsize=8)
def password_key(password: bytes) -> bytes:
    """The password stretched to a key (Argon2id; ~0.2 s, once per process)."""
    key: bytes = nacl.pwhash.argon2id.kdf(
        KEY_BYTES,
        password,
        _PASSWORD_SALT,
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
    return key


class EphemeralKey:
    """One connection's X25519 key pair."""

    __slots__ = ("_private",)

    def __init__(self) -> None:
        self._private = PrivateKey.generate()

    @property
    def public(self) -> bytes:
        return bytes(self._private.public_key)

    def shared_secret(self, peer_public: bytes) -> bytes:
        try:
            secret: bytes = nacl.bindings.crypto_box_beforenm(peer_public, bytes(self._private))
        except (nacl.exceptions.CryptoError, RuntimeError, ValueError, TypeError):
            # libsodium rejects low-order points (an all-zero shared secret).
            raise HandshakeRefused("invalid public key in the peer's HELLO") from None
        return secret


@dataclass(frozen=True, slots=True)
class SessionKeys:
    send: bytes
    receive: bytes
    # For the overlay (a per-connection key it may use for its own traffic).
    overlay: bytes


def session_keys(
    ours: EphemeralKey,
    peer_public: bytes,
    password_key: bytes,
    transcript: bytes,
    *,
    initiator: bool,
) -> SessionKeys:
    """Both ends' keys; the initiator's ``send`` is the responder's ``receive``."""
    shared = ours.shared_secret(peer_public)
    transcript_hash = hashlib.blake2b(transcript, digest_size=32).digest()
    material = hashlib.blake2b(
        shared + transcript_hash, key=password_key, digest_size=32, person=b"odpm-session"
    ).digest()

    def derive(label: bytes) -> bytes:
        return hashlib.blake2b(material, digest_size=KEY_BYTES, person=label).digest()

    i2r, r2i = derive(b"odpm-i2r"), derive(b"odpm-r2i")
    return SessionKeys(
        send=i2r if initiator else r2i,
        receive=r2i if initiator else i2r,
        overlay=derive(b"odpm-overlay"),
    )


def _nonce(sequence: int) -> bytes:
    return sequence.to_bytes(8, "big") + bytes(16)


class Sealer:
    """Seals one direction's messages, numbering them from 0."""

    __slots__ = ("_box", "sequence")

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)
        self.sequence = 0

    def seal(self, plaintext: bytes) -> bytes:
        if self.sequence >= _MAX_SEQUENCE:
            # 2^64 messages: never in practice, but a nonce must not repeat.
            raise AuthenticationFailed("sequence numbers exhausted; reconnect")
        sealed = self._box.encrypt(plaintext, _nonce(self.sequence))
        self.sequence += 1
        return bytes(sealed.ciphertext)


class Opener:
    """Opens the other direction's messages, expecting them in order."""

    __slots__ = ("_box", "sequence")

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)
        self.sequence = 0

    def open(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) < MAC_BYTES:
            raise AuthenticationFailed("sealed message too short")
        try:
            plaintext: bytes = self._box.decrypt(ciphertext, _nonce(self.sequence))
        except nacl.exceptions.CryptoError:
            raise AuthenticationFailed(
                f"message {self.sequence} failed authentication (tampered, replayed or "
                "sealed with another key)"
            ) from None
        self.sequence += 1
        return plaintext

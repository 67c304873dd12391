#!/usr/bin/env python3
"""Which AEAD seals the fallback's datagrams fastest here: AES-GCM, ChaCha20-Poly1305
(both from `cryptography`) and PyNaCl's secretbox (XSalsa20-Poly1305), side by side.

    .venv/bin/python bench/seal_aead.py

Seals per second of 64- and 1400-byte frames (the best of ``--rounds``, interleaved), and
each one's ratio to AES-GCM, which `odpctl.crypto.seal` uses.  Secretbox has no
associated data: the header is sealed with the frame instead, as it would be.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import nacl.secret
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HEADER = b"OE\0\1\0\2" + bytes(8)


def sealers(key: bytes, frame: bytes) -> dict[str, Callable[[], object]]:
    aes, chacha, box = AESGCM(key), ChaCha20Poly1305(key), nacl.secret.SecretBox(key)
    nonce12, nonce24 = bytes(12), bytes(24)
    return {
        "aes-gcm": lambda: aes.encrypt(nonce12, frame, HEADER),
        "chacha20-poly1305": lambda: chacha.encrypt(nonce12, frame, HEADER),
        "secretbox": lambda: box.encrypt(HEADER + frame, nonce24),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = os.urandom(32)
    for size in (64, 1400):
        seals = sealers(key, os.urandom(size))
        rates = dict.fromkeys(seals, 0.0)
        for _ in range(args.rounds):  # interleaved: the machine's load hits all alike
            for name, seal in seals.items():
                start = time.perf_counter()
                for _ in range(args.count):
                    seal()
                rates[name] = max(rates[name], args.count / (time.perf_counter() - start))
        for name, value in rates.items():
            print(
                f"{size:>5} B {name:>18}: {value / 1000:8.0f}k seals/s  "
                f"{value / rates['aes-gcm']:.2f} x aes-gcm"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

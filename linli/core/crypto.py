"""Personal data at rest: encrypted (AES-GCM) with a keyed hash for exact lookup.

The blind index lets us find "the resident with phone X" without storing or
logging X; the data key comes from settings and never from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linli.config import get_settings

_NONCE = 12
_VERSION = b"\x01"


@lru_cache
def _keys(material: str) -> tuple[bytes, bytes]:
    raw = base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
    if len(raw) < 32:
        raw = hashlib.sha256(raw).digest()
    encryption = hmac.new(raw, b"linli-encrypt", hashlib.sha256).digest()
    index = hmac.new(raw, b"linli-blind-index", hashlib.sha256).digest()
    return encryption, index


def _current() -> tuple[bytes, bytes]:
    return _keys(get_settings().encryption_key())


def encrypt(value: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(_current()[0]).encrypt(nonce, value.encode(), None)


def decrypt(blob: bytes) -> str:
    if not blob or blob[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    return AESGCM(_current()[0]).decrypt(nonce, body, None).decode()


def blind_index(value: str, *, purpose: str = "phone") -> bytes:
    return hmac.new(_current()[1], f"{purpose}:{value}".encode(), hashlib.sha256).digest()


def normalize_phone(raw: str) -> str | None:
    """Mainland mobile number as 11 digits, or None. Accepts +86, spaces, dashes, full-width."""
    import unicodedata

    digits = "".join(ch for ch in unicodedata.normalize("NFKC", raw) if ch.isdigit() or ch == "+")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return digits
    return None


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "***"

"""Personal data at rest: encrypted (AES-GCM) with a keyed hash for exact lookup.

The blind index lets us find "the resident with phone X" without storing or
logging X; the data key comes from settings and never from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linli.config import Settings, get_settings

_NONCE = 12
_VERSION = b"\x01"


@dataclass(frozen=True)
class _DataKeys:
    aead: AESGCM
    index: bytes


@lru_cache(maxsize=8)
def _derive(material: str) -> _DataKeys:
    """Keys derived from the key material; cached by material, so a new key means new keys."""
    raw = base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
    if len(raw) < 32:
        raw = hashlib.sha256(raw).digest()
    encryption = hmac.new(raw, b"linli-encrypt", hashlib.sha256).digest()
    index = hmac.new(raw, b"linli-blind-index", hashlib.sha256).digest()
    return _DataKeys(AESGCM(encryption), index)


# The key material of the Settings object last seen. In development the material lives in a
# file, and reading it on every encrypt was most of the cost of a 100,000-row import; keying
# the memo on the Settings object keeps following a settings change (tests clear
# get_settings' cache and get a new object).
_material_of: tuple[Settings, str] | None = None


def _current() -> _DataKeys:
    global _material_of
    settings = get_settings()
    memo = _material_of
    if memo is None or memo[0] is not settings:
        memo = (settings, settings.encryption_key())
        _material_of = memo
    return _derive(memo[1])


def encrypt(value: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + _current().aead.encrypt(nonce, value.encode(), None)


def encrypt_many(values: Iterable[str | None]) -> list[bytes | None]:
    """``encrypt`` for each value (None stays None), resolving the key once."""
    aead = _current().aead
    out: list[bytes | None] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        nonce = os.urandom(_NONCE)
        out.append(_VERSION + nonce + aead.encrypt(nonce, value.encode(), None))
    return out


def decrypt(blob: bytes) -> str:
    if not blob or blob[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    return _current().aead.decrypt(nonce, body, None).decode()


def blind_index(value: str, *, purpose: str = "phone") -> bytes:
    return hmac.new(_current().index, f"{purpose}:{value}".encode(), hashlib.sha256).digest()


def blind_index_many(values: Iterable[str | None], *, purpose: str = "phone") -> list[bytes | None]:
    """``blind_index`` for each value (None stays None), resolving the key once."""
    keyed = hmac.new(_current().index, digestmod=hashlib.sha256)  # copied: the key is set once
    out: list[bytes | None] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        mac = keyed.copy()
        mac.update(f"{purpose}:{value}".encode())
        out.append(mac.digest())
    return out


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

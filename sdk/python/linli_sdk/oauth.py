"""Resident sign-in (OAuth 2 authorization code + PKCE, OpenID Connect) for partner H5 pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return Pkce(verifier, challenge)


def authorize_params(
    *,
    client_id: str,
    tenant_id: str,
    redirect_uri: str,
    pkce: Pkce,
    scope: str = "openid profile houses",
    state: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Query parameters of the consent request a resident's browser is sent to."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "tenant_id": tenant_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state or secrets.token_urlsafe(16),
        "nonce": nonce or secrets.token_urlsafe(16),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }


def authorize_url(base_url: str, **kwargs: Any) -> str:
    return f"{base_url.rstrip('/')}/portal/apps/authorize?{urlencode(authorize_params(**kwargs))}"


def exchange_code(
    base_url: str,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    verifier: str,
) -> dict[str, Any]:
    """Code -> ``access_token`` and ``id_token`` (HS256, key: the app's webhook secret)."""
    response = httpx.post(
        f"{base_url.rstrip('/')}/api/v1/platform/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class InvalidIdToken(Exception):
    """The id_token's signature, audience, expiry or nonce is not right: do not sign in."""


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_id_token(
    id_token: str,
    *,
    secret: str,
    client_id: str,
    nonce: str | None = None,
    leeway: int = 60,
) -> dict[str, Any]:
    """Check an OpenID Connect id_token from linli and return its claims.

    linli signs id_tokens with HS256 and the app's ``whsec_…`` signing secret (the
    one its webhooks are signed with), so the app verifies them without a key fetch.
    Checks the signature, ``aud`` (your client id), ``exp`` and, when given, ``nonce``.
    """
    try:
        header_b64, payload_b64, signature_b64 = id_token.split(".")
        header = json.loads(_b64decode(header_b64))
        claims: dict[str, Any] = json.loads(_b64decode(payload_b64))
        signature = _b64decode(signature_b64)
    except ValueError as exc:
        raise InvalidIdToken("malformed id_token") from exc
    if header.get("alg") != "HS256":
        raise InvalidIdToken("unexpected signing algorithm")
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidIdToken("bad signature")
    audience = claims.get("aud")
    if audience != client_id and not (isinstance(audience, list) and client_id in audience):
        raise InvalidIdToken("issued to another client")
    if not isinstance(claims.get("exp"), int) or claims["exp"] + leeway < time.time():
        raise InvalidIdToken("expired")
    if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise InvalidIdToken("nonce does not match")
    return claims

"""Resident sign-in (OAuth 2 authorization code + PKCE, OpenID Connect) for partner H5 pages."""

from __future__ import annotations

import base64
import hashlib
import secrets
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

"""Short-lived signed access tokens (JWT, HS256) and opaque refresh tokens.

The audience says which kind of principal a token is for, so a resident's token
is refused where a staff token is needed even though both are signed alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from linli.auth.actor import Actor, PrincipalKind
from linli.config import Settings, get_settings
from linli.core.errors import Unauthorized

ISSUER = "linli"
ALGORITHM = "HS256"


def audience(kind: PrincipalKind) -> str:
    return f"linli:{kind.value}"


def issue_access_token(actor: Actor, *, settings: Settings | None = None) -> tuple[str, int]:
    """Return ``(token, expires_in_seconds)`` for ``actor``."""
    settings = settings or get_settings()
    now = dt.datetime.now(dt.UTC)
    lifetime = settings.access_token_minutes * 60
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience(actor.kind),
        "sub": str(actor.id),
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "name": actor.display_name,
    }
    if actor.tenant_id:
        claims["tid"] = str(actor.tenant_id)
    if actor.kind is PrincipalKind.STAFF:
        claims["roles"] = sorted(actor.roles)
        claims["ac"] = actor.all_communities
        claims["cids"] = sorted(str(c) for c in actor.community_ids)
    token = jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM)
    return token, lifetime


def decode_access_token(
    token: str, kinds: tuple[PrincipalKind, ...], *, settings: Settings | None = None
) -> Actor:
    """Verify signature, expiry, issuer and audience; build the Actor the token names."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=[ALGORITHM],
            audience=[audience(k) for k in kinds],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        kind = PrincipalKind(str(claims["aud"]).removeprefix("linli:"))
        subject = uuid.UUID(claims["sub"])
        tenant = uuid.UUID(claims["tid"]) if claims.get("tid") else None
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", code="token_expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthorized("The access token is invalid.", code="token_invalid") from exc
    if kind is PrincipalKind.STAFF:
        if tenant is None:
            raise Unauthorized("The access token is invalid.", code="token_invalid")
        return Actor.staff(
            id=subject,
            tenant_id=tenant,
            roles=frozenset(claims.get("roles", [])),
            all_communities=bool(claims.get("ac")),
            community_ids=frozenset(uuid.UUID(c) for c in claims.get("cids", [])),
            display_name=str(claims.get("name", "")),
        )
    return Actor(kind=kind, id=subject, tenant_id=tenant, display_name=str(claims.get("name", "")))


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """Refresh tokens and codes are stored hashed; a DB leak does not leak sessions."""
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class IssuedTokens:
    """What a successful sign-in or refresh hands back."""

    access_token: str
    expires_in: int
    refresh_token: str
    actor: Actor

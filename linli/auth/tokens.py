"""Short-lived signed access tokens (JWT, HS256) and opaque refresh tokens.

The audience says which kind of principal a token is for, so a resident's token
is refused where a staff token is needed even though both are signed alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from linli.auth.actor import Actor, PrincipalKind
from linli.config import Settings, get_settings
from linli.core.errors import Unauthorized

ISSUER = "linli"
ALGORITHM = "HS256"
APP_TOKEN_SECONDS = 600  # partner app tokens are short-lived (client credentials)


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
    if actor.kind is PrincipalKind.APP:
        lifetime = min(lifetime, APP_TOKEN_SECONDS)
        claims["exp"] = claims["iat"] + lifetime
        claims["scope"] = " ".join(sorted(actor.scopes))
        claims["cids"] = sorted(str(c) for c in actor.community_ids)
        claims["jti"] = str(actor.token_id)
    token = jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM)
    return token, lifetime


class _VerifiedTokens:
    """Tokens whose signature this process has checked, until they expire.

    A console session sends one access token with every request for its whole
    lifetime (minutes); checking the HMAC and rebuilding the Actor each time was
    a tenth of a list request. The key holds the whole token, the accepted kinds
    and the signing key, so a changed key or a different audience never hits;
    expiry is still checked on every use. Bounded: the oldest half is dropped
    when full.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[str, tuple[PrincipalKind, ...], str], tuple[Actor, int]] = {}

    def get(self, key: tuple[str, tuple[PrincipalKind, ...], str]) -> Actor | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        actor, expires_at = entry
        if time.time() >= expires_at:
            del self._entries[key]
            return None  # jwt.decode then raises "expired" with its usual message
        return actor

    def put(
        self, key: tuple[str, tuple[PrincipalKind, ...], str], actor: Actor, expires_at: int
    ) -> None:
        if len(self._entries) >= self.capacity:
            for old in list(self._entries)[: self.capacity // 2]:
                del self._entries[old]
        self._entries[key] = (actor, expires_at)


_verified = _VerifiedTokens()


def decode_access_token(
    token: str, kinds: tuple[PrincipalKind, ...], *, settings: Settings | None = None
) -> Actor:
    """Verify signature, expiry, issuer and audience; build the Actor the token names."""
    settings = settings or get_settings()
    key = (token, kinds, settings.signing_key())
    known = _verified.get(key)
    if known is not None:
        return known
    actor, expires_at = _verify(token, kinds, key[2])
    _verified.put(key, actor, expires_at)
    return actor


def _verify(token: str, kinds: tuple[PrincipalKind, ...], signing_key: str) -> tuple[Actor, int]:
    try:
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=[ALGORITHM],
            audience=[audience(k) for k in kinds],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
        kind = PrincipalKind(str(claims["aud"]).removeprefix("linli:"))
        subject = uuid.UUID(claims["sub"])
        tenant = uuid.UUID(claims["tid"]) if claims.get("tid") else None
        expires_at = int(claims["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", code="token_expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthorized("The access token is invalid.", code="token_invalid") from exc
    if kind is PrincipalKind.STAFF:
        if tenant is None:
            raise Unauthorized("The access token is invalid.", code="token_invalid")
        staff = Actor.staff(
            id=subject,
            tenant_id=tenant,
            roles=frozenset(claims.get("roles", [])),
            all_communities=bool(claims.get("ac")),
            community_ids=frozenset(uuid.UUID(c) for c in claims.get("cids", [])),
            display_name=str(claims.get("name", "")),
        )
        return staff, expires_at
    name = str(claims.get("name", ""))
    if kind is PrincipalKind.APP:
        return _app_actor(claims, subject, tenant, name), expires_at
    return Actor(kind=kind, id=subject, tenant_id=tenant, display_name=name), expires_at


def _app_actor(
    claims: dict[str, Any], installation: uuid.UUID, tenant: uuid.UUID | None, name: str
) -> Actor:
    from linli.platform.scopes import permissions_for  # the one scope -> permission map

    if tenant is None or not claims.get("jti"):
        raise Unauthorized("The access token is invalid.", code="token_invalid")
    try:
        scopes = frozenset(str(claims.get("scope", "")).split())
        communities = frozenset(uuid.UUID(c) for c in claims.get("cids", []))
        token_id = uuid.UUID(str(claims["jti"]))
    except ValueError as exc:
        raise Unauthorized("The access token is invalid.", code="token_invalid") from exc
    return Actor.app(
        installation_id=installation,
        tenant_id=tenant,
        scopes=scopes,
        permissions=permissions_for(scopes),
        community_ids=communities,
        token_id=token_id,
        display_name=name,
    )


def reusable_successor(
    used_at: dt.datetime | None, successor_enc: bytes | None, *, settings: Settings | None = None
) -> str | None:
    """The successor of a just-rotated refresh token, while the reuse interval lasts.

    Two tabs (or a reload during a slow page) often refresh with one token at the
    same moment, on different server processes. Treating the second as theft
    would sign the person out; within ``refresh_reuse_seconds`` it gets the same
    successor instead (the "reuse interval" of common identity providers). Later,
    reuse still revokes the family.
    """
    from linli.core import crypto

    settings = settings or get_settings()
    if used_at is None or successor_enc is None:
        return None
    if dt.datetime.now(dt.UTC) - used_at > dt.timedelta(seconds=settings.refresh_reuse_seconds):
        return None
    return crypto.decrypt(successor_enc)


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

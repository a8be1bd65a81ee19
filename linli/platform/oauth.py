"""OAuth 2 of the open platform: client credentials, code + PKCE with OpenID Connect,
introspection and revocation, and the guard every app token passes on each call.

Authlib supplies the protocol pieces (PKCE S256 challenge, token generation);
tokens are linli's own signed JWTs so an app token is checked by the same fast
path as a staff token, then against revocation (one pipelined read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import Request
from sqlalchemy import Uuid, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.tokens import (
    ALGORITHM,
    APP_TOKEN_SECONDS,
    ISSUER,
    hash_secret,
    issue_access_token,
)
from linli.config import get_settings
from linli.core import audit, crypto
from linli.core.errors import BadRequest, NotFound, PermissionDenied, Unauthorized
from linli.core.ids import new_id
from linli.db.engine import unit_of_work
from linli.db.reads import ReadQuery, read_rows
from linli.platform import ratelimit, scopes
from linli.platform import service as platform_service
from linli.platform.models import (
    AppToken,
    AuthorizationCode,
    Installation,
    InstallationCommunity,
    PartnerApp,
    ReviewStatus,
)
from linli.residents import service as residents_service

CODE_SECONDS = 60
USER_AUDIENCE = "linli:app-user"


class OAuthError(BadRequest):
    """An RFC 6749 error; the API answers ``{"error": code, "error_description": ...}``."""

    code = "invalid_request"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _grant_error(message: str, code: str = "invalid_grant") -> OAuthError:
    return OAuthError(message, code=code)


# --- client credentials ---------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedAppToken:
    access_token: str
    expires_in: int
    scope: str
    id_token: str | None = None


async def client_credentials(
    session: AsyncSession,
    *,
    client_id: str,
    client_secret: str,
    tenant_id: uuid.UUID,
    installation_id: uuid.UUID,
    scope: str | None,
) -> IssuedAppToken:
    """A short-lived token for one installation, bound to its tenant, communities and scopes."""
    credential, app = await platform_service.authenticate_client(session, client_id, client_secret)
    from linli.db.engine import set_tenant

    await set_tenant(session, tenant_id)
    # One round trip: the installation, its scopes and its communities.
    found = (
        await session.execute(
            select(
                Installation.id,
                Installation.granted_scopes,
                func.array_agg(InstallationCommunity.community_id),
            )
            .outerjoin(
                InstallationCommunity,
                and_(
                    InstallationCommunity.tenant_id == Installation.tenant_id,
                    InstallationCommunity.installation_id == Installation.id,
                ),
            )
            .where(
                Installation.id == installation_id,
                Installation.app_id == app.id,
                Installation.revoked_at.is_(None),
            )
            .group_by(Installation.tenant_id, Installation.id)
        )
    ).first()
    if found is None:
        raise _grant_error("No active installation of this app there.")
    _, granted_scopes, community_ids = found
    granted = set(granted_scopes)
    asked = set(scope.split()) if scope else granted
    if not asked <= granted:
        raise _grant_error("Scope not granted by the company.", "invalid_scope")
    communities = [c for c in community_ids if c is not None]
    token_id = new_id()
    lifetime = APP_TOKEN_SECONDS
    await session.execute(
        insert(AppToken).values(
            tenant_id=tenant_id,
            id=token_id,
            installation_id=installation_id,
            client_id=credential.client_id,
            scopes=sorted(asked),
            expires_at=_now() + dt.timedelta(seconds=lifetime),
        )
    )
    actor = Actor.app(
        installation_id=installation_id,
        tenant_id=tenant_id,
        scopes=frozenset(asked),
        permissions=scopes.permissions_for(asked),
        community_ids=frozenset(communities),
        token_id=token_id,
        display_name=app.name,
    )
    token, expires_in = issue_access_token(actor)
    return IssuedAppToken(token, expires_in, " ".join(sorted(asked)))


# --- the guard on each app call ---------------------------------------------------------------

_TOKEN_STATE = ReadQuery(
    select(
        Installation.app_id,
        (
            AppToken.revoked_at.is_(None)
            & Installation.revoked_at.is_(None)
            & (PartnerApp.review_status != ReviewStatus.SUSPENDED.value)
        ).label("live"),
    )
    .select_from(AppToken)
    .join(
        Installation,
        and_(
            Installation.tenant_id == AppToken.tenant_id,
            Installation.id == AppToken.installation_id,
        ),
    )
    .join(PartnerApp, PartnerApp.id == Installation.app_id)
    .where(
        AppToken.tenant_id == bindparam("tenant_id", type_=Uuid()),
        AppToken.id == bindparam("token_id", type_=Uuid()),
    )
)


async def guard(actor: Actor, request: Request) -> None:
    """Refuse a revoked token or installation, or a suspended app; count the call against
    the app's limits.

    One pipelined read. The app is noted before any refusal, so refused calls of a
    revoked installation are in the company's access log too.
    """
    rows = await read_rows(
        actor.tenant_id, _TOKEN_STATE, {"tenant_id": actor.tenant_id, "token_id": actor.token_id}
    )
    if not rows:
        raise Unauthorized("The access token has been revoked.", code="token_revoked")
    app_id: uuid.UUID = rows[0]["app_id"]
    request.state.linli_app_id = app_id
    if not rows[0]["live"]:
        raise Unauthorized("The access token has been revoked.", code="token_revoked")
    request.state.linli_ratelimit = ratelimit.hit_app(app_id, actor.id)


# --- introspection and revocation (RFC 7662, RFC 7009) -------------------------------------


def _claims(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            get_settings().signing_key(),
            algorithms=[ALGORITHM],
            audience=["linli:app", USER_AUDIENCE],
            issuer=ISSUER,
        )
    except jwt.InvalidTokenError:
        return None
    return claims


async def _token_row(claims: dict[str, Any]) -> tuple[AppToken, Installation] | None:
    try:
        tenant_id = uuid.UUID(str(claims["tid"]))
        token_id = uuid.UUID(str(claims["jti"]))
    except (KeyError, ValueError):
        return None
    async with unit_of_work(tenant_id) as session:
        row = (
            await session.execute(
                select(AppToken, Installation)
                .join(Installation, Installation.id == AppToken.installation_id)
                .where(AppToken.id == token_id)
            )
        ).first()
        if row is None:
            return None
        session.expunge_all()
        return row[0], row[1]


async def introspect(
    session: AsyncSession, *, client_id: str, client_secret: str, token: str
) -> dict[str, Any]:
    """RFC 7662. A client learns about its own tokens only."""
    _, app = await platform_service.authenticate_client(session, client_id, client_secret)
    claims = _claims(token)
    found = await _token_row(claims) if claims else None
    if claims is None or found is None:
        return {"active": False}
    row, installation = found
    if installation.app_id != app.id:
        return {"active": False}
    active = row.revoked_at is None and installation.revoked_at is None and row.expires_at > _now()
    if not active:
        return {"active": False}
    return {
        "active": True,
        "scope": " ".join(row.scopes),
        "client_id": row.client_id,
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "sub": claims["sub"],
        "aud": claims["aud"],
        "iss": ISSUER,
        "tenant_id": claims["tid"],
        "installation_id": str(installation.id),
        "community_ids": claims.get("cids", []),
    }


async def revoke_token(
    session: AsyncSession, *, client_id: str, client_secret: str, token: str
) -> None:
    """RFC 7009: revoke one of the client's tokens; unknown tokens are not an error."""
    _, app = await platform_service.authenticate_client(session, client_id, client_secret)
    claims = _claims(token)
    found = await _token_row(claims) if claims else None
    if claims is None or found is None or found[1].app_id != app.id:
        return
    async with unit_of_work(found[0].tenant_id) as own:
        await own.execute(
            update(AppToken)
            .where(AppToken.id == found[0].id, AppToken.revoked_at.is_(None))
            .values(revoked_at=_now())
        )


# --- authorization code + PKCE, OpenID Connect (resident single sign-on) ----------------------


def pseudonymous_subject(app_id: uuid.UUID, account_id: uuid.UUID) -> str:
    """A resident's id as one app sees it: stable for that app, useless to correlate across apps."""
    key = get_settings().signing_key().encode()
    digest = hmac.new(key, f"oidc-sub:{app_id}:{account_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ConsentRequest:
    """A checked authorization request: what the resident is asked to share, with whom."""

    app: PartnerApp
    installation: Installation
    tenant_id: uuid.UUID
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    code_challenge: str
    nonce: str


async def check_authorization_request(
    session: AsyncSession,
    actor: Actor,
    *,
    tenant_id: uuid.UUID,
    client_id: str,
    redirect_uri: str,
    response_type: str,
    scope: str,
    state: str,
    code_challenge: str,
    code_challenge_method: str,
    nonce: str = "",
) -> ConsentRequest:
    """Validate before showing consent. A bad client or redirect URI is never redirected to."""
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    from linli.platform.models import AppCredential

    row = (
        await session.execute(
            select(AppCredential, PartnerApp)
            .join(PartnerApp, PartnerApp.id == AppCredential.app_id)
            .where(AppCredential.client_id == client_id, AppCredential.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        raise _grant_error("Unknown client.", "invalid_client")
    credential, app = row
    if app.review_status == ReviewStatus.SUSPENDED.value:
        raise PermissionDenied("The platform has suspended this app.", code="app_suspended")
    if redirect_uri not in app.redirect_uris:
        raise _grant_error("The redirect URI is not registered.", "invalid_redirect_uri")
    if response_type != "code":
        raise _grant_error("Only the code flow is supported.", "unsupported_response_type")
    if code_challenge_method != "S256" or not (43 <= len(code_challenge) <= 128):
        raise _grant_error("PKCE with S256 is required.", "invalid_request")
    asked = sorted(set(scope.split()))
    if "openid" not in asked or not set(asked) <= scopes.RESIDENT_SCOPES:
        raise _grant_error("Scope must include openid and only resident scopes.", "invalid_scope")
    from linli.db.engine import set_tenant

    await set_tenant(session, tenant_id)
    installation = await session.scalar(
        select(Installation).where(Installation.app_id == app.id, Installation.revoked_at.is_(None))
    )
    await set_tenant(session, None)
    if installation is None:
        raise NotFound("The app is not installed by this company.", code="app_not_installed")
    return ConsentRequest(
        app=app,
        installation=installation,
        tenant_id=tenant_id,
        client_id=credential.client_id,
        redirect_uri=redirect_uri,
        scopes=asked,
        state=state,
        code_challenge=code_challenge,
        nonce=nonce,
    )


async def approve(session: AsyncSession, actor: Actor, request: ConsentRequest) -> str:
    """The resident consented: a one-time code, and the URL to send the browser back to."""
    homes = await _homes_there(session, actor, request)
    if not homes:
        raise PermissionDenied("You have no home where this app is installed.", code="no_home")
    secret = generate_token(40)
    code = f"{request.tenant_id.hex}.{secret}"
    from linli.db.engine import set_tenant

    await set_tenant(session, request.tenant_id)
    await session.execute(
        insert(AuthorizationCode).values(
            tenant_id=request.tenant_id,
            id=new_id(),
            installation_id=request.installation.id,
            client_id=request.client_id,
            account_id=actor.id,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            code_hash=hash_secret(code),
            expires_at=_now() + dt.timedelta(seconds=CODE_SECONDS),
        )
    )
    await audit.record(
        session,
        Actor(kind=PrincipalKind.RESIDENT, id=actor.id, tenant_id=request.tenant_id, ip=actor.ip),
        "platform.resident.consented",
        target_type="installation",
        target_id=request.installation.id,
        detail={"scopes": request.scopes},
    )
    query = urlencode({"code": code, "state": request.state})
    return f"{request.redirect_uri}{'&' if '?' in request.redirect_uri else '?'}{query}"


def denied_redirect(request: ConsentRequest) -> str:
    query = urlencode({"error": "access_denied", "state": request.state})
    return f"{request.redirect_uri}{'&' if '?' in request.redirect_uri else '?'}{query}"


async def _homes_there(
    session: AsyncSession, actor: Actor, request: ConsentRequest
) -> list[dict[str, str]]:
    homes, _ = await residents_service.my_homes(session, actor)
    from linli.db.engine import set_tenant

    await set_tenant(session, request.tenant_id)
    allowed = set(await platform_service.installation_communities(session, request.installation.id))
    await set_tenant(session, None)
    return [
        {
            "community_id": str(h.community_id),
            "house_id": str(h.house_id),
            "building_no": h.building_no,
            "unit_no": h.unit_no or "",
            "house_no": h.house_no,
        }
        for h in homes
        if h.company_id == request.tenant_id and h.community_id in allowed
    ]


async def exchange_code(
    session: AsyncSession,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> IssuedAppToken:
    """Code -> access token + id_token. A code works once; a replay revokes what it gave."""
    _, app = await platform_service.authenticate_client(session, client_id, client_secret)
    tenant_hex, _, _ = code.partition(".")
    try:
        tenant_id = uuid.UUID(hex=tenant_hex)
    except ValueError as exc:
        raise _grant_error("Unknown code.") from exc
    from linli.db.engine import set_tenant

    await set_tenant(session, tenant_id)
    row = await session.scalar(
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == hash_secret(code))
        .with_for_update()
    )
    if row is None or row.client_id != client_id:
        raise _grant_error("Unknown code.")
    if row.used_at is not None:
        # RFC 6749 §4.1.2: a replayed code revokes the tokens issued from it.
        await session.execute(
            update(AppToken)
            .where(
                AppToken.installation_id == row.installation_id,
                AppToken.account_id == row.account_id,
                AppToken.created_at >= row.created_at,
                AppToken.revoked_at.is_(None),
            )
            .values(revoked_at=_now())
        )
        raise OAuthError("The code was already used.", code="invalid_grant", keep_changes=True)
    if row.expires_at <= _now():
        raise _grant_error("The code has expired.")
    if row.redirect_uri != redirect_uri:
        raise _grant_error("The redirect URI does not match.")
    if not code_verifier or not hmac.compare_digest(
        create_s256_code_challenge(code_verifier), row.code_challenge
    ):
        raise _grant_error("The PKCE code verifier is missing or wrong.")
    row.used_at = _now()
    installation = await session.get(Installation, (tenant_id, row.installation_id))
    if installation is None or installation.revoked_at is not None:
        raise _grant_error("The app has been revoked.")
    token_id = new_id()
    now = _now()
    await session.execute(
        insert(AppToken).values(
            tenant_id=tenant_id,
            id=token_id,
            installation_id=row.installation_id,
            client_id=client_id,
            account_id=row.account_id,
            scopes=row.scopes,
            expires_at=now + dt.timedelta(seconds=APP_TOKEN_SECONDS),
        )
    )
    settings = get_settings()
    subject = pseudonymous_subject(app.id, row.account_id)
    iat = int(now.timestamp())
    access = jwt.encode(
        {
            "iss": ISSUER,
            "aud": USER_AUDIENCE,
            "sub": subject,
            "tid": str(tenant_id),
            "jti": str(token_id),
            "iat": iat,
            "exp": iat + APP_TOKEN_SECONDS,
            "scope": " ".join(row.scopes),
        },
        settings.signing_key(),
        algorithm=ALGORITHM,
    )
    id_claims: dict[str, Any] = {
        "iss": settings.public_url.rstrip("/") or ISSUER,
        "aud": client_id,
        "sub": subject,
        "iat": iat,
        "exp": iat + APP_TOKEN_SECONDS,
        "auth_time": iat,
    }
    if row.nonce:
        id_claims["nonce"] = row.nonce
    id_claims.update(await _shared_claims(session, row, tenant_id))
    id_token = jwt.encode(id_claims, app_id_token_key(app), algorithm="HS256")
    return IssuedAppToken(access, APP_TOKEN_SECONDS, " ".join(row.scopes), id_token)


def app_id_token_key(app: PartnerApp) -> str:
    """id_tokens are signed HS256 with a key the app can verify (its webhook secret).

    OIDC allows HS256 with a secret shared with the client; linli stores client
    secrets hashed, so the app's (encrypted, retrievable) signing secret is used.
    """
    return platform_service.webhook_secret(app)


async def _shared_claims(
    session: AsyncSession, row: AuthorizationCode, tenant_id: uuid.UUID
) -> dict[str, Any]:
    """Only what the resident consented to: name, houses, phone, each behind its scope."""
    from linli.auth.models import ResidentAccount
    from linli.db.engine import set_tenant

    claims: dict[str, Any] = {"tenant_id": str(tenant_id)}
    await set_tenant(session, None)
    account = await session.get(ResidentAccount, row.account_id)
    if account is None:
        return claims
    if "profile" in row.scopes:
        claims["name"] = account.display_name
    if "phone" in row.scopes and account.phone_enc:
        claims["phone_number"] = crypto.decrypt(account.phone_enc)
    if "houses" in row.scopes:
        actor = Actor(kind=PrincipalKind.RESIDENT, id=account.id)
        homes, _ = await residents_service.my_homes(session, actor)
        allowed = set()
        await set_tenant(session, tenant_id)
        allowed = set(await platform_service.installation_communities(session, row.installation_id))
        claims["houses"] = [
            {
                "community_id": str(h.community_id),
                "house_id": str(h.house_id),
                "building_no": h.building_no,
                "unit_no": h.unit_no or "",
                "house_no": h.house_no,
            }
            for h in homes
            if h.company_id == tenant_id and h.community_id in allowed
        ]
    await set_tenant(session, tenant_id)
    return claims


async def userinfo(token: str) -> dict[str, Any]:
    """OIDC userinfo for a resident-flow token: the same consented claims."""
    claims = _claims(token)
    if claims is None or claims.get("aud") != USER_AUDIENCE:
        raise Unauthorized("The access token is invalid.", code="token_invalid")
    found = await _token_row(claims)
    if found is None or found[0].revoked_at is not None or found[1].revoked_at is not None:
        raise Unauthorized("The access token has been revoked.", code="token_revoked")
    row, installation = found
    async with unit_of_work(row.tenant_id) as session:
        app = await session.get(PartnerApp, installation.app_id)
        if app is None or app.review_status == ReviewStatus.SUSPENDED.value:
            raise Unauthorized("The access token has been revoked.", code="token_revoked")
        code = AuthorizationCode(
            installation_id=row.installation_id,
            account_id=row.account_id,
            scopes=row.scopes,
        )
        shared = await _shared_claims(session, code, row.tenant_id)
    return {"sub": claims["sub"], **shared}

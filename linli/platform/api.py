"""Routes of the open platform. Thin: parse, call the service, shape the answer.

Four audiences: partner developers (developer token), the platform operator
(review), the company (app directory, installations, access log) and the apps
themselves (OAuth endpoints; then every existing endpoint their scopes open).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute, app_hooks, client_ip, public
from linli.auth.permissions import Permission
from linli.auth.tokens import ALGORITHM, ISSUER
from linli.config import get_settings
from linli.core.errors import DomainError, Unauthorized
from linli.db.engine import unit_of_work
from linli.platform import access_log, oauth, scopes, webhooks
from linli.platform import service as platform_service
from linli.platform.models import ReviewStatus
from linli.platform.schemas import (
    AccessDay,
    AppCreated,
    AppRead,
    CredentialIssued,
    DeliveryRead,
    DeveloperLogin,
    DeveloperToken,
    InstallationRead,
    InstallRequest,
    Manifest,
    NotificationSend,
    ParcelArrived,
    PartnerRegister,
    ReviewDecision,
    Sent,
    SuspendRequest,
    TokenAnswer,
)
from linli.platform.service import DeveloperPrincipal

# Every app call passes the platform's guard (revocation, rate limits) and is logged.
app_hooks.guard = oauth.guard
app_hooks.observe = access_log.observe

router = APIRouter(prefix="/api/v1/platform", route_class=DeclaredRoute, tags=["platform"])

DEVELOPER_AUDIENCE = "linli:developer"
DEVELOPER_TOKEN_SECONDS = 8 * 3600


def issue_developer_token(developer_id: uuid.UUID, partner_id: uuid.UUID, name: str) -> str:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "iss": ISSUER,
        "aud": DEVELOPER_AUDIENCE,
        "sub": str(developer_id),
        "pid": str(partner_id),
        "name": name,
        "iat": now,
        "exp": now + DEVELOPER_TOKEN_SECONDS,
    }
    return jwt.encode(claims, get_settings().signing_key(), algorithm=ALGORITHM)


def read_developer_token(token: str, ip: str | None = None) -> DeveloperPrincipal:
    try:
        claims = jwt.decode(
            token,
            get_settings().signing_key(),
            algorithms=[ALGORITHM],
            audience=DEVELOPER_AUDIENCE,
            issuer=ISSUER,
        )
        return DeveloperPrincipal(
            uuid.UUID(claims["sub"]), uuid.UUID(claims["pid"]), str(claims.get("name", "")), ip
        )
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise Unauthorized("The developer token is invalid.", code="token_invalid") from exc


class DeveloperAuth:
    """Declares ``platform.developer``: a signed-in partner developer (own token audience)."""

    permission = Permission.PLATFORM_DEVELOPER
    declares_permission = True

    async def __call__(self, request: Request) -> DeveloperPrincipal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        return read_developer_token(token.strip(), client_ip(request))


class OwnBearer:
    """Declares ``public``: the endpoint reads a bearer token that is not a linli principal
    (a resident-flow token of a partner app) itself, so the principal lookup is skipped."""

    permission = Permission.PUBLIC
    declares_permission = True

    async def __call__(self) -> None:
        return None


async def platform_session() -> AsyncIterator[AsyncSession]:
    """A unit of work bound to no company, for developer routes (their token is no principal)."""
    async with unit_of_work() as session:
        yield session


PlatformDb = Annotated[AsyncSession, Depends(platform_session, scope="function")]
Anyone = Annotated[Actor | None, Depends(public)]
Dev = Annotated[DeveloperPrincipal, Depends(DeveloperAuth())]
Operator = Annotated[
    Actor, Depends(Authorizer(Permission.OPERATOR_APPS_REVIEW, kinds=(PrincipalKind.OPERATOR,)))
]
AppsManager = Annotated[Actor, Depends(Authorizer(Permission.PLATFORM_APPS_MANAGE))]
LogReader = Annotated[Actor, Depends(Authorizer(Permission.PLATFORM_ACCESS_LOG_READ))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


# --- partners and developers ------------------------------------------------------------


@router.post("/partners", response_model=DeveloperToken, status_code=201, tags=["developers"])
async def register_partner(_: Anyone, session: DbSession, body: PartnerRegister) -> DeveloperToken:
    developer = await platform_service.register_partner(
        session,
        company_name=body.company_name,
        email=body.email,
        display_name=body.display_name,
        password=body.password,
    )
    token = issue_developer_token(developer.id, developer.partner_id, developer.display_name)
    return DeveloperToken(access_token=token, expires_in=DEVELOPER_TOKEN_SECONDS)


@router.post("/developer/token", response_model=DeveloperToken, tags=["developers"])
async def developer_sign_in(
    _: Anyone, session: DbSession, body: DeveloperLogin, response: Response
) -> DeveloperToken:
    developer = await platform_service.sign_in_developer(
        session, email=body.email, password=body.password
    )
    _no_store(response)
    token = issue_developer_token(developer.id, developer.partner_id, developer.display_name)
    return DeveloperToken(access_token=token, expires_in=DEVELOPER_TOKEN_SECONDS)


@router.get("/apps", response_model=list[AppRead], tags=["developers"])
async def list_my_apps(developer: Dev, session: PlatformDb) -> list[AppRead]:
    return [AppRead.model_validate(a) for a in await platform_service.my_apps(session, developer)]


@router.post("/apps", response_model=AppCreated, status_code=201, tags=["developers"])
async def create_app(developer: Dev, session: PlatformDb, body: Manifest) -> AppCreated:
    app, secret = await platform_service.create_app(session, developer, body)
    return AppCreated(**AppRead.model_validate(app).model_dump(), webhook_secret=secret)


@router.get("/apps/{app_id}", response_model=AppRead, tags=["developers"])
async def get_my_app(developer: Dev, session: PlatformDb, app_id: uuid.UUID) -> AppRead:
    return AppRead.model_validate(await platform_service.my_app(session, developer, app_id))


@router.put("/apps/{app_id}/manifest", response_model=AppRead, tags=["developers"])
async def update_manifest(
    developer: Dev, session: PlatformDb, app_id: uuid.UUID, body: Manifest
) -> AppRead:
    app = await platform_service.update_manifest(session, developer, app_id, body)
    return AppRead.model_validate(app)


@router.post("/apps/{app_id}/submit", response_model=AppRead, tags=["developers"])
async def submit_app(developer: Dev, session: PlatformDb, app_id: uuid.UUID) -> AppRead:
    return AppRead.model_validate(
        await platform_service.submit_for_review(session, developer, app_id)
    )


@router.post(
    "/apps/{app_id}/credentials",
    response_model=CredentialIssued,
    status_code=201,
    tags=["developers"],
    summary="New client id and secret (the previous one of that environment stops working)",
)
async def issue_credentials(
    developer: Dev,
    session: PlatformDb,
    app_id: uuid.UUID,
    response: Response,
    environment: Annotated[str, Query(pattern="^(test|live)$")] = "test",
) -> CredentialIssued:
    credential, secret = await platform_service.issue_credentials(
        session, developer, app_id, environment
    )
    _no_store(response)
    return CredentialIssued(
        client_id=credential.client_id, client_secret=secret, environment=environment
    )


@router.get("/apps/{app_id}/deliveries", response_model=list[DeliveryRead], tags=["developers"])
async def delivery_log(
    developer: Dev, app_id: uuid.UUID, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeliveryRead]:
    rows = await webhooks.delivery_log(developer, app_id, limit=limit)
    return [DeliveryRead.model_validate(r) for r in rows]


@router.post(
    "/apps/{app_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryRead,
    tags=["developers"],
)
async def replay_delivery(
    developer: Dev, app_id: uuid.UUID, delivery_id: uuid.UUID, tenant_id: uuid.UUID
) -> DeliveryRead:
    delivery = await webhooks.replay(
        developer, app_id, tenant_id=tenant_id, delivery_id=delivery_id
    )
    return DeliveryRead.model_validate(delivery)


# --- operator review ----------------------------------------------------------------------


@router.get("/review", response_model=list[AppRead], tags=["operator"])
async def apps_to_review(
    actor: Operator,
    session: DbSession,
    status: Annotated[
        str, Query(pattern="^(pending|approved|rejected|suspended|draft)$")
    ] = "pending",
) -> list[AppRead]:
    """The review queue (``pending``, oldest first), or the apps in another state."""
    apps = await platform_service.apps_with_status(session, actor, ReviewStatus(status))
    return [AppRead.model_validate(a) for a in apps]


@router.post("/review/{app_id}", response_model=AppRead, tags=["operator"])
async def review_app(
    actor: Operator, session: DbSession, app_id: uuid.UUID, body: ReviewDecision
) -> AppRead:
    app = await platform_service.review_app(
        session, actor, app_id, approve=body.approve, note=body.note
    )
    return AppRead.model_validate(app)


@router.post("/review/{app_id}/suspend", response_model=AppRead, tags=["operator"])
async def suspend_app(
    actor: Operator, session: DbSession, app_id: uuid.UUID, body: SuspendRequest
) -> AppRead:
    """Pull a live app at once: its tokens, webhooks, sign-in and portal entries stop."""
    app = await platform_service.suspend_app(session, actor, app_id, reason=body.reason)
    return AppRead.model_validate(app)


@router.post("/review/{app_id}/reinstate", response_model=AppRead, tags=["operator"])
async def reinstate_app(actor: Operator, session: DbSession, app_id: uuid.UUID) -> AppRead:
    return AppRead.model_validate(await platform_service.reinstate_app(session, actor, app_id))


# --- the company's directory, installations and access log --------------------------------


def _installation_read(view: platform_service.InstallationView) -> InstallationRead:
    return InstallationRead(
        id=view.installation.id,
        app_id=view.app.id,
        app_name=view.app.name,
        granted_scopes=view.installation.granted_scopes,
        community_ids=sorted(view.community_ids),
        created_at=view.installation.created_at,
        revoked_at=view.installation.revoked_at,
    )


@router.get("/directory", response_model=list[AppRead], tags=["apps"])
async def app_directory(actor: AppsManager, session: DbSession) -> list[AppRead]:
    return [AppRead.model_validate(a) for a in await platform_service.directory(session)]


@router.get("/installations", response_model=list[InstallationRead], tags=["apps"])
async def list_installations(actor: AppsManager, session: DbSession) -> list[InstallationRead]:
    views = await platform_service.installations(session, actor, include_revoked=True)
    return [_installation_read(v) for v in views]


@router.post("/installations", response_model=InstallationRead, status_code=201, tags=["apps"])
async def install_app(
    actor: AppsManager, session: DbSession, body: InstallRequest
) -> InstallationRead:
    installation = await platform_service.install_app(
        session, actor, app_id=body.app_id, community_ids=body.community_ids, scopes=body.scopes
    )
    views = await platform_service.installations(session, actor)
    return _installation_read(next(v for v in views if v.installation.id == installation.id))


@router.post(
    "/installations/{installation_id}/revoke", response_model=InstallationRead, tags=["apps"]
)
async def revoke_installation(
    actor: AppsManager, session: DbSession, installation_id: uuid.UUID
) -> InstallationRead:
    await platform_service.revoke_installation(session, actor, installation_id)
    views = await platform_service.installations(session, actor, include_revoked=True)
    return _installation_read(next(v for v in views if v.installation.id == installation_id))


@router.get("/access-log/daily", response_model=list[AccessDay], tags=["apps"])
async def access_log_daily(
    actor: LogReader, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[AccessDay]:
    await access_log.flush()
    rows = await access_log.daily(session, actor, days=days)
    return [AccessDay(**r.__dict__) for r in rows]


@router.get("/access-log/export", tags=["apps"], summary="Every app call, as CSV")
async def access_log_export(
    actor: LogReader, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 90
) -> Response:
    await access_log.flush()
    body = await access_log.export_csv(session, actor, days=days)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="app-access-log.csv"'},
    )


# --- OAuth 2 / OpenID Connect ---------------------------------------------------------------


def _oauth_error(exc: DomainError) -> JSONResponse:
    status = 401 if exc.instance_code == "invalid_client" else exc.status
    if status == 403 and exc.instance_code in ("app_not_approved", "app_suspended"):
        status = 400
    return JSONResponse(
        {"error": exc.instance_code, "error_description": exc.message},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _client(request: Request, client_id: str | None, client_secret: str | None) -> tuple[str, str]:
    """client_secret_basic or client_secret_post."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            raw = base64.b64decode(value.strip()).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("Unknown client or wrong secret.", code="invalid_client") from exc
        cid, _, secret = raw.partition(":")
        return cid, secret
    if not client_id or not client_secret:
        raise Unauthorized("Unknown client or wrong secret.", code="invalid_client")
    return client_id, client_secret


OAUTH: list[Any] = ["oauth"]


@router.post("/oauth/token", response_model=TokenAnswer, tags=OAUTH)
async def token(
    request: Request,
    session: DbSession,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    tenant_id: Annotated[uuid.UUID | None, Form()] = None,
    installation_id: Annotated[uuid.UUID | None, Form()] = None,
    code: Annotated[str | None, Form()] = None,
    redirect_uri: Annotated[str | None, Form()] = None,
    code_verifier: Annotated[str | None, Form()] = None,
    _: Anyone = None,
) -> Response:
    try:
        cid, secret = _client(request, client_id, client_secret)
        if grant_type == "client_credentials":
            if tenant_id is None or installation_id is None:
                raise oauth.OAuthError(
                    "tenant_id and installation_id are required.", code="invalid_request"
                )
            issued = await oauth.client_credentials(
                session,
                client_id=cid,
                client_secret=secret,
                tenant_id=tenant_id,
                installation_id=installation_id,
                scope=scope,
            )
        elif grant_type == "authorization_code":
            issued = await oauth.exchange_code(
                session,
                client_id=cid,
                client_secret=secret,
                code=code or "",
                redirect_uri=redirect_uri or "",
                code_verifier=code_verifier or "",
            )
        else:
            raise oauth.OAuthError("Unsupported grant type.", code="unsupported_grant_type")
    except DomainError as exc:
        # Answered, not raised: the unit of work commits what the refusal wrote on
        # purpose (a replayed code revokes its tokens) and nothing else was written.
        return _oauth_error(exc)
    answer = TokenAnswer(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        scope=issued.scope,
        id_token=issued.id_token,
    )
    return JSONResponse(
        answer.model_dump(exclude_none=True),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/oauth/introspect", tags=OAUTH, summary="RFC 7662 token introspection")
async def introspect(
    request: Request,
    session: DbSession,
    token: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    _: Anyone = None,
) -> Response:
    try:
        cid, secret = _client(request, client_id, client_secret)
        answer = await oauth.introspect(session, client_id=cid, client_secret=secret, token=token)
    except DomainError as exc:
        return _oauth_error(exc)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


@router.post("/oauth/revoke", tags=OAUTH, summary="RFC 7009 token revocation")
async def revoke(
    request: Request,
    session: DbSession,
    token: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    _: Anyone = None,
) -> Response:
    try:
        cid, secret = _client(request, client_id, client_secret)
        await oauth.revoke_token(session, client_id=cid, client_secret=secret, token=token)
    except DomainError as exc:
        return _oauth_error(exc)
    return Response(status_code=200)


@router.post(
    "/oauth/authorize",
    tags=OAUTH,
    summary="A signed-in resident consents; answers where to send the browser",
)
async def authorize(
    actor: Resident,
    session: DbSession,
    tenant_id: uuid.UUID,
    client_id: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str = "",
    code_challenge_method: str = "",
    response_type: str = "code",
    state: str = "",
    nonce: str = "",
    approve: bool = True,
) -> dict[str, str]:
    consent = await oauth.check_authorization_request(
        session,
        actor,
        tenant_id=tenant_id,
        client_id=client_id,
        redirect_uri=redirect_uri,
        response_type=response_type,
        scope=scope,
        state=state,
        code_challenge=code_challenge,
        code_challenge_method=code_challenge_method,
        nonce=nonce,
    )
    if not approve:
        return {"redirect_to": oauth.denied_redirect(consent)}
    return {"redirect_to": await oauth.approve(session, actor, consent)}


@router.get("/oauth/userinfo", tags=OAUTH, summary="OpenID Connect userinfo")
async def userinfo(request: Request, _: Annotated[None, Depends(OwnBearer())]) -> dict[str, Any]:
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized()
    return await oauth.userinfo(value.strip())


@router.get("/oauth/.well-known/openid-configuration", tags=OAUTH)
async def openid_configuration(_: Anyone) -> dict[str, Any]:
    base = get_settings().public_url.rstrip("/")
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/portal/apps/authorize",
        "token_endpoint": f"{base}/api/v1/platform/oauth/token",
        "userinfo_endpoint": f"{base}/api/v1/platform/oauth/userinfo",
        "introspection_endpoint": f"{base}/api/v1/platform/oauth/introspect",
        "revocation_endpoint": f"{base}/api/v1/platform/oauth/revoke",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "subject_types_supported": ["pairwise"],
        "scopes_supported": sorted(scopes.CATALOG),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


# --- platform endpoints for apps ---------------------------------------------------------------

Notifier = Annotated[Actor, Depends(Authorizer(Permission.PLATFORM_NOTIFY))]
ParcelWriter = Annotated[Actor, Depends(Authorizer(Permission.PLATFORM_PARCELS_WRITE))]


@router.post("/app/notifications", response_model=Sent, status_code=202, tags=["app"])
async def app_notification(actor: Notifier, session: DbSession, body: NotificationSend) -> Sent:
    key = await platform_service.app_notify(
        session,
        actor,
        resident_id=body.resident_id,
        template="message",
        params={"title": body.title, "body": body.body},
        link=body.link,
    )
    return Sent(dedupe_key=key)


@router.post("/app/parcels", response_model=Sent, status_code=202, tags=["app"])
async def app_parcel(actor: ParcelWriter, session: DbSession, body: ParcelArrived) -> Sent:
    """A parcel-locker app tells the resident where their parcel is (快递到达)."""
    key = await platform_service.app_notify(
        session,
        actor,
        resident_id=body.resident_id,
        template="parcel.arrived",
        params={"place": body.place, "code": body.code},
    )
    return Sent(dedupe_key=key)

"""Developer portal pages (开发者中心): register, apps and manifests, credentials,
review submission, and the webhook delivery log with replay.

A developer is no linli principal: the developer token (see :mod:`linli.platform.api`)
rides in an HttpOnly, SameSite=Strict cookie scoped to ``/developers``; every form
carries a CSRF token derived from that cookie with the server key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.config import get_settings
from linli.core.errors import DomainError, NotFound, PermissionDenied, Unauthorized
from linli.platform import events, scopes, webhooks
from linli.platform import service as platform_service
from linli.platform.api import (
    DEVELOPER_TOKEN_SECONDS,
    issue_developer_token,
    platform_session,
    read_developer_token,
)
from linli.platform.models import PartnerApp, ReviewStatus
from linli.platform.schemas import MAX_ICON_BYTES, Manifest
from linli.platform.service import DeveloperPrincipal
from linli.web.nav import N_
from linli.web.session import describe
from linli.web.templating import render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

COOKIE = "linli_developer"
PREFIX = "/developers"
Db = Annotated[AsyncSession, Depends(platform_session, scope="function")]


def _csrf(token: str) -> str:
    key = get_settings().signing_key().encode()
    return hmac.new(key, f"developer-csrf:{token}".encode(), hashlib.sha256).hexdigest()[:40]


class DeveloperPage:
    """Declares ``platform.developer`` for a page: the developer cookie must be valid."""

    permission = Permission.PLATFORM_DEVELOPER
    declares_permission = True

    async def __call__(self, request: Request) -> DeveloperPrincipal:
        token = request.cookies.get(COOKIE, "")
        if not token:
            raise Unauthorized("Sign in to the developer portal.", code="sign_in_required")
        developer = read_developer_token(token)
        if request.method == "POST":
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf_token", "")), _csrf(token)):
                raise PermissionDenied("The form has expired. Please try again.", code="csrf")
        return developer


class DeveloperPublic:
    permission = Permission.PUBLIC
    declares_permission = True

    async def __call__(self) -> None:
        return None


# Review states as people read them (the developer portal and the operator console).
STATUS_LABELS = {
    ReviewStatus.DRAFT.value: N_("Draft"),
    ReviewStatus.PENDING.value: N_("Waiting for review"),
    ReviewStatus.APPROVED.value: N_("Approved"),
    ReviewStatus.REJECTED.value: N_("Rejected"),
    ReviewStatus.SUSPENDED.value: N_("Suspended"),
}

Dev = Annotated[DeveloperPrincipal, Depends(DeveloperPage())]
Anyone = Annotated[None, Depends(DeveloperPublic())]
Short = Annotated[str, Form(max_length=200)]


def _signed_in(token: str) -> RedirectResponse:
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=DEVELOPER_TOKEN_SECONDS,
        httponly=True,
        samesite="strict",
        path=PREFIX,
        secure=get_settings().public_url.startswith("https"),
    )
    return response


def _base(request: Request) -> dict[str, Any]:
    token = request.cookies.get(COOKIE, "")
    return {
        "csrf_token": _csrf(token) if token else "",
        "prefix": PREFIX,
        "status_labels": STATUS_LABELS,
    }


@router.get(PREFIX + "/login")
async def login_page(request: Request, _: Anyone) -> Response:
    return render(request, "platform/dev_login.html", _base(request) | {"error": None})


@router.post(PREFIX + "/login")
async def login(
    request: Request, _: Anyone, session: Db, email: Short = "", password: Short = ""
) -> Response:
    try:
        developer = await platform_service.sign_in_developer(
            session, email=email, password=password
        )
    except DomainError as exc:
        return render(
            request,
            "platform/dev_login.html",
            _base(request) | {"error": describe(exc)},
            status_code=exc.status,
        )
    return _signed_in(
        issue_developer_token(developer.id, developer.partner_id, developer.display_name)
    )


@router.post(PREFIX + "/register")
async def register(
    request: Request,
    _: Anyone,
    session: Db,
    company_name: Short = "",
    email: Short = "",
    display_name: Short = "",
    password: Short = "",
) -> Response:
    from pydantic import ValidationError

    from linli.platform.schemas import PartnerRegister

    try:
        body = PartnerRegister(
            company_name=company_name, email=email, display_name=display_name, password=password
        )
        async with session.begin_nested():
            developer = await platform_service.register_partner(
                session,
                company_name=body.company_name,
                email=body.email,
                display_name=body.display_name,
                password=body.password,
            )
    except ValidationError as exc:
        error = {"message": "; ".join(str(e["msg"]) for e in exc.errors()), "fields": {}}
        return render(
            request, "platform/dev_login.html", _base(request) | {"error": error}, status_code=422
        )
    except DomainError as exc:
        return render(
            request,
            "platform/dev_login.html",
            _base(request) | {"error": describe(exc)},
            status_code=exc.status,
        )
    return _signed_in(
        issue_developer_token(developer.id, developer.partner_id, developer.display_name)
    )


@router.get(PREFIX)
async def apps_page(request: Request, developer: Dev, session: Db) -> Response:
    apps = await platform_service.my_apps(session, developer)
    return render(request, "platform/dev_apps.html", _base(request) | _form_context(apps=apps))


def _form_context(**extra: Any) -> dict[str, Any]:
    return {
        "scope_catalog": sorted(scopes.INSTALLATION_SCOPES),
        "scope_labels": {n: s.summary for n, s in scopes.CATALOG.items()},
        "event_catalog": sorted(events.CATALOG),
        "error": None,
        **extra,
    }


async def _icon(form: Any, keep: PartnerApp | None) -> tuple[str | None, str]:
    """An uploaded icon as the manifest carries it (base64 + type); else the app's current
    one, so saving the form without a new file keeps it. Checked by :class:`Manifest`."""
    upload = form.get("icon")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_ICON_BYTES + 1)  # one byte more: "too large", not cut
        if data:
            return base64.b64encode(data).decode(), upload.content_type or ""
    if keep is not None and keep.icon:
        return base64.b64encode(keep.icon).decode(), keep.icon_type
    return None, ""


async def _manifest(form: Any, keep: PartnerApp | None = None) -> Manifest:
    icon_base64, icon_type = await _icon(form, keep)
    return Manifest(
        name=str(form.get("name", "")),
        description=str(form.get("description", "")),
        icon_base64=icon_base64,
        icon_type=icon_type,
        requested_scopes=[str(s) for s in form.getlist("scope")],
        events=[str(e) for e in form.getlist("event")],
        webhook_url=str(form.get("webhook_url", "")),
        entry_url=str(form.get("entry_url", "")),
        console_url=str(form.get("console_url", "")),
        redirect_uris=[u.strip() for u in str(form.get("redirect_uris", "")).split() if u.strip()],
    )


def _refusal(exc: Exception) -> tuple[dict[str, Any], int]:
    """What the page shows of a refused manifest, and the status."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return {"message": message, "fields": {}}, 422
    assert isinstance(exc, DomainError)
    described = describe(exc)
    fields = described.get("fields") or {}
    if fields:
        described["message"] = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return described, exc.status


@router.post(PREFIX + "/apps")
async def create_app(request: Request, developer: Dev, session: Db) -> Response:
    from pydantic import ValidationError

    form = await request.form()
    try:
        manifest = await _manifest(form)
        async with session.begin_nested():
            app, secret = await platform_service.create_app(session, developer, manifest)
    except (ValidationError, DomainError) as exc:
        apps = await platform_service.my_apps(session, developer)
        error, status = _refusal(exc)
        return render(
            request,
            "platform/dev_apps.html",
            _base(request) | _form_context(apps=apps, error=error),
            status_code=status,
        )
    return await _app_page(request, developer, session, app.id, shown_secret=secret)


async def _app_page(
    request: Request,
    developer: DeveloperPrincipal,
    session: AsyncSession,
    app_id: uuid.UUID,
    *,
    shown_secret: str | None = None,
    credentials: Any = None,
) -> Response:
    app = await platform_service.my_app(session, developer, app_id)
    deliveries = await webhooks.delivery_log(developer, app.id, limit=50, owner_checked=True)
    return render(
        request,
        "platform/dev_app.html",
        _base(request)
        | _form_context(
            app=app,
            deliveries=deliveries,
            shown_secret=shown_secret,
            credentials=credentials,
        ),
    )


@router.get(PREFIX + "/apps/{app_id}")
async def app_page(request: Request, developer: Dev, session: Db, app_id: uuid.UUID) -> Response:
    return await _app_page(request, developer, session, app_id)


@router.post(PREFIX + "/apps/{app_id}/manifest")
async def update_manifest(
    request: Request, developer: Dev, session: Db, app_id: uuid.UUID
) -> Response:
    """Edit the manifest; asking for more scopes sends an approved app back to review."""
    from pydantic import ValidationError

    form = await request.form()
    app = await platform_service.my_app(session, developer, app_id)
    try:
        manifest = await _manifest(form, keep=app)
        async with session.begin_nested():
            await platform_service.update_manifest(session, developer, app_id, manifest)
    except (ValidationError, DomainError) as exc:
        app = await platform_service.my_app(session, developer, app_id)
        error, status = _refusal(exc)
        return render(
            request,
            "platform/dev_app.html",
            _base(request) | _form_context(app=app, deliveries=[], error=error),
            status_code=status,
        )
    return RedirectResponse(f"{PREFIX}/apps/{app_id}", status_code=303)


@router.get(PREFIX + "/apps/{app_id}/icon")
async def app_icon(developer: Dev, session: Db, app_id: uuid.UUID) -> Response:
    app = await platform_service.my_app(session, developer, app_id)
    if not app.icon:
        raise NotFound("No such app.", code="app_not_found")
    # Raster types only (checked at upload); nosniff so nothing reinterprets the bytes.
    return Response(
        app.icon,
        media_type=app.icon_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60"},
    )


@router.post(PREFIX + "/apps/{app_id}/credentials")
async def new_credentials(
    request: Request,
    developer: Dev,
    session: Db,
    app_id: uuid.UUID,
    environment: Annotated[str, Form(pattern="^(test|live)$")] = "test",
) -> Response:
    credential, secret = await platform_service.issue_credentials(
        session, developer, app_id, environment
    )
    issued = {"client_id": credential.client_id, "client_secret": secret}
    return await _app_page(request, developer, session, app_id, credentials=issued)


@router.post(PREFIX + "/apps/{app_id}/submit")
async def submit(request: Request, developer: Dev, session: Db, app_id: uuid.UUID) -> Response:
    await platform_service.submit_for_review(session, developer, app_id)
    return RedirectResponse(f"{PREFIX}/apps/{app_id}", status_code=303)


@router.post(PREFIX + "/apps/{app_id}/deliveries/{delivery_id}/replay")
async def replay(
    request: Request,
    developer: Dev,
    app_id: uuid.UUID,
    delivery_id: uuid.UUID,
    tenant_id: Annotated[uuid.UUID, Form()],
) -> Response:
    await webhooks.replay(developer, app_id, tenant_id=tenant_id, delivery_id=delivery_id)
    return RedirectResponse(f"{PREFIX}/apps/{app_id}", status_code=303)


@router.post(PREFIX + "/logout")
async def logout(request: Request, developer: Dev) -> Response:
    response = RedirectResponse(PREFIX + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response

"""The platform operator's console (平台运营 · 应用审核): the review queue of partner
apps with their manifests, approve or reject with a reason, suspend a live app and
reinstate it.

Operators are neither staff nor residents: they sign in here with their operator
account (``linli user create --operator``). The operator's access token rides in an
HttpOnly, SameSite=Strict cookie scoped to ``/operator``; operators get no refresh
token, so the session ends with the token. Every form carries a CSRF token derived
from that cookie with the server key. The work is done by
:mod:`linli.platform.service`, exactly as for the JSON API.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth import service as auth_service
from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import DeclaredRoute, client_ip
from linli.auth.permissions import Permission
from linli.auth.tokens import decode_access_token
from linli.config import get_settings
from linli.core.errors import DomainError, NotFound, PermissionDenied, Unauthorized
from linli.platform import events, scopes
from linli.platform import service as platform_service
from linli.platform.api import platform_session
from linli.platform.dev_pages import STATUS_LABELS
from linli.platform.models import ReviewStatus
from linli.web.session import describe, request_id
from linli.web.templating import render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

COOKIE = "linli_operator"
PREFIX = "/operator"
Db = Annotated[AsyncSession, Depends(platform_session, scope="function")]
Short = Annotated[str, Form(max_length=200)]
Reason = Annotated[str, Form(max_length=1000)]


def _csrf(token: str) -> str:
    key = get_settings().signing_key().encode()
    return hmac.new(key, f"operator-csrf:{token}".encode(), hashlib.sha256).hexdigest()[:40]


def _operator_from(request: Request) -> Actor | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    try:
        actor = decode_access_token(token, (PrincipalKind.OPERATOR,))
    except Unauthorized:
        return None
    if actor.kind is not PrincipalKind.OPERATOR or not actor.can(Permission.OPERATOR_APPS_REVIEW):
        return None
    return replace(actor, ip=client_ip(request), request_id=request_id(request))


class OperatorPage:
    """Declares ``operator.tenants.manage`` for a page: the operator cookie must be valid.

    ``optional`` pages (the GET ones) receive None when nobody is signed in and send
    the browser to the sign-in page; forms (POST) are refused outright, and checked
    for their CSRF token.
    """

    permission = Permission.OPERATOR_APPS_REVIEW
    declares_permission = True

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    async def __call__(self, request: Request) -> Actor | None:
        actor = _operator_from(request)
        if actor is None:
            if self.optional:
                return None
            raise Unauthorized("Sign in as a platform operator.", code="sign_in_required")
        if request.method == "POST":
            form = await request.form()
            token = request.cookies.get(COOKIE, "")
            if not hmac.compare_digest(str(form.get("csrf_token", "")), _csrf(token)):
                raise PermissionDenied("The form has expired. Please try again.", code="csrf")
        return actor


class OperatorPublic:
    permission = Permission.PUBLIC
    declares_permission = True

    async def __call__(self) -> None:
        return None


MaybeOperator = Annotated[Actor | None, Depends(OperatorPage(optional=True))]
OperatorActor = Annotated[Actor, Depends(OperatorPage())]
Anyone = Annotated[None, Depends(OperatorPublic())]


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", status_code=303)


def _safe_next(target: str) -> str:
    if target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/apps"


def _base(request: Request, actor: Actor | None) -> dict[str, Any]:
    token = request.cookies.get(COOKIE, "")
    return {
        "csrf_token": _csrf(token) if token and actor else "",
        "prefix": PREFIX,
        "operator": actor,
        "status_labels": STATUS_LABELS,
        "scope_labels": {n: s.summary for n, s in scopes.CATALOG.items()},
        "event_scopes": events.CATALOG,
        "error": None,
    }


# --- sign-in -----------------------------------------------------------------------------------


@router.get(PREFIX + "/login")
async def login_page(request: Request, _: Anyone, next: str = "") -> Response:
    context = _base(request, None) | {"next": _safe_next(next[:300])}
    return render(request, "platform/op_login.html", context)


@router.post(PREFIX + "/login")
async def login(
    request: Request,
    _: Anyone,
    session: Db,
    username: Short = "",
    password: Short = "",
    next: Short = "",
) -> Response:
    try:
        tokens = await auth_service.login_operator(
            session,
            username=username,
            password=password,
            ip=client_ip(request),
            request_id=request_id(request),
        )
    except DomainError as exc:
        context = _base(request, None) | {"next": _safe_next(next), "error": describe(exc)}
        return render(request, "platform/op_login.html", context, status_code=exc.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        tokens.access_token,
        max_age=tokens.expires_in,
        httponly=True,
        samesite="strict",
        path=PREFIX,
        secure=get_settings().cookie_secure,
    )
    return response


@router.post(PREFIX + "/logout")
async def logout(request: Request, actor: OperatorActor) -> Response:
    response = RedirectResponse(PREFIX + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# --- the queue and the apps ----------------------------------------------------------------------


@router.get(PREFIX)
async def home(request: Request, actor: MaybeOperator) -> Response:
    return RedirectResponse(PREFIX + "/apps", status_code=303)


@router.get(PREFIX + "/apps")
async def apps_page(request: Request, actor: MaybeOperator, session: Db) -> Response:
    if actor is None:
        return _to_login(request)
    context = _base(request, actor) | {
        "queue": await platform_service.apps_with_status(session, actor, ReviewStatus.PENDING),
        "live": await platform_service.apps_with_status(session, actor, ReviewStatus.APPROVED),
        "suspended": await platform_service.apps_with_status(
            session, actor, ReviewStatus.SUSPENDED
        ),
    }
    return render(request, "platform/op_apps.html", context)


async def _app_page(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    app_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    found = await platform_service.app_for_operator(session, actor, app_id)
    context = _base(request, actor) | {
        "app": found.app,
        "partner": found.partner,
        "error": error,
    }
    return render(request, "platform/op_app.html", context, status_code=status_code)


@router.get(PREFIX + "/apps/{app_id}")
async def app_page(
    request: Request, actor: MaybeOperator, session: Db, app_id: uuid.UUID
) -> Response:
    if actor is None:
        return _to_login(request)
    return await _app_page(request, actor, session, app_id)


@router.get(PREFIX + "/apps/{app_id}/icon")
async def app_icon(actor: OperatorActor, session: Db, app_id: uuid.UUID) -> Response:
    found = await platform_service.app_for_operator(session, actor, app_id)
    if not found.app.icon:
        raise NotFound("No such app.", code="app_not_found")
    # Raster types only (checked at upload); nosniff so nothing reinterprets the bytes.
    return Response(
        found.app.icon,
        media_type=found.app.icon_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=600"},
    )


async def _act(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    app_id: uuid.UUID,
    work: Callable[[], Awaitable[object]],
) -> Response:
    """Run one decision; a refused one re-renders the app page with the reason."""
    try:
        async with session.begin_nested():
            await work()
    except DomainError as exc:
        return await _app_page(
            request, actor, session, app_id, error=describe(exc), status_code=exc.status
        )
    return RedirectResponse(f"{PREFIX}/apps/{app_id}", status_code=303)


@router.post(PREFIX + "/apps/{app_id}/review")
async def review(
    request: Request,
    actor: OperatorActor,
    session: Db,
    app_id: uuid.UUID,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Reason = "",
) -> Response:
    def work() -> Awaitable[object]:
        return platform_service.review_app(
            session, actor, app_id, approve=decision == "approve", note=note
        )

    return await _act(request, actor, session, app_id, work)


@router.post(PREFIX + "/apps/{app_id}/suspend")
async def suspend(
    request: Request, actor: OperatorActor, session: Db, app_id: uuid.UUID, reason: Reason = ""
) -> Response:
    def work() -> Awaitable[object]:
        return platform_service.suspend_app(session, actor, app_id, reason=reason)

    return await _act(request, actor, session, app_id, work)


@router.post(PREFIX + "/apps/{app_id}/reinstate")
async def reinstate(
    request: Request, actor: OperatorActor, session: Db, app_id: uuid.UUID
) -> Response:
    def work() -> Awaitable[object]:
        return platform_service.reinstate_app(session, actor, app_id)

    return await _act(request, actor, session, app_id, work)

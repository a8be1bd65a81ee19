"""Page routes of the web shell: the staff console (/console) and the resident portal (/portal).

Thin by design: sign-in and data come from the auth and tenancy services; this
module turns forms into service calls and service answers into pages. Every route
declares its permission (StaffPage, ResidentPage or PublicPage), like API routes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.staticfiles import StaticFiles

from linli.auth import residents
from linli.auth import service as auth_service
from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute, client_ip
from linli.auth.permissions import Permission, Role
from linli.auth.resident_api import wechat_client
from linli.auth.wechat import WechatOAuthClient
from linli.core.errors import BadRequest, DomainError, NotFound
from linli.core.i18n import LOCALES
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.db.reads import Record
from linli.tenancy import service as tenancy_service
from linli.tenancy.models import Community
from linli.web import nav
from linli.web.nav import N_
from linli.web.session import (
    CONSOLE,
    PORTAL,
    Area,
    ConsoleCsrf,
    CookieChange,
    PortalCsrf,
    ResidentPage,
    StaffPage,
    clear_tokens,
    csrf_token,
    describe,
    public_page,
    queue_cookie,
    request_id,
    resident_principal,
    rotate_session_id,
    safe_next,
    set_locale_cookie,
    staff_principal,
    store_tokens,
)
from linli.web.templating import STATIC_DIR, STATIC_PREFIX, redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

COMMUNITY_COOKIE = "linli_community"
WECHAT_NONCE_COOKIE = "linli_wx_nonce"
WECHAT_CALLBACK_PATH = "/portal/wechat/callback"
COMMUNITY_PAGE_SIZE = 20
SWITCHER_LIMIT = 200

ROLE_LABELS = {
    Role.COMPANY_ADMIN: N_("Company admin"),
    Role.COMMUNITY_MANAGER: N_("Community manager"),
    Role.FINANCE: N_("Finance"),
    Role.CASHIER: N_("Cashier"),
    Role.FRONT_DESK: N_("Front desk"),
    Role.TECHNICIAN: N_("Technician"),
    Role.SECURITY_GUARD: N_("Security guard"),
}

_ROLE_NAMES = frozenset(role.value for role in Role)
FormText = Annotated[str, Form(max_length=200)]
NextField = Annotated[str, Form(max_length=1000)]


def mount_static(app: Any) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")


# --- units of work for pages ------------------------------------------------------------------


async def staff_db(
    principal: Annotated[Actor | None, Depends(staff_principal)],
) -> AsyncIterator[AsyncSession]:
    """The page's transaction, bound to the signed-in staff member's company."""
    async with unit_of_work(principal.tenant_id if principal else None) as session:
        yield session


async def platform_db() -> AsyncIterator[AsyncSession]:
    """A transaction with no company set: sign-in (the service sets it) and resident rows."""
    async with unit_of_work() as session:
        yield session


StaffDb = Annotated[AsyncSession, Depends(staff_db, scope="function")]
PlatformDb = Annotated[AsyncSession, Depends(platform_db, scope="function")]
Anyone = Annotated[None, Depends(public_page)]
Wechat = Annotated[WechatOAuthClient, Depends(wechat_client)]


def staff(permission: Permission) -> Any:
    return Depends(StaffPage(permission))


# --- the console shell ------------------------------------------------------------------------


async def console_shell(request: Request, session: AsyncSession, actor: Actor) -> dict[str, Any]:
    """What every console page shows around its content: company, communities, navigation."""
    tenant = await tenancy_service.get_tenant(session, actor.tenant_id) if actor.tenant_id else None
    communities, _ = await tenancy_service.list_communities(
        actor, page=PageParams(limit=SWITCHER_LIMIT)
    )
    current = await _chosen_community(request, session, actor, communities)
    return {
        "area": CONSOLE,
        "actor": actor,
        "company_name": tenant.name if tenant else "",
        "communities": communities,
        "current_community": current,
        "nav_items": nav.visible_items(actor),
        "role_labels": [ROLE_LABELS[Role(r)] for r in sorted(actor.roles) if r in _ROLE_NAMES],
        "csrf_token": csrf_token(request, CONSOLE),
    }


async def _chosen_community(
    request: Request, session: AsyncSession, actor: Actor, listed: Sequence[Record]
) -> Community | Record | None:
    """The community in the cookie, checked against the grants on every request."""
    raw = request.cookies.get(COMMUNITY_COOKIE)
    chosen: Community | Record | None = None
    if raw:
        try:
            wanted = uuid.UUID(raw)
        except ValueError:
            wanted = None
        if wanted is not None:
            chosen = next((c for c in listed if c.id == wanted), None)
            if chosen is None and len(listed) >= SWITCHER_LIMIT:
                try:  # beyond the switcher's first page: ask the service
                    chosen = await tenancy_service.get_community(
                        session, actor, community_id=wanted
                    )
                except NotFound:
                    chosen = None
        if chosen is None:
            # Not (or no longer) granted: forget it rather than trust it.
            queue_cookie(request, CookieChange(COMMUNITY_COOKIE, None, CONSOLE.prefix))
    return chosen or (listed[0] if listed else None)


@router.get("/console", name="console.dashboard")
async def dashboard(
    request: Request,
    actor: Annotated[Actor, staff(Permission.AUTHENTICATED)],
    session: StaffDb,
) -> Response:
    shell = await console_shell(request, session, actor)
    return render(request, "console/dashboard.html", shell)


@router.get("/console/communities", name="console.communities")
async def communities_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.COMMUNITIES_READ)],
    session: StaffDb,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    rows, next_cursor = await tenancy_service.list_communities(
        actor, page=PageParams(cursor=cursor, limit=COMMUNITY_PAGE_SIZE)
    )
    return render(
        request,
        "console/communities.html",
        shell | {"rows": rows, "next_cursor": next_cursor, "first_page": cursor is None},
    )


def _placeholder_route(item: nav.NavItem) -> None:
    # The dependency is a default value, not an annotation: with postponed annotations
    # FastAPI resolves annotations in module scope, where ``item`` does not exist.
    async def placeholder(
        request: Request,
        session: StaffDb,
        actor: Actor = Depends(StaffPage(item.permission)),
    ) -> Response:
        shell = await console_shell(request, session, actor)
        return render(request, "console/placeholder.html", shell | {"section": item})

    router.add_api_route(item.path, placeholder, methods=["GET"], name=f"console.soon.{item.key}")


for _item in nav.placeholders():
    _placeholder_route(_item)


# --- console sign-in --------------------------------------------------------------------------


def _login_page(
    request: Request,
    *,
    next_url: str,
    company: str = "",
    login: str = "",
    error: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "console/login.html",
        {
            "area": CONSOLE,
            "csrf_token": csrf_token(request, CONSOLE),
            "next": next_url,
            "company": company,
            "login": login,
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/console/login", name="console.login")
async def console_login_form(
    request: Request,
    _: Anyone,
    principal: Annotated[Actor | None, Depends(staff_principal)],
    next: Annotated[str | None, Query(max_length=1000)] = None,
    company: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    target = safe_next(next, CONSOLE)
    if principal is not None:
        return redirect(request, target)
    return _login_page(request, next_url=target, company=company)


@router.post("/console/login", dependencies=[ConsoleCsrf])
async def console_login(
    request: Request,
    _: Anyone,
    session: PlatformDb,
    company: FormText = "",
    login: FormText = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: NextField = "",
) -> Response:
    target = safe_next(next, CONSOLE)
    company, login = company.strip(), login.strip()
    missing = {
        name: N_("Required.")
        for name, value in (("company", company), ("login", login), ("password", password))
        if not value
    }
    if missing:
        error = {"code": "validation_failed", "message": "", "fields": missing}
        return _login_page(
            request, next_url=target, company=company, login=login, error=error, status_code=422
        )
    try:
        tokens = await auth_service.login_staff(
            session,
            company=company,
            login=login,
            password=password,
            ip=client_ip(request),
            request_id=request_id(request),
        )
    except DomainError as exc:
        return _login_page(
            request,
            next_url=target,
            company=company,
            login=login,
            error=describe(exc),
            status_code=exc.status,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "retry-after"},
        )
    rotate_session_id(request, CONSOLE)
    store_tokens(request, CONSOLE, tokens)
    return redirect(request, target)


async def _sign_out(
    request: Request,
    session: AsyncSession,
    area: Area,
    logout: Callable[..., Awaitable[None]],
) -> Response:
    """End the area's refresh family (if any), drop its cookies, back to its sign-in page."""
    refresh = request.cookies.get(area.refresh_cookie)
    if refresh:
        try:
            await logout(
                session,
                refresh_token=refresh,
                ip=client_ip(request),
                request_id=request_id(request),
            )
        except DomainError:
            pass  # an unknown or spent token: the cookies go either way
    clear_tokens(request, area)
    rotate_session_id(request, area)
    return redirect(request, area.login_path)


@router.post("/console/logout", dependencies=[ConsoleCsrf])
async def console_logout(request: Request, _: Anyone, session: PlatformDb) -> Response:
    return await _sign_out(request, session, CONSOLE, auth_service.logout_staff)


@router.post("/console/community", dependencies=[ConsoleCsrf])
async def switch_community(
    request: Request,
    actor: Annotated[Actor, staff(Permission.COMMUNITIES_READ)],
    session: StaffDb,
    community_id: Annotated[str, Form(max_length=64)] = "",
    next: NextField = "",
) -> Response:
    try:
        wanted = uuid.UUID(community_id)
    except ValueError as exc:
        raise NotFound("Community not found.", code="community_not_found") from exc
    # Refuses communities of other companies and ones not granted to this person alike.
    community = await tenancy_service.get_community(session, actor, community_id=wanted)
    max_age = 365 * 24 * 3600
    queue_cookie(
        request, CookieChange(COMMUNITY_COOKIE, str(community.id), CONSOLE.prefix, max_age)
    )
    return redirect(request, safe_next(next, CONSOLE))


async def _switch_locale(request: Request, area: Area, locale: str, next_url: str) -> Response:
    if locale not in LOCALES:
        raise BadRequest("Unknown language.", code="unknown_locale")
    set_locale_cookie(request, locale)
    return redirect(request, safe_next(next_url, area))


@router.post("/console/locale", dependencies=[ConsoleCsrf])
async def console_locale(
    request: Request,
    _: Anyone,
    locale: Annotated[str, Form(max_length=10)] = "",
    next: NextField = "",
) -> Response:
    return await _switch_locale(request, CONSOLE, locale, next)


# --- the portal -------------------------------------------------------------------------------


def is_wechat(request: Request) -> bool:
    return "micromessenger" in request.headers.get("user-agent", "").lower()


def _portal_login_page(
    request: Request,
    *,
    next_url: str,
    phone: str = "",
    code_sent: bool = False,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "portal/login.html",
        {
            "area": PORTAL,
            "csrf_token": csrf_token(request, PORTAL),
            "next": next_url,
            "phone": phone,
            "code_sent": code_sent,
            "error": error,
            "in_wechat": is_wechat(request),
        },
        status_code=status_code,
        headers=headers,
    )


def _retry_after(error: DomainError) -> dict[str, str]:
    return {k: v for k, v in error.headers.items() if k.lower() == "retry-after"}


@router.get("/portal/login", name="portal.login")
async def portal_login_form(
    request: Request,
    _: Anyone,
    principal: Annotated[Actor | None, Depends(resident_principal)],
    next: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    target = safe_next(next, PORTAL)
    if principal is not None:
        return redirect(request, target)
    return _portal_login_page(request, next_url=target)


@router.post("/portal/login/code", dependencies=[PortalCsrf])
async def portal_request_code(
    request: Request,
    _: Anyone,
    session: PlatformDb,
    phone: Annotated[str, Form(max_length=32)] = "",
    next: NextField = "",
) -> Response:
    target = safe_next(next, PORTAL)
    try:
        await residents.request_otp(session, phone=phone, ip=client_ip(request))
    except DomainError as exc:
        return _portal_login_page(
            request,
            next_url=target,
            phone=phone,
            error=describe(exc),
            status_code=exc.status,
            headers=_retry_after(exc),
        )
    return _portal_login_page(request, next_url=target, phone=phone, code_sent=True)


@router.post("/portal/login", dependencies=[PortalCsrf])
async def portal_login(
    request: Request,
    _: Anyone,
    session: PlatformDb,
    phone: Annotated[str, Form(max_length=32)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
    next: NextField = "",
) -> Response:
    target = safe_next(next, PORTAL)
    try:
        tokens = await residents.verify_otp(
            session, phone=phone, code=code, ip=client_ip(request), request_id=request_id(request)
        )
    except DomainError as exc:
        return _portal_login_page(
            request,
            next_url=target,
            phone=phone,
            code_sent=True,
            error=describe(exc),
            status_code=exc.status,
            headers=_retry_after(exc),
        )
    rotate_session_id(request, PORTAL)
    store_tokens(request, PORTAL, tokens)
    return redirect(request, target)


def wechat_page_callback_url(client: WechatOAuthClient) -> str:
    return f"{client.settings.public_url.rstrip('/')}{WECHAT_CALLBACK_PATH}"


@router.get("/portal/wechat/start", name="portal.wechat_start")
async def wechat_start(
    request: Request,
    _: Anyone,
    client: Wechat,
    next: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    state, verified = residents.new_wechat_state(
        redirect=safe_next(next, PORTAL), settings=client.settings
    )
    # The state's nonce must come back to the browser that started: a sign-in
    # started elsewhere and forced on this browser (login CSRF) is refused.
    max_age = client.settings.wechat_state_max_age_seconds
    queue_cookie(request, CookieChange(WECHAT_NONCE_COOKIE, verified.nonce, PORTAL.prefix, max_age))
    url = residents.wechat_authorize_url(
        redirect_uri=wechat_page_callback_url(client),
        state=state,
        scope=verified.scope,
        settings=client.settings,
    )
    return redirect(request, url, status_code=302)


@router.get(WECHAT_CALLBACK_PATH, name="portal.wechat_callback")
async def wechat_callback_page(
    request: Request,
    _: Anyone,
    session: PlatformDb,
    client: Wechat,
    state: Annotated[str, Query(max_length=2000)] = "",
    code: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    verified = residents.read_wechat_state(state, settings=client.settings)
    nonce = request.cookies.get(WECHAT_NONCE_COOKIE, "")
    queue_cookie(request, CookieChange(WECHAT_NONCE_COOKIE, None, PORTAL.prefix))
    if not nonce or nonce != verified.nonce:
        raise BadRequest(
            "This WeChat sign-in was not started in this browser.", code="wechat_state_mismatch"
        )
    target = safe_next(verified.redirect, PORTAL)
    if not code:
        error = describe(BadRequest("WeChat sign-in was cancelled.", code="wechat_denied"))
        return _portal_login_page(request, next_url=target, error=error, status_code=400)
    tokens = await residents.login_wechat(
        session, code=code, ip=client_ip(request), request_id=request_id(request), client=client
    )
    rotate_session_id(request, PORTAL)
    store_tokens(request, PORTAL, tokens)
    return redirect(request, target)


async def _portal_context(request: Request, session: AsyncSession, actor: Actor) -> dict[str, Any]:
    profile = await residents.get_profile(session, actor)
    return {
        "area": PORTAL,
        "actor": actor,
        "profile": profile,
        "csrf_token": csrf_token(request, PORTAL),
    }


ResidentActor = Annotated[Actor, Depends(ResidentPage(Permission.RESIDENT_SELF))]


@router.get("/portal", name="portal.home")
async def portal_home(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    context = await _portal_context(request, session, actor)
    return render(request, "portal/home.html", context | {"tiles": nav.tiles()})


@router.get("/portal/me", name="portal.me")
async def portal_me(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    context = await _portal_context(request, session, actor)
    return render(request, "portal/me.html", context)


@router.post("/portal/logout", dependencies=[PortalCsrf])
async def portal_logout(request: Request, _: Anyone, session: PlatformDb) -> Response:
    return await _sign_out(request, session, PORTAL, residents.logout_resident)


@router.post("/portal/locale", dependencies=[PortalCsrf])
async def portal_locale(
    request: Request,
    _: Anyone,
    locale: Annotated[str, Form(max_length=10)] = "",
    next: NextField = "",
) -> Response:
    return await _switch_locale(request, PORTAL, locale, next)


@router.get("/", name="root")
async def root(request: Request, _: Anyone) -> RedirectResponse:
    """The bare host name: staff are the ones who type it; residents arrive by links."""
    return redirect(request, CONSOLE.prefix, status_code=307)

"""Console pages of the open platform: the company's app directory (install with a scope
grant, revoke) and the data-sovereignty page (what partner apps read, per day).

Thin like every page module: :mod:`linli.platform.service` and
:mod:`linli.platform.access_log` do the work; these routes turn forms into calls.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, NotFound
from linli.estate import service as estate_service
from linli.platform import access_log, oauth, scopes
from linli.platform import service as platform_service
from linli.web import nav
from linli.web.forms import required_uuid
from linli.web.nav import N_
from linli.web.pages import (
    PlatformDb,
    ResidentActor,
    StaffDb,
    _portal_context,
    console_shell,
    staff,
)
from linli.web.session import ConsoleCsrf, PortalCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

nav.register(
    nav.NavItem(
        "apps", N_("Partner apps"), "/console/apps", Permission.PLATFORM_APPS_MANAGE, "grid", 90
    )
)
nav.register(
    nav.NavItem(
        "app-access",
        N_("App data access"),
        "/console/app-access",
        Permission.PLATFORM_ACCESS_LOG_READ,
        "dot",
        91,
    )
)

nav.register_tile(nav.PortalTile("apps", N_("Services"), "grid", "/portal/apps", 80))

Manager = Annotated[Actor, staff(Permission.PLATFORM_APPS_MANAGE)]
LogReader = Annotated[Actor, staff(Permission.PLATFORM_ACCESS_LOG_READ)]

SCOPE_LABELS = {name: scope.summary for name, scope in scopes.CATALOG.items()}
# The msgids of the scope summaries, for extraction (they are defined in scopes.py).
_MSGIDS = (
    N_("Read communities, buildings, houses and parking"),
    N_("Read residents' names, houses and vehicles (phone and ID masked)"),
    N_("Read residents' full phone and ID-card numbers"),
    N_("Issue and revoke visitor and courier gate passes"),
    N_("Register parcels for residents"),
    N_("Read bills, balances and receipts"),
    N_("Send notifications to residents"),
    N_("Know who you are (a pseudonymous id)"),
    N_("Your display name"),
    N_("The houses you live in"),
    N_("Your phone number"),
)


async def _communities(session: AsyncSession, actor: Actor) -> list[Any]:
    return list(await session.scalars(estate_service.readable_communities(actor)))


async def _apps_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    views = await platform_service.installations(session, actor, include_revoked=True)
    installed = {v.app.id for v in views if v.installation.revoked_at is None}
    directory = [a for a in await platform_service.directory(session) if a.id not in installed]
    communities = await _communities(session, actor)
    names = {c.id: c.name for c in communities}
    return render(
        request,
        "platform/apps.html",
        shell
        | {
            "installations": views,
            "directory": directory,
            "communities": communities,
            "community_names": names,
            "scope_labels": SCOPE_LABELS,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/console/apps", name="console.apps")
async def apps_page(request: Request, actor: Manager, session: StaffDb) -> Response:
    return await _apps_page(request, session, actor)


@router.post("/console/apps/install", dependencies=[ConsoleCsrf])
async def install_app(
    request: Request,
    actor: Manager,
    session: StaffDb,
    app_id: Annotated[str, Form(max_length=40)],
    scope: Annotated[list[str] | None, Form()] = None,
    community: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        async with session.begin_nested():
            await platform_service.install_app(
                session,
                actor,
                app_id=_uuid(app_id),
                community_ids=[_uuid(c) for c in community or []],
                scopes=list(scope or []),
            )
    except DomainError as exc:
        return await _apps_page(
            request, session, actor, error=describe(exc), status_code=exc.status
        )
    return redirect(request, "/console/apps")


@router.post("/console/apps/{installation_id}/revoke", dependencies=[ConsoleCsrf])
async def revoke_app(
    request: Request, actor: Manager, session: StaffDb, installation_id: uuid.UUID
) -> Response:
    await platform_service.revoke_installation(session, actor, installation_id)
    return redirect(request, "/console/apps")


@router.get("/console/apps/{app_id}/icon")
async def app_icon(actor: Manager, session: StaffDb, app_id: uuid.UUID) -> Response:
    app = await platform_service.approved_app(session, app_id)
    if not app.icon:
        raise NotFound("No such app.", code="app_not_found")
    # Raster types only (checked at upload); nosniff so nothing reinterprets the bytes.
    return Response(
        app.icon,
        media_type=app.icon_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )


def _uuid(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="No such app.", code="app_not_found")


# --- data sovereignty -------------------------------------------------------------------------

CHART_WIDTH = 640
CHART_HEIGHT = 160


def _chart(days: list[access_log.DayRow]) -> list[dict[str, Any]]:
    """One bar chart per app: records read per day, anomalies in a warning colour."""
    by_app: dict[uuid.UUID, list[access_log.DayRow]] = defaultdict(list)
    for row in days:
        by_app[row.app_id].append(row)
    charts = []
    for rows in by_app.values():
        top = max((r.records for r in rows), default=0) or 1
        slot = CHART_WIDTH / max(len(rows), 1)
        bars = []
        for index, row in enumerate(rows):
            height = round(row.records / top * (CHART_HEIGHT - 20), 1)
            bars.append(
                {
                    "x": round(index * slot + 2, 1),
                    "y": round(CHART_HEIGHT - 16 - height, 1),
                    "w": max(round(slot - 4, 1), 1),
                    "h": height,
                    "row": row,
                }
            )
        charts.append(
            {
                "app_name": rows[0].app_name,
                "bars": bars,
                "top": top,
                "calls": sum(r.calls for r in rows),
                "records": sum(r.records for r in rows),
                "refused": sum(r.refused for r in rows),
                "anomalies": [r for r in rows if r.anomaly],
            }
        )
    return charts


@router.get("/console/app-access", name="console.app_access")
async def access_page(request: Request, actor: LogReader, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    await access_log.flush()
    days = await access_log.daily(session, actor, days=30)
    return render(
        request,
        "platform/access.html",
        shell
        | {
            "charts": _chart(days),
            "chart_width": CHART_WIDTH,
            "chart_height": CHART_HEIGHT,
            "recent": await access_log.recent(session, actor, limit=50),
        },
    )


@router.get("/portal/apps", name="portal.apps")
async def portal_apps(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    """Partner services (H5 pages) the resident's companies installed; gone once revoked."""
    entries = await platform_service.portal_entries(session, actor)
    context = await _portal_context(request, session, actor)
    return render(request, "platform/portal_apps.html", context | {"entries": entries})


@router.get("/console/app-access/export")
async def access_export(actor: LogReader, session: StaffDb) -> Response:
    await access_log.flush()
    body = await access_log.export_csv(session, actor, days=90)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="app-access-log.csv"'},
    )


# --- the resident's consent (OAuth 2 authorization endpoint, 授权) ---------------------------


class _AuthorizeQuery:
    FIELDS = (
        "tenant_id",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    )


async def _consent(
    session: AsyncSession, actor: Actor, values: dict[str, str]
) -> oauth.ConsentRequest:
    try:
        tenant_id = uuid.UUID(values.get("tenant_id", ""))
    except ValueError as exc:
        raise NotFound("No such app.", code="app_not_found") from exc
    return await oauth.check_authorization_request(
        session,
        actor,
        tenant_id=tenant_id,
        client_id=values.get("client_id", ""),
        redirect_uri=values.get("redirect_uri", ""),
        response_type=values.get("response_type", ""),
        scope=values.get("scope", ""),
        state=values.get("state", ""),
        code_challenge=values.get("code_challenge", ""),
        code_challenge_method=values.get("code_challenge_method", ""),
        nonce=values.get("nonce", ""),
    )


@router.get("/portal/apps/authorize", name="portal.apps.authorize")
async def consent_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    """What the partner's H5 page asks to know; nothing is shared until the resident allows."""
    values = {k: request.query_params.get(k, "")[:500] for k in _AuthorizeQuery.FIELDS}
    consent = await _consent(session, actor, values)
    context = await _portal_context(request, session, actor)
    return render(
        request,
        "platform/consent.html",
        context
        | {
            "consent": consent,
            "fields": values,
            "scope_labels": SCOPE_LABELS,
        },
    )


@router.post("/portal/apps/authorize", dependencies=[PortalCsrf])
async def consent_given(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    decision: Annotated[str, Form(max_length=10)] = "deny",
) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, ""))[:500] for k in _AuthorizeQuery.FIELDS}
    consent = await _consent(session, actor, values)
    if decision != "allow":
        return redirect(request, oauth.denied_redirect(consent))
    return redirect(request, await oauth.approve(session, actor, consent))


# The developer portal lives in its own module; its routes are served with these pages.
from linli.platform import dev_pages, operator_pages  # noqa: E402

router.include_router(dev_pages.router)
router.include_router(operator_pages.router)

"""Console and portal pages of the access domain: devices, events, visitors; my doors, my QR
code, my visitors; and the visitor's public pass page.

Thin like every page module: ``linli.access.service`` does the work and the scoping.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from linli.access import service
from linli.access.models import EventKind, PassKind
from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, NotFound
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.web import nav
from linli.web.forms import optional_uuid
from linli.web.nav import N_
from linli.web.pages import (
    Anyone,
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

Reader = Annotated[Actor, staff(Permission.ACCESS_READ)]
DeviceManager = Annotated[Actor, staff(Permission.ACCESS_DEVICES_MANAGE)]
VisitorDesk = Annotated[Actor, staff(Permission.ACCESS_VISITORS)]
FormText = Annotated[str, Form(max_length=200)]
FormId = Annotated[str, Form(max_length=64)]

EVENT_PAGE = 50
KIND_LABELS = {
    "community_gate": N_("Community gate"),
    "building_entrance": N_("Building entrance"),
    "parking_entrance": N_("Car park entrance"),
    "door_controller": N_("Door controller"),
    "turnstile": N_("Turnstile"),
    "vehicle_barrier": N_("Vehicle barrier"),
    "intercom": N_("Intercom"),
    "resident": N_("Resident"),
    "visitor": N_("Visitor"),
    "courier": N_("Courier"),
    "open": N_("Passed"),
    "denied": N_("Denied"),
    "alarm_held_open": N_("Door held open"),
    "alarm_forced": N_("Door forced"),
    "plate": N_("Plate read"),
    "rejected_message": N_("Refused message"),
}
OPEN_RESULTS = {
    "done": N_("The door is open."),
    "timeout": N_("The door did not answer in time. It may be offline."),
}

nav.register(
    nav.NavItem(
        "access", N_("Access control"), "/console/access", Permission.ACCESS_READ, "lock", 50
    )
)
nav.register_tile(nav.PortalTile("doors", N_("Open doors"), "key", "/portal/doors", 20))
nav.register_tile(nav.PortalTile("visitors", N_("Visitors"), "visitor", "/portal/visitors", 30))


def qr_svg(text: str) -> Markup:
    """The QR code as inline SVG (rendered here, no script needed)."""
    code = segno.make(text, error="m")
    return Markup(code.svg_inline(scale=4, border=2, dark="#111", light="#fff"))  # noqa: S704 - segno's own SVG


# --- console -----------------------------------------------------------------------------------


def _bar_chart(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Online / offline / disabled as bars of an inline SVG chart."""
    largest = max(counts.values()) if counts and max(counts.values()) else 1
    labels = {"online": N_("Online"), "offline": N_("Offline"), "disabled": N_("Disabled")}
    return [
        {"key": key, "label": labels[key], "value": value, "width": round(300 * value / largest)}
        for key, value in counts.items()
    ]


@router.get("/console/access", name="console.access")
async def devices_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    online: Annotated[str, Query(max_length=8)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    devices: list[Any] = []
    next_cursor = None
    points: dict[uuid.UUID, str] = {}
    if community is not None:
        devices, next_cursor = await service.list_devices(
            session,
            actor,
            community_id=community.id,
            online={"yes": True, "no": False}.get(online),
            page=PageParams(cursor=cursor, limit=100),
        )
        rows, _ = await service.list_access_points(
            session, actor, community_id=community.id, page=PageParams(limit=200)
        )
        points = {p.id: p.name for p in rows}
    counts = await service.device_counts(session, actor)
    return render(
        request,
        "access/devices.html",
        shell
        | {
            "devices": devices,
            "points": points,
            "next_cursor": next_cursor,
            "online_filter": online,
            "bars": _bar_chart(counts),
            "labels": KIND_LABELS,
            "may_manage": actor.can(Permission.ACCESS_DEVICES_MANAGE),
        },
    )


async def _set_enabled(
    request: Request, session: AsyncSession, actor: Actor, device_id: str, enabled: bool
) -> Response:
    wanted = optional_uuid(device_id)
    if wanted is None:
        raise NotFound("Device not found.", code="device_not_found")
    await service.set_device_enabled(session, actor, device_id=wanted, enabled=enabled)
    return redirect(request, "/console/access")


@router.post("/console/access/devices/{device_id}/disable", dependencies=[ConsoleCsrf])
async def disable_device(
    request: Request, actor: DeviceManager, session: StaffDb, device_id: str
) -> Response:
    return await _set_enabled(request, session, actor, device_id, False)


@router.post("/console/access/devices/{device_id}/enable", dependencies=[ConsoleCsrf])
async def enable_device(
    request: Request, actor: DeviceManager, session: StaffDb, device_id: str
) -> Response:
    return await _set_enabled(request, session, actor, device_id, True)


def _day(raw: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC) if raw else None
    except ValueError:
        return None


@router.get("/console/access/events", name="console.access.events")
async def events_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    door: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=24)] = "",
    person: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=20)] = "",
    until: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    events: list[Any] = []
    next_cursor = None
    points: dict[uuid.UUID, str] = {}
    if community is not None:
        rows, _ = await service.list_access_points(
            session, actor, community_id=community.id, page=PageParams(limit=200)
        )
        points = {p.id: p.name for p in rows}
        until_day = _day(until)
        filters = service.EventFilter(
            community_id=community.id,
            access_point_id=optional_uuid(door),
            person=person or None,
            kind=kind if kind in KIND_LABELS else None,
            since=_day(since),
            until=until_day + dt.timedelta(days=1) if until_day else None,
        )
        events, next_cursor = await service.search_events(
            session, actor, filters=filters, page=PageParams(cursor=cursor, limit=EVENT_PAGE)
        )
    return render(
        request,
        "access/events.html",
        shell
        | {
            "events": events,
            "points": points,
            "next_cursor": next_cursor,
            "labels": KIND_LABELS,
            "kinds": [k.value for k in EventKind],
            "query": {
                "door": door,
                "kind": kind,
                "person": person,
                "since": since,
                "until": until,
            },
        },
    )


async def _visitors_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    issued: str | None = None,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    passes: list[Any] = []
    if community is not None:
        passes, _ = await service.list_passes(
            session,
            actor,
            community_id=community.id,
            kind=None,
            current_only=True,
            page=PageParams(limit=100),
        )
        passes = [p for p in passes if p.kind is not PassKind.RESIDENT]
    return render(
        request,
        "access/visitors.html",
        shell
        | {
            "passes": passes,
            "labels": KIND_LABELS,
            "issued": issued,
            "error": error,
            "may_register": actor.can(Permission.ACCESS_VISITORS),
        },
        status_code=status_code,
    )


@router.get("/console/access/visitors", name="console.access.visitors")
async def visitors_page(request: Request, actor: Reader, session: StaffDb) -> Response:
    return await _visitors_page(request, session, actor)


@router.post("/console/access/visitors", dependencies=[ConsoleCsrf])
async def register_walk_in(
    request: Request,
    actor: VisitorDesk,
    session: StaffDb,
    community_id: FormId = "",
    name: FormText = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    hours: Annotated[int, Form(ge=1, le=24)] = 4,
    entries: Annotated[int, Form(ge=1, le=20)] = 1,
) -> Response:
    community = optional_uuid(community_id)
    if community is None:
        raise NotFound("Community not found.", code="community_not_found")
    try:
        _, link = await service.register_walk_in(
            session,
            actor,
            community_id=community,
            name=name,
            phone=phone or None,
            hours=hours,
            entries=entries,
        )
    except DomainError as exc:
        return await _visitors_page(
            request, session, actor, error=describe(exc), status_code=exc.status
        )
    return await _visitors_page(request, session, actor, issued=f"/pass/{link}")


@router.post("/console/access/passes/{pass_id}/revoke", dependencies=[ConsoleCsrf])
async def revoke_pass(
    request: Request, actor: VisitorDesk, session: StaffDb, pass_id: str
) -> Response:
    wanted = optional_uuid(pass_id)
    if wanted is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    await service.revoke_pass(session, actor, pass_id=wanted)
    return redirect(request, "/console/access/visitors")


# --- portal ------------------------------------------------------------------------------------


async def _doors_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    result: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    communities = await service.my_communities(session, actor)
    history = {
        c.pass_id: await service.my_history(
            session, actor, company_id=c.company_id, pass_id=c.pass_id, limit=10
        )
        for c in communities
    }
    await set_tenant(session, None)
    names = {d.access_point_id: d.name for c in communities for d in c.doors}
    return render(
        request,
        "access/doors.html",
        context
        | {
            "communities": communities,
            "history": history,
            "door_names": names,
            "labels": KIND_LABELS,
            "result": result,
        },
        status_code=status_code,
    )


@router.get("/portal/doors", name="portal.doors")
async def doors_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _doors_page(request, session, actor)


@router.post("/portal/doors/open", dependencies=[PortalCsrf])
async def open_door(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    company_id: FormId = "",
    pass_id: FormId = "",
    access_point_id: FormId = "",
) -> Response:
    company, mine, point = (
        optional_uuid(company_id),
        optional_uuid(pass_id),
        optional_uuid(access_point_id),
    )
    if company is None or mine is None or point is None:
        raise NotFound("Door not found.", code="access_point_not_found")
    try:
        opened = await service.remote_open(
            actor, company_id=company, pass_id=mine, access_point_id=point
        )
    except DomainError as exc:
        # The refusal is on record (keep_changes); the page says what happened.
        return await _doors_page(
            request,
            session,
            actor,
            result={"ok": False, "message": exc.detail(), "door": str(point)},
            status_code=exc.status,
        )
    return await _doors_page(
        request,
        session,
        actor,
        result={
            "ok": True,
            "message": OPEN_RESULTS["done"],
            "door": str(point),
            "millis": round(opened.millis),
        },
    )


@router.get("/portal/doors/qr", name="portal.qr")
async def qr_page(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    company_id: Annotated[str, Query(max_length=64)] = "",
    pass_id: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    company, mine = optional_uuid(company_id), optional_uuid(pass_id)
    if company is None or mine is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    token, expires = await service.rotating_qr(session, actor, company_id=company, pass_id=mine)
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    return render(
        request,
        "access/qr.html",
        context
        | {
            "qr": qr_svg(token),
            "token": token,
            "expires_at": expires,
            "refresh_seconds": max(5, service.QR_SECONDS - 10),
        },
    )


async def _my_visitors_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    issued: str | None = None,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    communities = await service.my_communities(session, actor)
    visitors: list[tuple[Any, list[Any]]] = []
    for community in communities:
        rows = await service.my_visitor_passes(
            session, actor, company_id=community.company_id, pass_id=community.pass_id
        )
        visitors.append((community, rows))
    await set_tenant(session, None)
    return render(
        request,
        "access/my_visitors.html",
        context
        | {
            "visitors": visitors,
            "issued": issued,
            "error": error,
            "now": dt.datetime.now(dt.UTC),
        },
        status_code=status_code,
    )


@router.get("/portal/visitors", name="portal.visitors")
async def my_visitors_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _my_visitors_page(request, session, actor)


@router.post("/portal/visitors", dependencies=[PortalCsrf])
async def invite_visitor(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    company_id: FormId = "",
    pass_id: FormId = "",
    name: FormText = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    hours: Annotated[int, Form(ge=1, le=168)] = 4,
    entries: Annotated[int, Form(ge=1, le=20)] = 1,
) -> Response:
    company, mine = optional_uuid(company_id), optional_uuid(pass_id)
    if company is None or mine is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    now = dt.datetime.now(dt.UTC)
    try:
        _, link = await service.invite_visitor(
            session,
            actor,
            company_id=company,
            pass_id=mine,
            name=name,
            phone=phone or None,
            valid_from=now - dt.timedelta(minutes=1),
            valid_until=now + dt.timedelta(hours=hours),
            entries=entries,
        )
    except DomainError as exc:
        return await _my_visitors_page(
            request, session, actor, error=describe(exc), status_code=exc.status
        )
    return await _my_visitors_page(request, session, actor, issued=f"/pass/{link}")


@router.post("/portal/visitors/{visitor_pass_id}/revoke", dependencies=[PortalCsrf])
async def revoke_my_visitor(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    visitor_pass_id: str,
    company_id: FormId = "",
    pass_id: FormId = "",
) -> Response:
    company, mine, visitor = (
        optional_uuid(company_id),
        optional_uuid(pass_id),
        optional_uuid(visitor_pass_id),
    )
    if company is None or mine is None or visitor is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    await service.revoke_my_visitor(
        session, actor, company_id=company, pass_id=mine, visitor_pass_id=visitor
    )
    return redirect(request, "/portal/visitors")


# --- the visitor's pass (public) ---------------------------------------------------------------


@router.get("/pass/{link}", name="pass.public")
async def public_pass_page(request: Request, _: Anyone, session: PlatformDb, link: str) -> Response:
    shown = await service.public_pass(session, link=link[:100])
    return render(
        request,
        "access/pass.html",
        {
            "shown": shown,
            "qr": qr_svg(shown.token) if shown.token else None,
            "labels": KIND_LABELS,
        },
    )

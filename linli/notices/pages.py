"""Console and portal pages of the notices domain: drafting, approval, receipts; reading.

Thin: the notices service does the work and the scoping; these routes turn forms
into service calls. Times typed in the console are read in the community's time
zone (Asia/Shanghai unless the community says otherwise).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.notices import service
from linli.notices.models import Announcement, Audience, NoticeStatus
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
from linli.web.session import ConsoleCsrf, describe
from linli.web.templating import DEFAULT_TZ, redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

Writer = Annotated[Actor, staff(Permission.NOTICES_WRITE)]
Approver = Annotated[Actor, staff(Permission.NOTICES_APPROVE)]
FormText = Annotated[str, Form(max_length=200)]

STATUS_LABELS = {
    NoticeStatus.DRAFT: N_("Draft"),
    NoticeStatus.PENDING: N_("Waiting for approval"),
    NoticeStatus.SCHEDULED: N_("Scheduled"),
    NoticeStatus.PUBLISHED: N_("Published"),
    NoticeStatus.REJECTED: N_("Returned"),
    NoticeStatus.WITHDRAWN: N_("Withdrawn"),
}
AUDIENCE_LABELS = {
    Audience.COMMUNITY: N_("Whole community"),
    Audience.BUILDINGS: N_("Some buildings"),
    Audience.HOUSES: N_("Some houses"),
}
CHANNEL_LABELS = {"sms": N_("Text message"), "wechat": N_("WeChat")}

nav.register(
    nav.NavItem(
        "notices", N_("Announcements"), "/console/notices", Permission.NOTICES_WRITE, "list", 45
    )
)
nav.register_tile(nav.PortalTile("notices", N_("Announcements"), "list", "/portal/notices", 3))


def _labels() -> dict[str, Any]:
    return {
        "status_labels": {k.value: v for k, v in STATUS_LABELS.items()},
        "audience_labels": {k.value: v for k, v in AUDIENCE_LABELS.items()},
        "channel_labels": CHANNEL_LABELS,
    }


def _local_time(raw: str, field: str, tz: str) -> dt.datetime | None:
    """A ``datetime-local`` form value in the community's zone, as an aware time."""
    if not raw.strip():
        return None
    try:
        naive = dt.datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValidationFailed(
            errors=[FieldError(field, "Not a date and time.", "invalid_datetime")]
        ) from exc
    return naive.replace(tzinfo=ZoneInfo(tz)) if naive.tzinfo is None else naive


def _tz(community: Any) -> str:
    return getattr(community, "timezone", None) or DEFAULT_TZ


def _announcement_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Announcement not found.", code="announcement_not_found")


async def _house_ids(
    session: AsyncSession, actor: Actor, community_id: uuid.UUID, raw: str
) -> list[uuid.UUID]:
    """Houses typed as 3-2-1201 (one per line or comma-separated) → ids, or field errors."""
    found: list[uuid.UUID] = []
    for text in [p.strip() for p in re.split(r"[\n,，、;；]+", raw)]:
        if not text:
            continue
        ref = estate.parse_house_ref(text)
        ids = (
            await estate.find_house_ids_by_ref(session, actor, ref=ref, community_id=community_id)
            if ref is not None
            else []
        )
        if len(ids) != 1:
            raise ValidationFailed(
                "Some houses were not found in this community.",
                code="unknown_house",
                errors=[FieldError("houses", "Write houses as 3-2-1201.", "unknown_house")],
            )
        found.append(ids[0])
    return found


# --- console ----------------------------------------------------------------------------------


async def _list_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    status: str = "",
    error: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    rows: list[Announcement] = []
    buildings: list[estate.BuildingNode] = []
    wanted = NoticeStatus(status) if status in {s.value for s in NoticeStatus} else None
    if community is not None:
        rows, _ = await service.list_announcements(
            session, actor, status=wanted, community_id=community.id, page=PageParams(limit=100)
        )
        buildings = await estate.community_tree(session, actor, community_id=community.id)
    return render(
        request,
        "notices/list.html",
        shell
        | _labels()
        | {
            "rows": rows,
            "buildings": buildings,
            "status": wanted.value if wanted else "",
            "statuses": list(NoticeStatus),
            "error": error,
            "form": form or {},
            "may_write": actor.can(Permission.NOTICES_WRITE),
        },
        status_code=status_code,
    )


@router.get("/console/notices", name="console.notices")
async def notices_page(
    request: Request,
    actor: Writer,
    session: StaffDb,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _list_page(request, session, actor, status=status)


@router.post("/console/notices", dependencies=[ConsoleCsrf])
async def create_notice(
    request: Request,
    actor: Writer,
    session: StaffDb,
    title: FormText = "",
    body: Annotated[str, Form(max_length=20_000)] = "",
    audience: Annotated[str, Form(max_length=20)] = Audience.COMMUNITY.value,
    building_ids: Annotated[list[str] | None, Form(max_length=80)] = None,
    houses: Annotated[str, Form(max_length=4000)] = "",
    pinned: Annotated[str, Form(max_length=5)] = "",
    channels: Annotated[list[str] | None, Form(max_length=10)] = None,
    publish_at: Annotated[str, Form(max_length=30)] = "",
    expires_at: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    form = {
        "title": title,
        "body": body,
        "audience": audience,
        "houses": houses,
        "publish_at": publish_at,
        "expires_at": expires_at,
        "pinned": bool(pinned),
    }
    try:
        if community is None:
            raise NotFound("Community not found.", code="community_not_found")
        tz = _tz(community)
        chosen = (
            Audience(audience) if audience in {a.value for a in Audience} else Audience.COMMUNITY
        )
        announcement = await service.create_draft(
            session,
            actor,
            community_id=community.id,
            title=title,
            body=body,
            audience=chosen,
            building_ids=[uuid.UUID(b) for b in building_ids or [] if _is_uuid(b)]
            if chosen is Audience.BUILDINGS
            else [],
            house_ids=await _house_ids(session, actor, community.id, houses)
            if chosen is Audience.HOUSES
            else [],
            pinned=bool(pinned),
            channels=channels or [],
            publish_at=_local_time(publish_at, "publish_at", tz),
            expires_at=_local_time(expires_at, "expires_at", tz),
        )
    except DomainError as exc:
        return await _list_page(
            request, session, actor, error=describe(exc), form=form, status_code=exc.status
        )
    return redirect(request, f"/console/notices/{announcement.id}")


def _is_uuid(raw: str) -> bool:
    try:
        uuid.UUID(raw)
    except ValueError:
        return False
    return True


@router.get("/console/notices/{announcement_id}", name="console.notice")
async def notice_page(
    request: Request,
    actor: Writer,
    session: StaffDb,
    announcement_id: str,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return await _detail(request, session, actor, _announcement_id(announcement_id), cursor)


async def _detail(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    announcement_id: uuid.UUID,
    cursor: str | None = None,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    announcement = await service.get_announcement(session, actor, announcement_id=announcement_id)
    receipts = None
    if announcement.status in (NoticeStatus.PUBLISHED, NoticeStatus.WITHDRAWN):
        receipts = await service.receipts(
            session,
            actor,
            announcement_id=announcement.id,
            page=PageParams(cursor=cursor, limit=50),
        )
    targets = await service.targets_of(session, announcement)
    return render(
        request,
        "notices/detail.html",
        shell
        | _labels()
        | {
            "a": announcement,
            "targets": targets,
            "receipts": receipts,
            "may_approve": actor.can(Permission.NOTICES_APPROVE),
            "own": announcement.created_by == actor.id,
            "error": error,
            "tz": DEFAULT_TZ,
        },
        status_code=status_code,
    )


async def _act(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    raw_id: str,
    action: Any,
) -> Response:
    announcement_id = _announcement_id(raw_id)
    try:
        await action(announcement_id)
    except DomainError as exc:
        return await _detail(
            request, session, actor, announcement_id, error=describe(exc), status_code=exc.status
        )
    return redirect(request, f"/console/notices/{announcement_id}")


@router.post("/console/notices/{announcement_id}/submit", dependencies=[ConsoleCsrf])
async def submit_notice(
    request: Request, actor: Writer, session: StaffDb, announcement_id: str
) -> Response:
    async def run(aid: uuid.UUID) -> None:
        await service.submit(session, actor, announcement_id=aid)

    return await _act(request, session, actor, announcement_id, run)


@router.post("/console/notices/{announcement_id}/approve", dependencies=[ConsoleCsrf])
async def approve_notice(
    request: Request,
    actor: Approver,
    session: StaffDb,
    announcement_id: str,
    publish_at: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    async def run(aid: uuid.UUID) -> None:
        await service.approve(
            session,
            actor,
            announcement_id=aid,
            publish_at=_local_time(publish_at, "publish_at", DEFAULT_TZ),
        )

    return await _act(request, session, actor, announcement_id, run)


@router.post("/console/notices/{announcement_id}/reject", dependencies=[ConsoleCsrf])
async def reject_notice(
    request: Request,
    actor: Approver,
    session: StaffDb,
    announcement_id: str,
    note: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    async def run(aid: uuid.UUID) -> None:
        await service.reject(session, actor, announcement_id=aid, note=note)

    return await _act(request, session, actor, announcement_id, run)


@router.post("/console/notices/{announcement_id}/publish", dependencies=[ConsoleCsrf])
async def publish_notice(
    request: Request, actor: Approver, session: StaffDb, announcement_id: str
) -> Response:
    async def run(aid: uuid.UUID) -> None:
        await service.publish_now(session, actor, announcement_id=aid)

    return await _act(request, session, actor, announcement_id, run)


@router.post("/console/notices/{announcement_id}/withdraw", dependencies=[ConsoleCsrf])
async def withdraw_notice(
    request: Request, actor: Approver, session: StaffDb, announcement_id: str
) -> Response:
    async def run(aid: uuid.UUID) -> None:
        await service.withdraw(session, actor, announcement_id=aid)

    return await _act(request, session, actor, announcement_id, run)


# --- portal -----------------------------------------------------------------------------------


@router.get("/portal/notices", name="portal.notices")
async def my_notices_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    context = await _portal_context(request, session, actor)
    notices = await service.my_announcements(session, actor)
    return render(request, "notices/portal_list.html", context | {"notices": notices})


@router.get("/portal/notices/{announcement_id}", name="portal.notice")
async def my_notice_page(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    announcement_id: str,
    company: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    try:
        company_id = uuid.UUID(company)
    except ValueError as exc:
        raise NotFound("Announcement not found.", code="announcement_not_found") from exc
    notice = await service.open_announcement(
        session, actor, company_id=company_id, announcement_id=_announcement_id(announcement_id)
    )
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    return render(request, "notices/portal_detail.html", context | {"notice": notice})

"""Announcements (公告): drafts, manager approval, publishing, expiry, pinning, read receipts.

The path of an announcement::

    draft ──submit──▶ pending ──approve──▶ published            (publish_at empty or past)
      ▲                  │          └────▶ scheduled ──(job at publish_at)──▶ published
      └──── rejected ◀───┘ reject                       published/scheduled ──withdraw──▶ withdrawn

Rules decided here (and tested):

- **Four eyes.** Whoever wrote a draft may not approve it, even holding
  ``notices.approve``: an announcement speaks for the company to every resident,
  so a second person reads it first (``approve_own_draft``, 403). A company with a
  single manager lets its company admin approve.
- **Publishing is idempotent.** Approving (or publishing) an announcement that is
  already published answers it unchanged; the fan-out is keyed by the
  announcement, so even a repeated job adds no message.
- **Audience within one community, of this company.** Buildings and houses must
  belong to the announcement's community and be visible to the author; an id of
  another company or community is refused by field (``unknown_building``,
  ``unknown_house``) without saying whether it exists elsewhere.
- Publishing fans out set-based: one ``INSERT … SELECT DISTINCT`` writes one
  inbox message per resident living in the audience (once, however many houses
  they hold there), then deliveries for the announcement's extra channels.
  Residents who move in later still see the announcement in the portal list
  (the audience is evaluated live there); the receipt counts are over the
  residents it was sent to.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, and_, delete, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.core import audit, outbox
from linli.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.db.engine import set_tenant, unit_of_work
from linli.estate import service as estate
from linli.estate.models import Building, House, Unit
from linli.notices.models import (
    Announcement,
    AnnouncementRead,
    AnnouncementTarget,
    Audience,
    NoticeStatus,
)
from linli.notifications import service as notifications
from linli.notifications.models import OUTSIDE_CHANNELS, Notification
from linli.residents.models import Resident, ResidentHouse

TEMPLATE = "announcement.published"
PUBLISH_TASK = "linli.notices.tasks.publish_scheduled"
QUEUE = "notices"
# Not the template key "announcement.published": the notifications consumer must not
# mistake this event (which names no recipients) for a message to send.
EVENT_PUBLISHED = "notice.published"
EDITABLE = (NoticeStatus.DRAFT, NoticeStatus.REJECTED)


def dedupe_key(announcement_id: uuid.UUID) -> str:
    return f"announcement:{announcement_id}"


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def readable_announcements(actor: Actor) -> Select[Announcement]:
    return select(Announcement).where(estate.community_scope(actor, Announcement.community_id))


async def get_announcement(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID, lock: bool = False
) -> Announcement:
    statement = readable_announcements(actor).where(Announcement.id == announcement_id)
    if lock:
        statement = statement.with_for_update()
    row = await session.scalar(statement)
    if row is None:
        raise NotFound("Announcement not found.", code="announcement_not_found")
    return row


async def list_announcements(
    session: AsyncSession,
    actor: Actor,
    *,
    status: NoticeStatus | None = None,
    community_id: uuid.UUID | None = None,
    page: PageParams,
) -> tuple[list[Announcement], str | None]:
    statement = readable_announcements(actor)
    if status is not None:
        statement = statement.where(Announcement.status == status.value)
    if community_id is not None:
        statement = statement.where(Announcement.community_id == community_id)
    after = page.after_id()
    if after is not None:
        statement = statement.where(Announcement.id < after)
    rows = (
        await session.scalars(statement.order_by(Announcement.id.desc()).limit(page.limit + 1))
    ).all()
    return make_page(list(rows), page)


@dataclass(frozen=True)
class Targets:
    building_ids: list[uuid.UUID]
    house_ids: list[uuid.UUID]


async def targets_of(session: AsyncSession, announcement: Announcement) -> Targets:
    rows = (
        await session.execute(
            select(AnnouncementTarget.building_id, AnnouncementTarget.house_id).where(
                AnnouncementTarget.announcement_id == announcement.id
            )
        )
    ).all()
    return Targets([b for b, _ in rows if b is not None], [h for _, h in rows if h is not None])


# --- writing drafts ------------------------------------------------------------------------


def _check_fields(
    *,
    title: str,
    body: str,
    channels: Sequence[str],
    publish_at: dt.datetime | None,
    expires_at: dt.datetime | None,
) -> list[str]:
    errors: list[FieldError] = []
    if not title.strip():
        errors.append(FieldError("title", "Required.", "required"))
    if not body.strip():
        errors.append(FieldError("body", "Required.", "required"))
    allowed = {c.value for c in OUTSIDE_CHANNELS}
    bad = [c for c in channels if c not in allowed]
    if bad:
        errors.append(
            FieldError("channels", "Only sms and wechat can be added.", "unknown_channel")
        )
    for name, value in (("publish_at", publish_at), ("expires_at", expires_at)):
        if value is not None and value.tzinfo is None:
            errors.append(FieldError(name, "Give a time zone.", "naive_datetime"))
    if not errors and expires_at is not None:
        start = publish_at or _now()
        if expires_at <= start:
            errors.append(
                FieldError("expires_at", "Must be after the publishing time.", "expires_too_early")
            )
    if errors:
        raise ValidationFailed(errors=errors)
    return sorted(set(channels))


async def _check_audience(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    audience: Audience,
    building_ids: Sequence[uuid.UUID],
    house_ids: Sequence[uuid.UUID],
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The audience's ids, each checked to be in the community and visible to the actor."""
    buildings = list(dict.fromkeys(building_ids))
    houses = list(dict.fromkeys(house_ids))
    errors: list[FieldError] = []
    if audience is Audience.COMMUNITY and (buildings or houses):
        errors.append(
            FieldError("audience", "A community-wide notice names no buildings or houses.", "extra")
        )
    if audience is Audience.BUILDINGS:
        if not buildings or houses:
            errors.append(FieldError("building_ids", "Choose at least one building.", "required"))
        known = set(
            (
                await session.scalars(
                    estate.readable_buildings(actor)
                    .with_only_columns(Building.id)
                    .where(Building.id.in_(buildings), Building.community_id == community_id)
                )
            ).all()
        )
        errors += [
            FieldError(f"building_ids[{i}]", "Unknown building.", "unknown_building")
            for i, b in enumerate(buildings)
            if b not in known
        ][:50]
    if audience is Audience.HOUSES:
        if not houses or buildings:
            errors.append(FieldError("house_ids", "Choose at least one house.", "required"))
        known = set(
            (
                await session.scalars(
                    estate.readable_houses(actor)
                    .with_only_columns(House.id)
                    .where(House.id.in_(houses), House.community_id == community_id)
                )
            ).all()
        )
        errors += [
            FieldError(f"house_ids[{i}]", "Unknown house.", "unknown_house")
            for i, h in enumerate(houses)
            if h not in known
        ][:50]
    if errors:
        raise ValidationFailed(errors=errors)
    return buildings, houses


async def _write_targets(
    session: AsyncSession,
    announcement: Announcement,
    buildings: Sequence[uuid.UUID],
    houses: Sequence[uuid.UUID],
) -> None:
    await session.execute(
        delete(AnnouncementTarget).where(
            AnnouncementTarget.tenant_id == announcement.tenant_id,
            AnnouncementTarget.announcement_id == announcement.id,
        )
    )
    rows = [{"building_id": b, "house_id": None} for b in buildings] + [
        {"building_id": None, "house_id": h} for h in houses
    ]
    if rows:
        from linli.core.ids import new_id

        await session.execute(
            pg_insert(AnnouncementTarget),
            [
                {
                    "tenant_id": announcement.tenant_id,
                    "id": new_id(),
                    "announcement_id": announcement.id,
                    **row,
                }
                for row in rows
            ],
        )


async def create_draft(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    title: str,
    body: str,
    audience: Audience = Audience.COMMUNITY,
    building_ids: Sequence[uuid.UUID] = (),
    house_ids: Sequence[uuid.UUID] = (),
    pinned: bool = False,
    channels: Sequence[str] = (),
    publish_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> Announcement:
    await estate.get_community(session, actor, community_id=community_id)
    chosen = _check_fields(
        title=title, body=body, channels=channels, publish_at=publish_at, expires_at=expires_at
    )
    buildings, houses = await _check_audience(
        session,
        actor,
        community_id=community_id,
        audience=audience,
        building_ids=building_ids,
        house_ids=house_ids,
    )
    announcement = Announcement(
        tenant_id=_tenant(actor),
        community_id=community_id,
        title=title.strip(),
        body=body.strip(),
        audience=audience.value,
        pinned=pinned,
        channels=chosen,
        publish_at=publish_at,
        expires_at=expires_at,
        created_by=actor.id,
        status=NoticeStatus.DRAFT.value,
    )
    session.add(announcement)
    await session.flush()
    await _write_targets(session, announcement, buildings, houses)
    await audit.record(
        session, actor, "announcement.create", target_type="announcement", target_id=announcement.id
    )
    return announcement


DRAFT_FIELDS = ("title", "body", "pinned", "channels", "publish_at", "expires_at")


async def update_draft(
    session: AsyncSession,
    actor: Actor,
    *,
    announcement_id: uuid.UUID,
    changes: dict[str, Any],
) -> Announcement:
    """Edit a draft (or a rejected one). Audience changes send ``audience`` with its ids."""
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status not in EDITABLE:
        raise Conflict(
            "Only drafts and rejected announcements can be edited.", code="announcement_locked"
        )
    # null clears the optional times; for any other field it means "unchanged".
    changes = {
        k: v for k, v in changes.items() if v is not None or k in ("publish_at", "expires_at")
    }
    merged = {k: changes.get(k, getattr(announcement, k)) for k in DRAFT_FIELDS}
    merged["channels"] = _check_fields(
        title=merged["title"] or "",
        body=merged["body"] or "",
        channels=merged["channels"] or [],
        publish_at=merged["publish_at"],
        expires_at=merged["expires_at"],
    )
    changed = sorted(k for k in DRAFT_FIELDS if k in changes)
    if "audience" in changes:
        audience = Audience(changes["audience"])
        buildings, houses = await _check_audience(
            session,
            actor,
            community_id=announcement.community_id,
            audience=audience,
            building_ids=changes.get("building_ids") or [],
            house_ids=changes.get("house_ids") or [],
        )
        announcement.audience = audience.value
        await _write_targets(session, announcement, buildings, houses)
        changed.append("audience")
    for key in DRAFT_FIELDS:
        value = merged[key]
        setattr(announcement, key, value.strip() if isinstance(value, str) else value)
    await session.flush()
    await audit.record(
        session,
        actor,
        "announcement.update",
        target_type="announcement",
        target_id=announcement.id,
        detail={"fields": changed},
    )
    return announcement


async def submit(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID
) -> Announcement:
    """Hand a draft to the managers for approval (提交审批)."""
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status == NoticeStatus.PENDING:
        return announcement
    if announcement.status not in EDITABLE:
        raise Conflict("This announcement was already reviewed.", code="announcement_locked")
    announcement.status = NoticeStatus.PENDING.value
    announcement.submitted_at = _now()
    await session.flush()
    await audit.record(
        session, actor, "announcement.submit", target_type="announcement", target_id=announcement.id
    )
    return announcement


def _refuse_own(actor: Actor, announcement: Announcement) -> None:
    if actor.kind is PrincipalKind.STAFF and announcement.created_by == actor.id:
        raise PermissionDenied(
            "Another manager must approve an announcement you wrote.", code="approve_own_draft"
        )


async def approve(
    session: AsyncSession,
    actor: Actor,
    *,
    announcement_id: uuid.UUID,
    publish_at: dt.datetime | None = None,
) -> Announcement:
    """Approve and publish now, or schedule for ``publish_at`` (or the draft's own time).

    Approving what is already published or scheduled answers it unchanged.
    """
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status in (NoticeStatus.PUBLISHED, NoticeStatus.SCHEDULED):
        return announcement
    if announcement.status != NoticeStatus.PENDING:
        raise Conflict(
            "Only announcements waiting for approval can be approved.", code="not_pending"
        )
    _refuse_own(actor, announcement)
    when = publish_at or announcement.publish_at
    if when is not None and when.tzinfo is None:
        raise ValidationFailed(
            errors=[FieldError("publish_at", "Give a time zone.", "naive_datetime")]
        )
    if (
        when is not None
        and announcement.expires_at is not None
        and announcement.expires_at <= max(when, _now())
    ):
        raise ValidationFailed(
            errors=[
                FieldError("expires_at", "Must be after the publishing time.", "expires_too_early")
            ]
        )
    announcement.reviewed_by = actor.id
    announcement.reviewed_at = _now()
    await audit.record(
        session,
        actor,
        "announcement.approve",
        target_type="announcement",
        target_id=announcement.id,
    )
    if when is not None and when > _now():
        announcement.publish_at = when
        announcement.status = NoticeStatus.SCHEDULED.value
        await session.flush()
        await _defer_publish(session, announcement)
        return announcement
    return await _publish(session, actor, announcement)


async def publish_now(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID
) -> Announcement:
    """Publish a scheduled announcement at once (idempotent for a published one)."""
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status == NoticeStatus.PUBLISHED:
        return announcement
    if announcement.status == NoticeStatus.PENDING:
        return await approve(session, actor, announcement_id=announcement_id, publish_at=None)
    if announcement.status != NoticeStatus.SCHEDULED:
        raise Conflict("Approve the announcement first.", code="not_approved")
    return await _publish(session, actor, announcement)


async def reject(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID, note: str
) -> Announcement:
    if not note.strip():
        raise ValidationFailed(errors=[FieldError("note", "Say what to change.", "required")])
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status != NoticeStatus.PENDING:
        raise Conflict(
            "Only announcements waiting for approval can be rejected.", code="not_pending"
        )
    announcement.status = NoticeStatus.REJECTED.value
    announcement.review_note = note.strip()[:400]
    announcement.reviewed_by = actor.id
    announcement.reviewed_at = _now()
    await session.flush()
    await audit.record(
        session, actor, "announcement.reject", target_type="announcement", target_id=announcement.id
    )
    return announcement


async def withdraw(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID
) -> Announcement:
    """Take a published or scheduled announcement off the portal (messages already sent stay)."""
    announcement = await get_announcement(
        session, actor, announcement_id=announcement_id, lock=True
    )
    if announcement.status == NoticeStatus.WITHDRAWN:
        return announcement
    if announcement.status not in (NoticeStatus.PUBLISHED, NoticeStatus.SCHEDULED):
        raise Conflict(
            "Only published or scheduled announcements can be withdrawn.", code="not_published"
        )
    announcement.status = NoticeStatus.WITHDRAWN.value
    await session.flush()
    await audit.record(
        session,
        actor,
        "announcement.withdraw",
        target_type="announcement",
        target_id=announcement.id,
    )
    return announcement


# --- publishing: the set-based fan-out -------------------------------------------------------


def audience_residents(announcement: Announcement) -> Select[Any]:
    """Resident ids living now in the announcement's audience (duplicates removed later)."""
    statement = select(ResidentHouse.resident_id).where(
        ResidentHouse.tenant_id == announcement.tenant_id,
        ResidentHouse.community_id == announcement.community_id,
        ResidentHouse.moved_out_on.is_(None),
    )
    targets = select(AnnouncementTarget).where(
        AnnouncementTarget.tenant_id == announcement.tenant_id,
        AnnouncementTarget.announcement_id == announcement.id,
    )
    if announcement.audience == Audience.BUILDINGS:
        statement = statement.join(
            House,
            and_(House.tenant_id == ResidentHouse.tenant_id, House.id == ResidentHouse.house_id),
        ).where(
            House.building_id.in_(
                targets.with_only_columns(AnnouncementTarget.building_id).scalar_subquery()
            )
        )
    elif announcement.audience == Audience.HOUSES:
        statement = statement.where(
            ResidentHouse.house_id.in_(
                targets.with_only_columns(AnnouncementTarget.house_id).scalar_subquery()
            )
        )
    return statement


async def _publish(session: AsyncSession, actor: Actor, announcement: Announcement) -> Announcement:
    community = await estate.get_community(
        session, Actor.system(announcement.tenant_id), community_id=announcement.community_id
    )
    now = _now()
    result = await notifications.notify_selected(
        session,
        Actor.system(announcement.tenant_id),
        residents=audience_residents(announcement),
        template=TEMPLATE,
        params={
            "title": announcement.title,
            "community": community.name,
            "published": now.date().isoformat(),
        },
        channels=announcement.channels,
        community_id=announcement.community_id,
        link=f"/portal/notices/{announcement.id}?company={announcement.tenant_id}",
        dedupe_key=dedupe_key(announcement.id),
        source_type="announcement",
        source_id=announcement.id,
    )
    announcement.status = NoticeStatus.PUBLISHED.value
    announcement.published_at = now
    announcement.recipients += result.notifications
    await session.flush()
    await audit.record(
        session,
        actor,
        "announcement.publish",
        target_type="announcement",
        target_id=announcement.id,
        detail={"recipients": result.notifications, "queued": result.queued},
    )
    await outbox.emit(
        session,
        Actor.system(announcement.tenant_id),
        EVENT_PUBLISHED,
        {
            "announcement_id": str(announcement.id),
            "community_id": str(announcement.community_id),
            "recipients": announcement.recipients,
        },
    )
    return announcement


_DEFER_AT = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, :qlock,"
    " CAST(:args AS jsonb), :at)::procrastinate_job_to_defer_v1])"
)


async def _defer_publish(session: AsyncSession, announcement: Announcement) -> None:
    """A job that runs at ``publish_at``, committed with the approval."""
    await session.execute(
        _DEFER_AT,
        {
            "queue": QUEUE,
            "task": PUBLISH_TASK,
            "qlock": None,
            "args": json.dumps(
                {"tenant_id": str(announcement.tenant_id), "announcement_id": str(announcement.id)}
            ),
            "at": announcement.publish_at,
        },
    )


async def publish_due(tenant_id: uuid.UUID, announcement_id: uuid.UUID) -> str:
    """The scheduled job: publish if still scheduled and due (withdrawn ones stay unpublished)."""
    async with unit_of_work(tenant_id) as session:
        system = Actor.system(tenant_id)
        try:
            announcement = await get_announcement(
                session, system, announcement_id=announcement_id, lock=True
            )
        except NotFound:
            return "missing"
        if announcement.status != NoticeStatus.SCHEDULED:
            return announcement.status
        if announcement.publish_at is not None and announcement.publish_at > _now():
            await _defer_publish(session, announcement)  # moved later: come back then
            return "rescheduled"
        await _publish(session, system, announcement)
        return announcement.status


# --- read receipts (console) -----------------------------------------------------------------


@dataclass(frozen=True)
class UnreadResident:
    resident_id: uuid.UUID
    name: str
    houses: str


@dataclass(frozen=True)
class Receipts:
    recipients: int
    read: int
    unread: list[UnreadResident]
    next_cursor: str | None


async def receipts(
    session: AsyncSession, actor: Actor, *, announcement_id: uuid.UUID, page: PageParams
) -> Receipts:
    """How many of the residents it was sent to have read it, and a page of who has not."""
    announcement = await get_announcement(session, actor, announcement_id=announcement_id)
    key = dedupe_key(announcement.id)
    was_read = exists(
        select(AnnouncementRead.resident_id).where(
            AnnouncementRead.tenant_id == Notification.tenant_id,
            AnnouncementRead.announcement_id == announcement.id,
            AnnouncementRead.resident_id == Notification.resident_id,
        )
    )
    sent = select(Notification).where(Notification.dedupe_key == key)
    recipients = await session.scalar(sent.with_only_columns(func.count()))
    read = await session.scalar(sent.where(was_read).with_only_columns(func.count()))
    statement = (
        select(Resident.id, Resident.name)
        .join(
            Notification,
            and_(
                Notification.tenant_id == Resident.tenant_id,
                Notification.resident_id == Resident.id,
            ),
        )
        .where(Notification.dedupe_key == key, ~was_read)
    )
    paged = paginate_statement(cast(Select[Any], statement), Resident.id, page)
    rows = (await session.execute(paged)).all()
    rows, cursor = make_page(list(rows), page, id_of=lambda row: row[0])
    houses = await _house_labels(session, [r[0] for r in rows], announcement.community_id)
    return Receipts(
        recipients=int(recipients or 0),
        read=int(read or 0),
        unread=[UnreadResident(rid, name, houses.get(rid, "")) for rid, name in rows],
        next_cursor=cursor,
    )


async def _house_labels(
    session: AsyncSession, resident_ids: list[uuid.UUID], community_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    if not resident_ids:
        return {}
    rows = (
        await session.execute(
            select(ResidentHouse.resident_id, Building.building_no, Unit.unit_no, House.house_no)
            .join(
                House,
                and_(
                    House.tenant_id == ResidentHouse.tenant_id, House.id == ResidentHouse.house_id
                ),
            )
            .join(
                Building,
                and_(Building.tenant_id == House.tenant_id, Building.id == House.building_id),
            )
            .outerjoin(Unit, and_(Unit.tenant_id == House.tenant_id, Unit.id == House.unit_id))
            .where(
                ResidentHouse.resident_id.in_(resident_ids),
                ResidentHouse.community_id == community_id,
                ResidentHouse.moved_out_on.is_(None),
            )
            .order_by(Building.building_no, House.house_no)
        )
    ).all()
    labels: dict[uuid.UUID, list[str]] = {}
    for rid, building_no, unit_no, house_no in rows:
        labels.setdefault(rid, []).append(
            "-".join(p for p in (building_no, unit_no, house_no) if p)
        )
    return {rid: ", ".join(v) for rid, v in labels.items()}


# --- the resident portal ---------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeView:
    id: uuid.UUID
    company_id: uuid.UUID
    company_name: str
    title: str
    body: str
    pinned: bool
    published_at: dt.datetime | None
    expires_at: dt.datetime | None
    read: bool


def _visible_to(resident_ids: list[uuid.UUID]) -> Any:
    """Published, unexpired announcements whose audience includes one of these residents now."""
    now = _now()
    mine = select(ResidentHouse.house_id, ResidentHouse.community_id).where(
        ResidentHouse.resident_id.in_(resident_ids), ResidentHouse.moved_out_on.is_(None)
    )
    my_houses = mine.with_only_columns(ResidentHouse.house_id)
    my_communities = mine.with_only_columns(ResidentHouse.community_id)
    my_buildings = select(House.building_id).where(House.id.in_(my_houses))
    targeted = exists(
        select(AnnouncementTarget.id).where(
            AnnouncementTarget.tenant_id == Announcement.tenant_id,
            AnnouncementTarget.announcement_id == Announcement.id,
            or_(
                AnnouncementTarget.building_id.in_(my_buildings),
                AnnouncementTarget.house_id.in_(my_houses),
            ),
        )
    )
    return and_(
        Announcement.status == NoticeStatus.PUBLISHED.value,
        or_(Announcement.expires_at.is_(None), Announcement.expires_at > now),
        Announcement.community_id.in_(my_communities),
        or_(Announcement.audience == Audience.COMMUNITY.value, targeted),
    )


def _read_by(resident_ids: list[uuid.UUID]) -> Any:
    return exists(
        select(AnnouncementRead.resident_id).where(
            AnnouncementRead.tenant_id == Announcement.tenant_id,
            AnnouncementRead.announcement_id == Announcement.id,
            AnnouncementRead.resident_id.in_(resident_ids),
        )
    )


async def my_announcements(
    session: AsyncSession, actor: Actor, *, limit: int = 50
) -> list[NoticeView]:
    """The signed-in resident's announcements across companies: pinned first, newest next."""
    views: list[NoticeView] = []
    try:
        for m in await notifications.memberships(session, actor):
            await set_tenant(session, m.tenant_id)
            rows = (
                await session.execute(
                    select(Announcement, _read_by(m.resident_ids))
                    .where(_visible_to(m.resident_ids))
                    .order_by(Announcement.pinned.desc(), Announcement.published_at.desc())
                    .limit(limit)
                )
            ).all()
            views.extend(_view(a, m, read) for a, read in rows)
    finally:
        await set_tenant(session, None)
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    views.sort(key=lambda v: (not v.pinned, -(v.published_at or epoch).timestamp()))
    return views[:limit]


def _view(a: Announcement, m: notifications.Membership, read: bool) -> NoticeView:
    return NoticeView(
        id=a.id,
        company_id=m.tenant_id,
        company_name=m.tenant_name,
        title=a.title,
        body=a.body,
        pinned=a.pinned,
        published_at=a.published_at,
        expires_at=a.expires_at,
        read=bool(read),
    )


async def open_announcement(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, announcement_id: uuid.UUID
) -> NoticeView:
    """One announcement for the resident; opening it records the read receipt (once)."""
    membership = next(
        (m for m in await notifications.memberships(session, actor) if m.tenant_id == company_id),
        None,
    )
    if membership is None:
        raise NotFound("Announcement not found.", code="announcement_not_found")
    try:
        await set_tenant(session, company_id)
        announcement = await session.scalar(
            select(Announcement).where(
                Announcement.id == announcement_id, _visible_to(membership.resident_ids)
            )
        )
        if announcement is None:
            raise NotFound("Announcement not found.", code="announcement_not_found")
        await session.execute(
            pg_insert(AnnouncementRead)
            .values(
                [
                    {
                        "tenant_id": company_id,
                        "announcement_id": announcement.id,
                        "resident_id": rid,
                        "read_at": _now(),
                    }
                    for rid in membership.resident_ids
                ]
            )
            .on_conflict_do_nothing()
        )
        await notifications.mark_read_by_key(
            session, membership.resident_ids, dedupe_key=dedupe_key(announcement.id)
        )
        return _view(announcement, membership, True)
    finally:
        await set_tenant(session, None)

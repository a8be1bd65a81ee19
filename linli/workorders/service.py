"""Work-order rules (报修/投诉/咨询): SLA clocks, routing, technician work, ratings, reports.

Every query starts from :func:`readable_orders` (the actor's granted communities;
a technician without the desk's read permission sees only orders assigned to
them); RLS fences the company underneath. Each state change writes a timeline
event, an audit row and, where someone must hear of it, an outbox event with the
recipients' ids in the payload (the notifications service delivers them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth import service as auth_service
from linli.auth.actor import Actor, PrincipalKind
from linli.auth.permissions import Permission, Role
from linli.core import audit, crypto, outbox
from linli.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.residents import service as residents
from linli.workorders import events, fastpath
from linli.workorders.calendar import (
    CalendarError,
    WorkingCalendar,
    format_weekly,
    parse_weekly,
)
from linli.workorders.models import (
    OPEN_STATUSES,
    ChargeKind,
    HolidayKind,
    OrderKind,
    OrderSource,
    OrderStatus,
    Priority,
    TechnicianCoverage,
    WorkCalendar,
    WorkHoliday,
    WorkOrder,
    WorkOrderCategory,
    WorkOrderCharge,
    WorkOrderEvent,
    WorkOrderPhoto,
)

_NO_ID = uuid.UUID(int=0)
CENT = Decimal("0.01")

# SLA when a category names none for a priority: (response, completion) in working minutes.
DEFAULT_SLA: dict[Priority, tuple[int, int]] = {
    Priority.URGENT: (30, 240),
    Priority.HIGH: (60, 480),
    Priority.NORMAL: (120, 1440),
    Priority.LOW: (480, 2880),
}
# "About to breach": the escalation job warns once this share of the SLA has passed.
WARN_AT_SHARE = Decimal("0.8")
BAD_RATING_BELOW = 3  # 1-2 stars reopen the order

MAX_PHOTO_BYTES = 900 * 1024  # the request body limit is 1 MiB; phones resize before upload
MAX_PHOTOS_PER_ORDER = 12
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _system(actor: Actor) -> Actor:
    """linli itself reading in the actor's company (calendars, technicians, houses)."""
    return replace(Actor.system(_tenant(actor)), request_id=actor.request_id, ip=actor.ip)


@estate.house_usage_check("work_orders")
async def _house_has_work_orders(
    session: AsyncSession, tenant_id: uuid.UUID, house_id: uuid.UUID
) -> str | None:
    """A house with work orders keeps its history: archive it instead of deleting."""
    found = await session.scalar(
        select(WorkOrder.id)
        .where(WorkOrder.tenant_id == tenant_id, WorkOrder.house_id == house_id)
        .limit(1)
    )
    return "work_orders" if found is not None else None


def _not_found() -> NotFound:
    return NotFound("Work order not found.", code="work_order_not_found")


# --- categories and SLA --------------------------------------------------------------------


@dataclass(frozen=True)
class SlaTarget:
    response_minutes: int
    completion_minutes: int


def _sla_json(sla: dict[Priority, SlaTarget]) -> dict[str, Any]:
    for priority, target in sla.items():
        if not 0 < target.response_minutes <= target.completion_minutes:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        f"sla.{priority.value}",
                        "Response time must be positive and not longer than completion time.",
                        "invalid_sla",
                    )
                ]
            )
    return {
        p.value: {
            "response_minutes": t.response_minutes,
            "completion_minutes": t.completion_minutes,
        }
        for p, t in sla.items()
    }


def sla_of(category: WorkOrderCategory, priority: Priority) -> SlaTarget:
    return sla_from(category.sla, priority)


def sla_from(sla: dict[str, Any] | None, priority: Priority) -> SlaTarget:
    """The target of ``priority`` in a category's stored SLA, or the default."""
    raw = (sla or {}).get(priority.value)
    if raw:
        return SlaTarget(int(raw["response_minutes"]), int(raw["completion_minutes"]))
    response, completion = DEFAULT_SLA[priority]
    return SlaTarget(response, completion)


def readable_categories(actor: Actor) -> Select[WorkOrderCategory]:
    return select(WorkOrderCategory).where(
        estate.community_scope(actor, WorkOrderCategory.community_id)
    )


async def create_category(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    name: str,
    kind: OrderKind,
    default_priority: Priority = Priority.NORMAL,
    sla: dict[Priority, SlaTarget] | None = None,
) -> WorkOrderCategory:
    await estate.get_community(session, actor, community_id=community_id)
    category = WorkOrderCategory(
        tenant_id=_tenant(actor),
        community_id=community_id,
        name=name,
        kind=kind,
        default_priority=default_priority,
        sla=_sla_json(sla or {}),
    )
    session.add(category)
    await flush_or_conflict(
        session, Conflict("A category with this name exists.", code="category_exists")
    )
    await audit.record(
        session,
        actor,
        "workorder.category.create",
        target_type="work_order_category",
        target_id=category.id,
    )
    return category


async def get_category(
    session: AsyncSession, actor: Actor, *, category_id: uuid.UUID
) -> WorkOrderCategory:
    category = await session.scalar(
        readable_categories(actor).where(WorkOrderCategory.id == category_id)
    )
    if category is None:
        raise NotFound("Category not found.", code="category_not_found")
    return category


async def update_category(
    session: AsyncSession,
    actor: Actor,
    *,
    category_id: uuid.UUID,
    name: str | None = None,
    default_priority: Priority | None = None,
    sla: dict[Priority, SlaTarget] | None = None,
    archived: bool | None = None,
) -> WorkOrderCategory:
    category = await get_category(session, actor, category_id=category_id)
    changed: list[str] = []
    if name is not None and name != category.name:
        category.name, changed = name, [*changed, "name"]
    if default_priority is not None:
        category.default_priority, changed = default_priority, [*changed, "default_priority"]
    if sla is not None:
        category.sla, changed = _sla_json(sla), [*changed, "sla"]
    if archived is not None:
        category.archived_at = _now() if archived else None
        changed.append("archived")
    await flush_or_conflict(
        session, Conflict("A category with this name exists.", code="category_exists")
    )
    await audit.record(
        session,
        actor,
        "workorder.category.update",
        target_type="work_order_category",
        target_id=category.id,
        detail={"fields": changed},
    )
    return category


async def list_categories(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None = None,
    include_archived: bool = False,
) -> list[WorkOrderCategory]:
    statement = readable_categories(actor)
    if community_id is not None:
        statement = statement.where(WorkOrderCategory.community_id == community_id)
    if not include_archived:
        statement = statement.where(WorkOrderCategory.archived_at.is_(None))
    return list((await session.scalars(statement.order_by(WorkOrderCategory.name))).all())


# --- working calendar --------------------------------------------------------------------


@dataclass(frozen=True)
class HolidayEntry:
    day: dt.date
    kind: HolidayKind
    name: str = ""


@dataclass(frozen=True)
class CalendarView:
    community_id: uuid.UUID
    timezone: str
    weekly: dict[str, list[list[str]]]
    holidays: list[HolidayEntry]
    configured: bool


async def working_calendar(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, timezone: str | None = None
) -> WorkingCalendar:
    """The community's calendar in its time zone; default hours when none is set."""
    if timezone is None:
        community = await estate.get_community(session, _system(actor), community_id=community_id)
        timezone = community.timezone
    # Hours and holidays in one round trip: this runs on every create, accept and finish.
    weekly_of = (
        select(WorkCalendar.weekly)
        .where(WorkCalendar.community_id == community_id)
        .scalar_subquery()
    )
    days_of = (
        select(
            func.coalesce(
                func.jsonb_agg(func.jsonb_build_array(WorkHoliday.day, WorkHoliday.kind)),
                text("'[]'::jsonb"),
            )
        )
        .where(WorkHoliday.community_id == community_id)
        .scalar_subquery()
    )
    weekly, days_json = (await session.execute(select(weekly_of, days_of))).one()
    days = [(dt.date.fromisoformat(d), HolidayKind(k)) for d, k in days_json]
    base = WorkingCalendar(timezone=timezone)
    return WorkingCalendar(
        timezone=timezone,
        weekly=parse_weekly(weekly) if weekly is not None else base.weekly,
        holidays=frozenset(d for d, k in days if k is HolidayKind.HOLIDAY),
        workdays=frozenset(d for d, k in days if k is HolidayKind.WORKDAY),
    )


async def get_calendar(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> CalendarView:
    community = await estate.get_community(session, actor, community_id=community_id)
    calendar = await working_calendar(session, actor, community_id=community_id)
    stored = await session.scalar(
        select(WorkCalendar.id).where(WorkCalendar.community_id == community_id)
    )
    rows = (
        await session.scalars(
            select(WorkHoliday)
            .where(WorkHoliday.community_id == community_id)
            .order_by(WorkHoliday.day)
        )
    ).all()
    return CalendarView(
        community_id=community_id,
        timezone=community.timezone,
        weekly=format_weekly(calendar.weekly),
        holidays=[HolidayEntry(r.day, r.kind, r.name) for r in rows],
        configured=stored is not None,
    )


async def set_calendar(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    weekly: dict[str, list[list[str]]],
    holidays: Sequence[HolidayEntry],
) -> CalendarView:
    """Replace the community's working hours and holiday list (工作时间与节假日)."""
    await estate.get_community(session, actor, community_id=community_id)
    try:
        parsed = parse_weekly(weekly)
    except (CalendarError, ValueError) as exc:
        raise ValidationFailed(errors=[FieldError("weekly", str(exc), "invalid_hours")]) from exc
    if not any(parsed.values()):
        raise ValidationFailed(
            errors=[FieldError("weekly", "Some working hours are needed.", "no_working_time")]
        )
    if len({h.day for h in holidays}) != len(holidays):
        raise ValidationFailed(
            errors=[FieldError("holidays", "Each day may appear once.", "duplicate_day")]
        )
    tenant_id = _tenant(actor)
    stored = await session.scalar(
        select(WorkCalendar).where(WorkCalendar.community_id == community_id)
    )
    if stored is None:
        session.add(
            WorkCalendar(
                tenant_id=tenant_id, community_id=community_id, weekly=format_weekly(parsed)
            )
        )
    else:
        stored.weekly = format_weekly(parsed)
    await session.execute(delete(WorkHoliday).where(WorkHoliday.community_id == community_id))
    session.add_all(
        WorkHoliday(
            tenant_id=tenant_id, community_id=community_id, day=h.day, kind=h.kind, name=h.name
        )
        for h in holidays
    )
    await session.flush()
    fastpath.forget_calendar(tenant_id, community_id)
    await audit.record(
        session,
        actor,
        "workorder.calendar.set",
        target_type="community",
        target_id=community_id,
        detail={"holidays": len(holidays)},
    )
    return await get_calendar(session, actor, community_id=community_id)


# --- technicians and routing -----------------------------------------------------------------


async def _technician(
    session: AsyncSession, actor: Actor, technician_id: uuid.UUID, community_id: uuid.UUID
) -> auth_service.StaffMember:
    try:
        member = await auth_service.get_staff(session, _system(actor), staff_user_id=technician_id)
    except NotFound as exc:
        raise NotFound("Technician not found.", code="technician_not_found") from exc
    user = member.user
    if (
        not user.is_active
        or Role.TECHNICIAN.value not in user.roles
        or not (user.all_communities or community_id in member.community_ids)
    ):
        raise ValidationFailed(
            "This person is not an active technician of the community.",
            code="not_a_technician",
            errors=[FieldError("technician_id", "Not a technician here.", "not_a_technician")],
        )
    return member


async def add_coverage(
    session: AsyncSession,
    actor: Actor,
    *,
    technician_id: uuid.UUID,
    community_id: uuid.UUID,
    category_id: uuid.UUID | None = None,
    building_id: uuid.UUID | None = None,
) -> TechnicianCoverage:
    """Route orders of a community (a category, a building) to a technician (派单规则)."""
    await estate.get_community(session, actor, community_id=community_id)
    await _technician(session, actor, technician_id, community_id)
    if category_id is not None:
        category = await get_category(session, actor, category_id=category_id)
        if category.community_id != community_id:
            raise NotFound("Category not found.", code="category_not_found")
    if building_id is not None:
        building = await estate.get_building(session, actor, building_id=building_id)
        if building.community_id != community_id:
            raise NotFound("Building not found.", code="building_not_found")
    row = TechnicianCoverage(
        tenant_id=_tenant(actor),
        technician_id=technician_id,
        community_id=community_id,
        category_id=category_id,
        building_id=building_id,
    )
    session.add(row)
    await flush_or_conflict(session, Conflict("This rule exists.", code="coverage_exists"))
    await audit.record(
        session,
        actor,
        "workorder.coverage.add",
        target_type="work_order_coverage",
        target_id=row.id,
    )
    return row


async def list_coverage(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None = None
) -> list[TechnicianCoverage]:
    statement = select(TechnicianCoverage).where(
        estate.community_scope(actor, TechnicianCoverage.community_id)
    )
    if community_id is not None:
        statement = statement.where(TechnicianCoverage.community_id == community_id)
    return list((await session.scalars(statement.order_by(TechnicianCoverage.id))).all())


async def delete_coverage(session: AsyncSession, actor: Actor, *, coverage_id: uuid.UUID) -> None:
    row = await session.scalar(
        select(TechnicianCoverage).where(
            TechnicianCoverage.id == coverage_id,
            estate.community_scope(actor, TechnicianCoverage.community_id),
        )
    )
    if row is None:
        raise NotFound("Rule not found.", code="coverage_not_found")
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        actor,
        "workorder.coverage.delete",
        target_type="work_order_coverage",
        target_id=coverage_id,
    )


async def pick_technician(session: AsyncSession, order: WorkOrder) -> uuid.UUID | None:
    """Auto-dispatch: the most specific matching rule first, then the lightest open load.

    Specificity: a rule naming both category and building beats one naming either,
    which beats a community-wide rule. Load: open orders (assigned or in progress).
    Ties go to the technician with the lowest id, so dispatch is deterministic.
    """
    load = (
        select(func.count())
        .select_from(WorkOrder)
        .where(
            WorkOrder.tenant_id == TechnicianCoverage.tenant_id,
            WorkOrder.assignee_id == TechnicianCoverage.technician_id,
            WorkOrder.status.in_([OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS]),
        )
        .scalar_subquery()
    )
    specificity = case((TechnicianCoverage.category_id.is_not(None), 2), else_=0) + case(
        (TechnicianCoverage.building_id.is_not(None), 1), else_=0
    )
    building_match: ColumnElement[bool] = (
        TechnicianCoverage.building_id.is_(None)
        if order.building_id is None
        else or_(
            TechnicianCoverage.building_id.is_(None),
            TechnicianCoverage.building_id == order.building_id,
        )
    )
    candidates = (
        await session.execute(
            select(TechnicianCoverage.technician_id)
            .where(
                TechnicianCoverage.community_id == order.community_id,
                or_(
                    TechnicianCoverage.category_id.is_(None),
                    TechnicianCoverage.category_id == order.category_id,
                ),
                building_match,
            )
            .order_by(specificity.desc(), load, TechnicianCoverage.technician_id)
        )
    ).all()
    for (technician_id,) in candidates:
        try:
            await _technician(
                session, Actor.system(order.tenant_id), technician_id, order.community_id
            )
        except (NotFound, ValidationFailed):
            continue  # left the company or lost the grant: skip, try the next
        return technician_id
    return None


# --- reading orders ------------------------------------------------------------------------


def readable_orders(actor: Actor) -> Select[WorkOrder]:
    statement = select(WorkOrder).where(estate.community_scope(actor, WorkOrder.community_id))
    if actor.kind is PrincipalKind.STAFF and not actor.can(Permission.DESK_ORDERS_READ):
        statement = statement.where(WorkOrder.assignee_id == actor.id)
    return statement


async def get_order(session: AsyncSession, actor: Actor, *, order_id: uuid.UUID) -> WorkOrder:
    order = await session.scalar(readable_orders(actor).where(WorkOrder.id == order_id))
    if order is None:
        raise _not_found()
    return order


def overdue_clause(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        WorkOrder.status.in_(OPEN_STATUSES),
        or_(
            and_(WorkOrder.accepted_at.is_(None), WorkOrder.response_due_at < now),
            WorkOrder.completion_due_at < now,
        ),
    )


@dataclass(frozen=True)
class OrderFilter:
    community_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    category_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    kind: OrderKind | None = None
    overdue: bool = False
    open_only: bool = False


async def list_orders(
    session: AsyncSession, actor: Actor, *, filters: OrderFilter, page: PageParams
) -> tuple[list[WorkOrder], str | None]:
    statement = readable_orders(actor)
    if filters.community_id is not None:
        statement = statement.where(WorkOrder.community_id == filters.community_id)
    if filters.status is not None:
        statement = statement.where(WorkOrder.status == filters.status)
    if filters.category_id is not None:
        statement = statement.where(WorkOrder.category_id == filters.category_id)
    if filters.assignee_id is not None:
        statement = statement.where(WorkOrder.assignee_id == filters.assignee_id)
    if filters.kind is not None:
        statement = statement.where(WorkOrder.kind == filters.kind)
    if filters.open_only:
        statement = statement.where(WorkOrder.status.in_(OPEN_STATUSES))
    if filters.overdue:
        statement = statement.where(overdue_clause(_now()))
    rows = (await session.scalars(paginate_statement(statement, WorkOrder.id, page))).all()
    return make_page(list(rows), page)


async def my_queue(session: AsyncSession, actor: Actor) -> list[WorkOrder]:
    """A technician's queue: their assigned and in-progress orders, most urgent deadline first."""
    rows = await session.scalars(
        readable_orders(actor)
        .where(
            WorkOrder.assignee_id == actor.id,
            WorkOrder.status.in_([OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS]),
        )
        .order_by(WorkOrder.completion_due_at, WorkOrder.id)
        .limit(200)
    )
    return list(rows.all())


async def timeline(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID
) -> list[WorkOrderEvent]:
    await get_order(session, actor, order_id=order_id)
    rows = await session.scalars(
        select(WorkOrderEvent)
        .where(WorkOrderEvent.order_id == order_id)
        .order_by(WorkOrderEvent.id)
    )
    return list(rows.all())


async def charges(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID
) -> list[WorkOrderCharge]:
    await get_order(session, actor, order_id=order_id)
    rows = await session.scalars(
        select(WorkOrderCharge)
        .where(WorkOrderCharge.order_id == order_id)
        .order_by(WorkOrderCharge.id)
    )
    return list(rows.all())


@dataclass(frozen=True)
class PhotoInfo:
    id: uuid.UUID
    order_id: uuid.UUID
    stage: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    created_at: dt.datetime


async def photos(session: AsyncSession, actor: Actor, *, order_id: uuid.UUID) -> list[PhotoInfo]:
    await get_order(session, actor, order_id=order_id)
    rows = await session.execute(
        select(
            WorkOrderPhoto.id,
            WorkOrderPhoto.order_id,
            WorkOrderPhoto.stage,
            WorkOrderPhoto.content_type,
            WorkOrderPhoto.width,
            WorkOrderPhoto.height,
            WorkOrderPhoto.size_bytes,
            WorkOrderPhoto.created_at,
        )
        .where(WorkOrderPhoto.order_id == order_id)
        .order_by(WorkOrderPhoto.id)
    )
    return [PhotoInfo(*row) for row in rows.all()]


async def get_photo(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, photo_id: uuid.UUID
) -> WorkOrderPhoto:
    await get_order(session, actor, order_id=order_id)
    photo = await session.scalar(
        select(WorkOrderPhoto).where(
            WorkOrderPhoto.order_id == order_id, WorkOrderPhoto.id == photo_id
        )
    )
    if photo is None:
        raise NotFound("Photo not found.", code="photo_not_found")
    return photo


# --- the timeline, events and audit of each change ------------------------------------------


async def _log(
    session: AsyncSession,
    actor: Actor,
    order: WorkOrder,
    kind: str,
    *,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        WorkOrderEvent(
            tenant_id=order.tenant_id,
            order_id=order.id,
            kind=kind,
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            actor_name=actor.display_name,
            note=note,
            detail=detail or {},
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        f"workorder.{kind}",
        target_type="work_order",
        target_id=order.id,
        detail=detail,
    )


def _event_payload(order: WorkOrder, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "number": order.number,
        "community_id": str(order.community_id),
        "status": order.status.value,
        **extra,
    }


async def managers_of(
    session: AsyncSession, tenant_id: uuid.UUID, community_id: uuid.UUID
) -> list[uuid.UUID]:
    """Active community managers who hold the community (the escalation's recipients)."""
    found: list[uuid.UUID] = []
    page = PageParams(limit=200)
    while True:
        rows, cursor = await auth_service.list_staff(
            session, Actor.system(tenant_id), page=page, active=True, role=Role.COMMUNITY_MANAGER
        )
        found += [
            m.user.id for m in rows if m.user.all_communities or community_id in m.community_ids
        ]
        if not cursor:
            return found
        page = PageParams(cursor=cursor, limit=200)


# --- creating orders -----------------------------------------------------------------------


def warn_at(start: dt.datetime, due: dt.datetime) -> dt.datetime:
    """80 % of the way from start to due, in wall-clock time between the two instants."""
    span = (due - start).total_seconds()
    return start + dt.timedelta(seconds=int(span * float(WARN_AT_SHARE)))


def order_number(order_id: uuid.UUID, at: dt.datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%y%m%d") + "-" + order_id.hex[-6:].upper()


@dataclass(frozen=True)
class NewOrder:
    community_id: uuid.UUID
    category_id: uuid.UUID
    description: str
    house_id: uuid.UUID | None = None
    location: str = ""
    priority: Priority | None = None
    preferred_from: dt.datetime | None = None
    preferred_to: dt.datetime | None = None
    reporter_name: str = ""
    contact_phone: str | None = None


async def _set_due(
    session: AsyncSession,
    actor: Actor,
    order: WorkOrder,
    start: dt.datetime,
    sla: SlaTarget,
    timezone: str | None = None,
) -> None:
    calendar = await working_calendar(
        session, actor, community_id=order.community_id, timezone=timezone
    )
    order.response_due_at = calendar.add_working_minutes(start, sla.response_minutes)
    order.completion_due_at = calendar.add_working_minutes(start, sla.completion_minutes)
    order.response_warn_at = warn_at(start, order.response_due_at)
    order.completion_warn_at = warn_at(start, order.completion_due_at)
    order.response_warned_at = None
    order.completion_warned_at = None


def check_new_order(new: NewOrder) -> None:
    """Refuse a report without a description or a place, or with an inverted time window."""
    errors: list[FieldError] = []
    if not new.description.strip():
        errors.append(FieldError("description", "Describe the problem.", "required"))
    if new.house_id is None and not new.location.strip():
        errors.append(FieldError("location", "Name the house or the common area.", "required"))
    if new.preferred_from and new.preferred_to and new.preferred_to <= new.preferred_from:
        errors.append(FieldError("preferred_to", "The end must follow the start.", "invalid_range"))
    if errors:
        raise ValidationFailed(errors=errors)


async def create_order(
    session: AsyncSession,
    actor: Actor,
    *,
    new: NewOrder,
    source: OrderSource,
    reporter_account_id: uuid.UUID | None = None,
    auto_assign: bool = True,
) -> WorkOrder:
    """Open an order (报修/投诉/咨询) with its SLA deadlines; dispatch it when a rule matches."""
    check_new_order(new)
    community = await estate.get_community(session, actor, community_id=new.community_id)
    category = await get_category(session, _system(actor), category_id=new.category_id)
    if category.community_id != new.community_id or category.archived_at is not None:
        raise NotFound("Category not found.", code="category_not_found")
    building_id = None
    if new.house_id is not None:
        house = await estate.get_house(session, _system(actor), house_id=new.house_id)
        if house.community_id != new.community_id:
            raise NotFound("House not found.", code="house_not_found")
        building_id = house.building_id
    priority = new.priority or category.default_priority
    now = _now()
    phone = crypto.normalize_phone(new.contact_phone) if new.contact_phone else None
    order = WorkOrder(
        tenant_id=_tenant(actor),
        community_id=new.community_id,
        kind=category.kind,
        category_id=category.id,
        priority=priority,
        status=OrderStatus.NEW,
        source=source,
        house_id=new.house_id,
        building_id=building_id,
        location=new.location.strip(),
        description=new.description.strip(),
        preferred_from=new.preferred_from,
        preferred_to=new.preferred_to,
        reporter_account_id=reporter_account_id,
        reporter_name=new.reporter_name.strip(),
        contact_phone_enc=crypto.encrypt(phone) if phone else None,
        created_by_staff_id=actor.id if actor.kind is PrincipalKind.STAFF else None,
    )
    order.id = new_id()
    order.number = order_number(order.id, now, community.timezone)
    await _set_due(session, actor, order, now, sla_of(category, priority), community.timezone)
    session.add(order)
    await session.flush()
    await _log(
        session,
        actor,
        order,
        "created",
        note=order.description[:200],
        detail={"source": source.value, "priority": priority.value},
    )
    await outbox.emit(session, actor, events.CREATED, _event_payload(order, kind=order.kind.value))
    if auto_assign:
        technician = await pick_technician(session, order)
        if technician is not None:
            await _assign(session, actor, order, technician, auto=True)
    return order


async def create_resident_order(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID,
    new: NewOrder,
    photos: Sequence[bytes] = (),
) -> WorkOrder:
    """A resident reports from the portal, for a house they live in (or its common areas).

    Photos are checked before anything is written: one bad file refuses the whole report.
    """
    if len(photos) > MAX_PHOTOS_PER_ORDER:
        raise Conflict("This order has as many photos as it may hold.", code="too_many_photos")
    for data in photos:
        check_image(data)
    home = await _my_home(session, actor, house_id)
    await set_tenant(session, home.company_id)
    scoped = replace(actor, tenant_id=home.company_id, all_communities=True)
    order = await create_order(
        session,
        scoped,
        new=replace(new, community_id=home.community_id, house_id=house_id),
        source=OrderSource.PORTAL,
        reporter_account_id=actor.id,
    )
    for data in photos:
        await _store_photo(session, scoped, order, data, "report")
    return order


async def _my_home(session: AsyncSession, actor: Actor, house_id: uuid.UUID) -> residents.Home:
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    homes, _ = await residents.my_homes(session, actor)
    home = next((h for h in homes if h.house_id == house_id), None)
    if home is None:
        raise NotFound("House not found.", code="house_not_found")
    return home


async def resident_categories(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID
) -> list[WorkOrderCategory]:
    home = await _my_home(session, actor, house_id)
    await set_tenant(session, home.company_id)
    return await list_categories(
        session, Actor.system(home.company_id), community_id=home.community_id
    )


@dataclass(frozen=True)
class ResidentOrder:
    company_id: uuid.UUID
    order: WorkOrder


async def resident_orders(session: AsyncSession, actor: Actor) -> list[ResidentOrder]:
    """The signed-in resident's orders across the companies that know them (我的报修)."""
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    homes, _ = await residents.my_homes(session, actor)
    found: list[ResidentOrder] = []
    try:
        for company_id in sorted({h.company_id for h in homes}):
            await set_tenant(session, company_id)
            rows = await session.scalars(
                select(WorkOrder)
                .where(WorkOrder.reporter_account_id == actor.id)
                .order_by(WorkOrder.id.desc())
                .limit(100)
            )
            found += [ResidentOrder(company_id, order) for order in rows.all()]
    finally:
        await set_tenant(session, None)
    found.sort(key=lambda r: r.order.id, reverse=True)
    return found


async def resident_order(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID
) -> tuple[Actor, WorkOrder]:
    """One of the resident's own orders, with the resident acting inside its company."""
    for row in await resident_orders(session, actor):
        if row.order.id == order_id:
            await set_tenant(session, row.company_id)
            return replace(actor, tenant_id=row.company_id), row.order
    raise _not_found()


# --- dispatch and technician work ----------------------------------------------------------


async def _assign(
    session: AsyncSession, actor: Actor, order: WorkOrder, technician_id: uuid.UUID, *, auto: bool
) -> None:
    previous = order.assignee_id
    order.assignee_id = technician_id
    order.assigned_at = _now()
    order.status = OrderStatus.ASSIGNED
    order.accepted_at = None if previous != technician_id else order.accepted_at
    await session.flush()
    await _log(
        session,
        actor,
        order,
        "assigned",
        detail={"technician_id": str(technician_id), "auto": auto},
    )
    await outbox.emit(
        session,
        actor,
        events.ASSIGNED,
        _event_payload(
            order, technician_ids=[str(technician_id)], recipient_staff_ids=[str(technician_id)]
        ),
    )


async def assign(
    session: AsyncSession,
    actor: Actor,
    *,
    order_id: uuid.UUID,
    technician_id: uuid.UUID | None = None,
) -> WorkOrder:
    """Dispatch (派单) to a technician, or to the routing rules' choice when none is named."""
    order = await _locked(session, actor, order_id)
    if order.status not in (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS):
        raise Conflict("This order can no longer be dispatched.", code="order_not_open")
    if technician_id is None:
        technician_id = await pick_technician(session, order)
        if technician_id is None:
            raise Conflict(
                "No routing rule matches this order; choose a technician.",
                code="no_technician",
            )
        auto = True
    else:
        await _technician(session, actor, technician_id, order.community_id)
        auto = False
    await _assign(session, actor, order, technician_id, auto=auto)
    return order


async def _locked(session: AsyncSession, actor: Actor, order_id: uuid.UUID) -> WorkOrder:
    order = await session.scalar(
        readable_orders(actor).where(WorkOrder.id == order_id).with_for_update()
    )
    if order is None:
        raise _not_found()
    return order


async def _mine(session: AsyncSession, actor: Actor, order_id: uuid.UUID) -> WorkOrder:
    """An order the acting technician holds; anyone else's is refused (403, not 404)."""
    order = await session.scalar(
        select(WorkOrder)
        .where(WorkOrder.id == order_id, estate.community_scope(actor, WorkOrder.community_id))
        .with_for_update()
    )
    if order is None or (
        order.assignee_id != actor.id and not actor.can(Permission.DESK_ORDERS_READ)
    ):
        raise _not_found()
    if order.assignee_id != actor.id:
        raise PermissionDenied(
            "Only the assigned technician may do this.", code="not_assigned_to_you"
        )
    return order


async def accept(session: AsyncSession, actor: Actor, *, order_id: uuid.UUID) -> WorkOrder:
    """The technician takes the order (接单): the first response, measured against the SLA."""
    order = await _mine(session, actor, order_id)
    if order.status is not OrderStatus.ASSIGNED:
        raise Conflict("Only an assigned order can be accepted.", code="order_not_assigned")
    now = _now()
    order.status = OrderStatus.IN_PROGRESS
    if order.response_minutes is None:
        calendar = await working_calendar(session, actor, community_id=order.community_id)
        order.accepted_at = now
        order.response_minutes = calendar.working_minutes_between(order.created_at, now)
        order.response_met = now <= order.response_due_at
    else:
        order.accepted_at = now
    await session.flush()
    await _log(session, actor, order, "accepted")
    return order


def _working(order: WorkOrder) -> None:
    if order.status is not OrderStatus.IN_PROGRESS:
        raise Conflict("Accept the order first.", code="order_not_in_progress")


async def record_work(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, note: str
) -> WorkOrder:
    order = await _mine(session, actor, order_id)
    _working(order)
    if not note.strip():
        raise ValidationFailed(errors=[FieldError("note", "Write what was done.", "required")])
    await _log(session, actor, order, "work_recorded", note=note.strip())
    return order


async def add_charge(
    session: AsyncSession,
    actor: Actor,
    *,
    order_id: uuid.UUID,
    kind: ChargeKind,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
) -> WorkOrderCharge:
    """A parts or labour line (材料费/人工费), billed to the house by billing from the event."""
    order = await _mine(session, actor, order_id)
    _working(order)
    if quantity <= 0 or unit_price < 0:
        raise ValidationFailed(
            errors=[FieldError("quantity", "Quantity must be positive, price not negative.")]
        )
    amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    line = WorkOrderCharge(
        tenant_id=order.tenant_id,
        order_id=order.id,
        kind=kind,
        description=description.strip(),
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        recorded_by=actor.id,
    )
    session.add(line)
    await session.flush()
    await _log(
        session,
        actor,
        order,
        "charge_added",
        note=line.description,
        detail={"kind": kind.value, "amount": str(amount)},
    )
    await outbox.emit(
        session,
        actor,
        events.CHARGE_RECORDED,
        _event_payload(
            order,
            charge_id=str(line.id),
            house_id=str(order.house_id) if order.house_id else None,
            kind=kind.value,
            description=line.description,
            quantity=str(quantity),
            unit_price=str(unit_price),
            amount=str(amount),
            currency="CNY",
        ),
    )
    return line


def check_image(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) of a real JPEG/PNG/WebP no larger than the limit."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_PHOTO_BYTES:
        raise PayloadTooLarge(
            "A photo may be at most {limit} KB.",
            code="photo_too_large",
            limit=MAX_PHOTO_BYTES // 1024,
        )
    if not data:
        raise ValidationFailed(errors=[FieldError("photo", "The file is empty.", "not_an_image")])
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValidationFailed(
                    errors=[FieldError("photo", "The picture is too large.", "too_many_pixels")]
                )
            image.verify()
    except ValidationFailed:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise ValidationFailed(
            "This file is not a picture.",
            code="not_an_image",
            errors=[FieldError("photo", "Upload a JPEG, PNG or WebP picture.", "not_an_image")],
        ) from exc
    if kind not in IMAGE_TYPES:
        raise ValidationFailed(
            "This file is not a picture.",
            code="not_an_image",
            errors=[FieldError("photo", "Upload a JPEG, PNG or WebP picture.", "not_an_image")],
        )
    return IMAGE_TYPES[kind], width, height


async def _store_photo(
    session: AsyncSession, actor: Actor, order: WorkOrder, data: bytes, stage: str
) -> WorkOrderPhoto:
    content_type, width, height = check_image(data)
    count = await session.scalar(
        select(func.count()).select_from(WorkOrderPhoto).where(WorkOrderPhoto.order_id == order.id)
    )
    if (count or 0) >= MAX_PHOTOS_PER_ORDER:
        raise Conflict("This order has as many photos as it may hold.", code="too_many_photos")
    photo = WorkOrderPhoto(
        tenant_id=order.tenant_id,
        order_id=order.id,
        stage=stage,
        content_type=content_type,
        width=width,
        height=height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        uploaded_by=actor.id,
    )
    session.add(photo)
    await session.flush()
    await _log(
        session, actor, order, "photo_added", detail={"photo_id": str(photo.id), "stage": stage}
    )
    return photo


async def add_work_photo(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, data: bytes
) -> WorkOrderPhoto:
    order = await _mine(session, actor, order_id)
    _working(order)
    return await _store_photo(session, actor, order, data, "work")


async def add_resident_photo(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, data: bytes
) -> WorkOrderPhoto:
    scoped, order = await resident_order(session, actor, order_id=order_id)
    if order.status not in OPEN_STATUSES:
        raise Conflict("Photos can be added while the order is open.", code="order_not_open")
    return await _store_photo(session, scoped, order, data, "report")


async def add_staff_photo(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, data: bytes
) -> WorkOrderPhoto:
    order = await _locked(session, actor, order_id)
    return await _store_photo(session, actor, order, data, "report")


async def finish(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, note: str = ""
) -> WorkOrder:
    """The technician finishes (完工); the resident is asked to confirm and rate."""
    order = await _mine(session, actor, order_id)
    _working(order)
    now = _now()
    calendar = await working_calendar(session, actor, community_id=order.community_id)
    order.status = OrderStatus.FINISHED
    order.finished_at = now
    order.completion_minutes = calendar.working_minutes_between(order.created_at, now)
    order.completion_met = now <= order.completion_due_at
    await session.flush()
    await _log(session, actor, order, "finished", note=note.strip())
    await outbox.emit(
        session,
        actor,
        events.FINISHED,
        _event_payload(
            order,
            resident_account_ids=[str(order.reporter_account_id)]
            if order.reporter_account_id
            else [],
            house_id=str(order.house_id) if order.house_id else None,
        ),
    )
    return order


async def rate(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, rating: int, comment: str = ""
) -> WorkOrder:
    """The resident confirms and rates (评价). 1-2 stars reopen the order to its technician."""
    if not 1 <= rating <= 5:
        raise ValidationFailed(
            errors=[FieldError("rating", "Give 1 to 5 stars.", "invalid_rating")]
        )
    scoped, order = await resident_order(session, actor, order_id=order_id)
    await session.refresh(order, with_for_update=True)
    if order.status is not OrderStatus.FINISHED:
        raise Conflict("Only a finished order can be rated.", code="order_not_finished")
    order.rating = rating
    order.rating_comment = comment.strip()[:500]
    if rating >= BAD_RATING_BELOW:
        order.status = OrderStatus.CLOSED
        order.closed_at = _now()
        await session.flush()
        await _log(
            session, scoped, order, "rated", note=order.rating_comment, detail={"rating": rating}
        )
        return order
    await _log(
        session, scoped, order, "rated", note=order.rating_comment, detail={"rating": rating}
    )
    await _reopen(session, scoped, order, reason=order.rating_comment)
    return order


async def _reopen(session: AsyncSession, actor: Actor, order: WorkOrder, *, reason: str) -> None:
    category = await get_category(session, _system(actor), category_id=order.category_id)
    order.reopen_count += 1
    order.finished_at = None
    order.completion_minutes = None
    order.completion_met = None
    order.status = OrderStatus.ASSIGNED if order.assignee_id else OrderStatus.NEW
    now = _now()
    sla = sla_of(category, order.priority)
    calendar = await working_calendar(session, actor, community_id=order.community_id)
    # The response was given; completion is owed again, from now, by the category's SLA.
    order.completion_due_at = calendar.add_working_minutes(now, sla.completion_minutes)
    order.completion_warn_at = warn_at(now, order.completion_due_at)
    order.completion_warned_at = None
    await session.flush()
    await _log(session, actor, order, "reopened", note=reason)
    recipients = [str(order.assignee_id)] if order.assignee_id else []
    managers = [str(m) for m in await managers_of(session, order.tenant_id, order.community_id)]
    await outbox.emit(
        session,
        actor,
        events.REOPENED,
        _event_payload(
            order,
            technician_ids=recipients,
            manager_ids=managers,
            recipient_staff_ids=sorted({*recipients, *managers}),
        ),
    )


async def cancel(
    session: AsyncSession, actor: Actor, *, order_id: uuid.UUID, reason: str
) -> WorkOrder:
    order = await _locked(session, actor, order_id)
    if order.status not in OPEN_STATUSES:
        raise Conflict("Only an open order can be cancelled.", code="order_not_open")
    if not reason.strip():
        raise ValidationFailed(errors=[FieldError("reason", "Give a reason.", "required")])
    order.status = OrderStatus.CANCELLED
    order.closed_at = _now()
    await session.flush()
    await _log(session, actor, order, "cancelled", note=reason.strip())
    return order


# --- escalation -----------------------------------------------------------------------------


async def escalate_due(
    session: AsyncSession, actor: Actor, *, now: dt.datetime | None = None
) -> int:
    """Warn managers once per clock of each open order that has used 80 % of its SLA.

    Set-based: one ``UPDATE ... RETURNING`` marks the orders, so two job runs cannot
    both warn about the same order; then one event per order names its managers.
    """
    now = now or _now()
    tenant_id = _tenant(actor)
    response_due = and_(
        WorkOrder.accepted_at.is_(None),
        WorkOrder.response_warned_at.is_(None),
        WorkOrder.response_warn_at <= now,
    )
    completion_due = and_(
        WorkOrder.completion_warned_at.is_(None), WorkOrder.completion_warn_at <= now
    )
    open_now = WorkOrder.status.in_(OPEN_STATUSES)
    responded = (
        (
            await session.execute(
                update(WorkOrder)
                .where(open_now, response_due)
                .values(response_warned_at=now)
                .returning(WorkOrder.id)
            )
        )
        .scalars()
        .all()
    )
    completed = (
        (
            await session.execute(
                update(WorkOrder)
                .where(open_now, completion_due)
                .values(completion_warned_at=now)
                .returning(WorkOrder.id)
            )
        )
        .scalars()
        .all()
    )
    clocks: dict[uuid.UUID, list[str]] = {}
    for order_id in responded:
        clocks.setdefault(order_id, []).append("response")
    for order_id in completed:
        clocks.setdefault(order_id, []).append("completion")
    if not clocks:
        return 0
    orders = (
        await session.scalars(
            select(WorkOrder)
            .where(WorkOrder.id.in_(list(clocks)))
            .execution_options(populate_existing=True)
        )
    ).all()
    managers: dict[uuid.UUID, list[str]] = {}
    for order in orders:
        if order.community_id not in managers:
            managers[order.community_id] = [
                str(m) for m in await managers_of(session, tenant_id, order.community_id)
            ]
        due = {
            "response": order.response_due_at.isoformat(),
            "completion": order.completion_due_at.isoformat(),
        }
        await _log(
            session,
            actor,
            order,
            "sla_warning",
            detail={"clocks": clocks[order.id], "due": {c: due[c] for c in clocks[order.id]}},
        )
        await outbox.emit(
            session,
            actor,
            events.SLA_WARNING,
            _event_payload(
                order,
                clocks=clocks[order.id],
                due={c: due[c] for c in clocks[order.id]},
                manager_ids=managers[order.community_id],
                recipient_staff_ids=managers[order.community_id],
                assignee_id=str(order.assignee_id) if order.assignee_id else None,
            ),
        )
    return len(clocks)


# --- reports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    key: uuid.UUID | None
    label: str
    orders: int
    open: int
    responded: int
    response_met: int
    avg_response_minutes: Decimal | None
    finished: int
    completion_met: int
    avg_completion_minutes: Decimal | None
    rated: int
    avg_rating: Decimal | None

    @property
    def response_rate(self) -> Decimal | None:
        return _share(self.response_met, self.responded)

    @property
    def completion_rate(self) -> Decimal | None:
        return _share(self.completion_met, self.finished)


def _share(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Report:
    since: dt.datetime
    until: dt.datetime
    total: ReportRow
    by_category: list[ReportRow]
    by_technician: list[ReportRow]


def _one_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


async def report(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    since: dt.datetime,
    until: dt.datetime,
) -> Report:
    """Volume, first response and completion vs SLA, satisfaction; per category and technician."""
    if until <= since:
        raise ValidationFailed(errors=[FieldError("until", "The end must follow the start.")])
    scope = and_(
        estate.community_scope(actor, WorkOrder.community_id),
        WorkOrder.created_at >= since,
        WorkOrder.created_at < until,
        WorkOrder.community_id == community_id if community_id is not None else true(),
    )
    measures = (
        func.count().label("orders"),
        func.count().filter(WorkOrder.status.in_(OPEN_STATUSES)).label("open"),
        func.count(WorkOrder.response_minutes).label("responded"),
        func.count().filter(WorkOrder.response_met.is_(True)).label("response_met"),
        func.avg(WorkOrder.response_minutes).label("avg_response"),
        func.count(WorkOrder.completion_minutes).label("finished"),
        func.count().filter(WorkOrder.completion_met.is_(True)).label("completion_met"),
        func.avg(WorkOrder.completion_minutes).label("avg_completion"),
        func.count(WorkOrder.rating).label("rated"),
        func.avg(WorkOrder.rating).label("avg_rating"),
    )

    def row(key: uuid.UUID | None, label: str, r: Any) -> ReportRow:
        return ReportRow(
            key=key,
            label=label,
            orders=r.orders,
            open=r.open,
            responded=r.responded,
            response_met=r.response_met,
            avg_response_minutes=_one_decimal(r.avg_response),
            finished=r.finished,
            completion_met=r.completion_met,
            avg_completion_minutes=_one_decimal(r.avg_completion),
            rated=r.rated,
            avg_rating=_one_decimal(r.avg_rating),
        )

    total = (await session.execute(select(*measures).where(scope))).one()
    by_category = (
        await session.execute(
            select(WorkOrderCategory.id, WorkOrderCategory.name, *measures)
            .join(
                WorkOrderCategory,
                and_(
                    WorkOrderCategory.tenant_id == WorkOrder.tenant_id,
                    WorkOrderCategory.id == WorkOrder.category_id,
                ),
            )
            .where(scope)
            .group_by(WorkOrderCategory.id, WorkOrderCategory.name)
            .order_by(func.count().desc(), WorkOrderCategory.name)
        )
    ).all()
    by_technician = (
        await session.execute(
            select(WorkOrder.assignee_id, *measures)
            .where(scope, WorkOrder.assignee_id.is_not(None))
            .group_by(WorkOrder.assignee_id)
            .order_by(func.count().desc(), WorkOrder.assignee_id)
        )
    ).all()
    names = await staff_names(session, actor, [r.assignee_id for r in by_technician])
    return Report(
        since=since,
        until=until,
        total=row(None, "", total),
        by_category=[row(r.id, r.name, r) for r in by_category],
        by_technician=[
            row(r.assignee_id, names.get(r.assignee_id, str(r.assignee_id)[:8]), r)
            for r in by_technician
        ],
    )


async def staff_names(
    session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    names: dict[uuid.UUID, str] = {}
    for staff_id in wanted:
        try:
            member = await auth_service.get_staff(session, _system(actor), staff_user_id=staff_id)
        except NotFound:
            continue
        names[staff_id] = member.user.display_name or member.user.username
    return names


async def technicians(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> list[auth_service.StaffMember]:
    """Active technicians who hold the community (the dispatch list)."""
    found: list[auth_service.StaffMember] = []
    page = PageParams(limit=200)
    while True:
        rows, cursor = await auth_service.list_staff(
            session, _system(actor), page=page, active=True, role=Role.TECHNICIAN
        )
        found += [m for m in rows if m.user.all_communities or community_id in m.community_ids]
        if not cursor:
            return found
        page = PageParams(cursor=cursor, limit=200)

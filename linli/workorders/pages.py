"""Console, technician and portal pages of the workorders domain.

Thin like every page module: :mod:`linli.workorders.service` does the work and the
scoping; these routes turn forms into service calls and answers into pages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.residents import service as residents
from linli.web import nav
from linli.web.forms import optional_uuid, required_uuid
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
from linli.workorders import service
from linli.workorders.charts import bar_chart
from linli.workorders.models import (
    ChargeKind,
    HolidayKind,
    OrderKind,
    OrderSource,
    OrderStatus,
    Priority,
    WorkOrder,
)

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

ORDER_PAGE_SIZE = 50

STATUS_LABELS = {
    OrderStatus.NEW: N_("Waiting for dispatch"),
    OrderStatus.ASSIGNED: N_("Dispatched"),
    OrderStatus.IN_PROGRESS: N_("In progress"),
    OrderStatus.FINISHED: N_("Finished, to confirm"),
    OrderStatus.CLOSED: N_("Closed"),
    OrderStatus.CANCELLED: N_("Cancelled"),
}
KIND_LABELS = {
    OrderKind.REPAIR: N_("Repair"),
    OrderKind.COMPLAINT: N_("Complaint"),
    OrderKind.INQUIRY: N_("Inquiry"),
}
PRIORITY_LABELS = {
    Priority.URGENT: N_("Urgent"),
    Priority.HIGH: N_("High"),
    Priority.NORMAL: N_("Normal"),
    Priority.LOW: N_("Low"),
}
EVENT_LABELS = {
    "created": N_("Reported"),
    "assigned": N_("Dispatched"),
    "accepted": N_("Accepted"),
    "work_recorded": N_("Work recorded"),
    "charge_added": N_("Charge recorded"),
    "photo_added": N_("Photo added"),
    "finished": N_("Finished"),
    "rated": N_("Rated"),
    "reopened": N_("Reopened"),
    "cancelled": N_("Cancelled"),
    "sla_warning": N_("SLA warning sent"),
}
CHARGE_LABELS = {ChargeKind.PART: N_("Parts"), ChargeKind.LABOUR: N_("Labour")}
WEEKDAY_LABELS = {
    1: N_("Monday"),
    2: N_("Tuesday"),
    3: N_("Wednesday"),
    4: N_("Thursday"),
    5: N_("Friday"),
    6: N_("Saturday"),
    7: N_("Sunday"),
}

nav.register(
    nav.NavItem(
        "workorders",
        N_("Work orders"),
        "/console/workorders",
        Permission.DESK_ORDERS_READ,
        "wrench",
        40,
    )
)
nav.register(
    nav.NavItem("tech", N_("My queue"), "/console/tech", Permission.DESK_ORDERS_WORK, "list", 41)
)
nav.register_tile(nav.PortalTile("repairs", N_("Repairs"), "wrench", "/portal/repairs", 40))

Reader = Annotated[Actor, staff(Permission.DESK_ORDERS_READ)]
Writer = Annotated[Actor, staff(Permission.DESK_ORDERS_WRITE)]
Worker = Annotated[Actor, staff(Permission.DESK_ORDERS_WORK)]
Configurer = Annotated[Actor, staff(Permission.DESK_CONFIGURE)]
FormText = Annotated[str, Form(max_length=2000)]
FormShort = Annotated[str, Form(max_length=200)]
Photos = Annotated[list[UploadFile], File()]

BASE_CONTEXT = {
    "status_labels": STATUS_LABELS,
    "kind_labels": KIND_LABELS,
    "priority_labels": PRIORITY_LABELS,
    "event_labels": EVENT_LABELS,
    "charge_labels": CHARGE_LABELS,
    "priorities": list(Priority),
}


def _order_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Work order not found.", code="work_order_not_found")


def _local(raw: str, tz: str) -> dt.datetime | None:
    """A datetime-local field (community wall clock) as an aware instant."""
    if not raw.strip():
        return None
    try:
        return dt.datetime.fromisoformat(raw.strip()).replace(tzinfo=ZoneInfo(tz))
    except ValueError as exc:
        raise ValidationFailed(
            errors=[FieldError("preferred_from", "Not a date and time.", "invalid")]
        ) from exc


async def _uploads(files: list[UploadFile]) -> list[bytes]:
    found = []
    for upload in files:
        if not upload.filename:
            continue  # an empty file input
        found.append(await upload.read(service.MAX_PHOTO_BYTES + 1))
    return found


async def attempt(session: AsyncSession, action: Any) -> DomainError | None:
    """Run ``action`` in a savepoint: a refusal undoes its writes (and its tenant switch)."""
    try:
        async with session.begin_nested():
            await action()
    except DomainError as exc:
        return exc
    return None


def overdue(order: WorkOrder, now: dt.datetime) -> bool:
    if order.status not in (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS):
        return False
    return (order.accepted_at is None and order.response_due_at < now) or (
        order.completion_due_at < now
    )


async def _labels(session: AsyncSession, actor: Actor, orders: list[WorkOrder]) -> dict[str, Any]:
    categories = {
        c.id: c.name for c in await service.list_categories(session, actor, include_archived=True)
    }
    houses: dict[uuid.UUID, str] = {}
    for order in orders:
        if order.house_id and order.house_id not in houses:
            houses[order.house_id] = await _house_ref(session, actor, order.house_id)
    names = await service.staff_names(session, actor, [o.assignee_id for o in orders])
    return {"category_names": categories, "house_refs": houses, "staff_names": names}


async def _house_ref(session: AsyncSession, actor: Actor, house_id: uuid.UUID) -> str:
    system = Actor.system(actor.tenant_id) if actor.tenant_id else actor
    house = await estate.get_house(session, system, house_id=house_id, include_archived=True)
    building = await estate.get_building(session, system, building_id=house.building_id)
    unit = await estate.get_unit(session, system, unit_id=house.unit_id) if house.unit_id else None
    return "-".join(
        p for p in (building.building_no, unit.unit_no if unit else None, house.house_no) if p
    )


# --- console: orders ----------------------------------------------------------------------------


@router.get("/console/workorders", name="console.workorders")
async def orders_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    status: Annotated[str, Query(max_length=20)] = "",
    category: Annotated[str, Query(max_length=64)] = "",
    overdue_only: Annotated[bool, Query(alias="overdue")] = False,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    chosen = OrderStatus(status) if status in {s.value for s in OrderStatus} else None
    rows: list[WorkOrder] = []
    next_cursor = None
    if community is not None:
        rows, next_cursor = await service.list_orders(
            session,
            actor,
            filters=service.OrderFilter(
                community_id=community.id,
                status=chosen,
                category_id=optional_uuid(category),
                overdue=overdue_only,
            ),
            page=PageParams(cursor=cursor, limit=ORDER_PAGE_SIZE),
        )
    categories = (
        await service.list_categories(session, actor, community_id=community.id)
        if community
        else []
    )
    return render(
        request,
        "workorders/orders.html",
        shell
        | BASE_CONTEXT
        | await _labels(session, actor, rows)
        | {
            "rows": rows,
            "next_cursor": next_cursor,
            "categories": categories,
            "filters": {"status": status, "category": category, "overdue": overdue_only},
            "statuses": list(OrderStatus),
            "is_overdue": overdue,
            "now_utc": dt.datetime.now(dt.UTC),
            "tz": community.timezone if community else "Asia/Shanghai",
        },
    )


async def _new_order_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    categories = (
        await service.list_categories(session, actor, community_id=community.id)
        if community
        else []
    )
    return render(
        request,
        "workorders/new.html",
        shell | BASE_CONTEXT | {"categories": categories, "error": error, "form": form or {}},
        status_code=status_code,
    )


@router.get("/console/workorders/new", name="console.workorders.new")
async def new_order_page(request: Request, actor: Writer, session: StaffDb) -> Response:
    return await _new_order_page(request, session, actor)


@router.post("/console/workorders/new", dependencies=[ConsoleCsrf])
async def create_order(
    request: Request,
    actor: Writer,
    session: StaffDb,
    category_id: Annotated[str, Form(max_length=64)] = "",
    house: FormShort = "",
    location: FormShort = "",
    description: FormText = "",
    priority: Annotated[str, Form(max_length=20)] = "",
    reporter_name: FormShort = "",
    contact_phone: Annotated[str, Form(max_length=32)] = "",
    preferred_from: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {
        "category_id": category_id,
        "house": house,
        "location": location,
        "description": description,
        "priority": priority,
        "reporter_name": reporter_name,
        "contact_phone": contact_phone,
    }
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    created: list[WorkOrder] = []

    async def act() -> None:
        if community is None:
            raise NotFound("Community not found.", code="community_not_found")
        house_id = None
        if house.strip():
            ref = estate.parse_house_ref(house)
            ids = (
                await estate.find_house_ids_by_ref(
                    session, actor, ref=ref, community_id=community.id
                )
                if ref
                else []
            )
            if len(ids) != 1:
                raise ValidationFailed(
                    errors=[
                        FieldError("house", "No such house; write it as 3-2-1201.", "unknown_house")
                    ]
                )
            house_id = ids[0]
        category = optional_uuid(category_id)
        if category is None:
            raise ValidationFailed(
                errors=[FieldError("category_id", "Choose a category.", "required")]
            )
        created.append(
            await service.create_order(
                session,
                actor,
                new=service.NewOrder(
                    community_id=community.id,
                    category_id=category,
                    description=description,
                    house_id=house_id,
                    location=location,
                    priority=Priority(priority)
                    if priority in {p.value for p in Priority}
                    else None,
                    preferred_from=_local(preferred_from, community.timezone),
                    reporter_name=reporter_name,
                    contact_phone=contact_phone or None,
                ),
                source=OrderSource.PHONE,
            )
        )

    failed = await attempt(session, act)
    if failed is not None:
        return await _new_order_page(
            request, session, actor, error=describe(failed), form=form, status_code=failed.status
        )
    return redirect(request, f"/console/workorders/{created[0].id}")


@router.get("/console/workorders/overdue", name="console.workorders.overdue")
async def overdue_page(request: Request, actor: Reader) -> Response:
    return redirect(request, "/console/workorders?overdue=true")


# --- console: settings ---------------------------------------------------------------------------


def _weekly_text(weekly: dict[str, list[list[str]]]) -> dict[int, str]:
    return {d: ", ".join(f"{s}-{e}" for s, e in weekly.get(str(d), [])) for d in range(1, 8)}


def _parse_weekly_text(values: dict[int, str]) -> dict[str, list[list[str]]]:
    weekly: dict[str, list[list[str]]] = {}
    for day, raw in values.items():
        spans = []
        for part in raw.replace("，", ",").split(","):
            if part.strip():
                start, _, end = part.strip().partition("-")
                spans.append([start.strip(), end.strip()])
        weekly[str(day)] = spans
    return weekly


def _parse_holidays(raw: str) -> list[service.HolidayEntry]:
    """Lines of ``2026-10-01 holiday 国庆`` or ``2026-10-10 workday 调休``."""
    found = []
    for number, line in enumerate(raw.splitlines(), start=1):
        parts = line.split(maxsplit=2)
        if not parts:
            continue
        try:
            day = dt.date.fromisoformat(parts[0])
            kind = HolidayKind(parts[1]) if len(parts) > 1 else HolidayKind.HOLIDAY
        except ValueError as exc:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "holidays", f"Line {number}: write 2026-10-01 holiday 国庆.", "invalid"
                    )
                ]
            ) from exc
        found.append(service.HolidayEntry(day, kind, parts[2][:100] if len(parts) > 2 else ""))
    return found


async def _settings_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    context: dict[str, Any] = {
        "error": error,
        "weekday_labels": WEEKDAY_LABELS,
        "kinds": list(OrderKind),
    }
    if community is not None:
        calendar = await service.get_calendar(session, actor, community_id=community.id)
        categories = await service.list_categories(
            session, actor, community_id=community.id, include_archived=True
        )
        rules = await service.list_coverage(session, actor, community_id=community.id)
        technicians = await service.technicians(session, actor, community_id=community.id)
        buildings = await estate.list_buildings(
            session, actor, community_id=community.id, page=PageParams(limit=200)
        )
        context |= {
            "calendar": calendar,
            "weekly": _weekly_text(calendar.weekly),
            "holidays_text": "\n".join(
                f"{h.day.isoformat()} {h.kind.value} {h.name}".strip() for h in calendar.holidays
            ),
            "categories": categories,
            "rules": rules,
            "technicians": technicians,
            "buildings": buildings[0],
            "category_names": {c.id: c.name for c in categories},
            "staff_names": {t.user.id: t.user.display_name or t.user.username for t in technicians},
            "building_names": {b.id: b.building_no for b in buildings[0]},
            "sla_of": service.sla_of,
        }
    return render(
        request, "workorders/settings.html", shell | BASE_CONTEXT | context, status_code=status_code
    )


@router.get("/console/workorders/settings", name="console.workorders.settings")
async def settings_page(request: Request, actor: Configurer, session: StaffDb) -> Response:
    return await _settings_page(request, session, actor)


async def _settings_action(
    request: Request, session: AsyncSession, actor: Actor, action: Any
) -> Response:
    failed = await attempt(session, action)
    if failed is not None:
        return await _settings_page(
            request, session, actor, error=describe(failed), status_code=failed.status
        )
    return redirect(request, "/console/workorders/settings")


def _sla_from_form(form: dict[str, Any]) -> dict[Priority, service.SlaTarget]:
    sla = {}
    for priority in Priority:
        response, completion = (
            form.get(f"{priority.value}_response"),
            form.get(f"{priority.value}_completion"),
        )
        if response and completion:
            try:
                sla[priority] = service.SlaTarget(int(str(response)), int(str(completion)))
            except ValueError as exc:
                raise ValidationFailed(
                    errors=[FieldError("sla", "Minutes are whole numbers.", "invalid")]
                ) from exc
    return sla


@router.post("/console/workorders/settings/categories", dependencies=[ConsoleCsrf])
async def add_category(request: Request, actor: Configurer, session: StaffDb) -> Response:
    form = dict(await request.form())
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]

    async def act() -> None:
        if community is None:
            raise NotFound("Community not found.", code="community_not_found")
        kind = str(form.get("kind", ""))
        if kind not in {k.value for k in OrderKind} or not str(form.get("name", "")).strip():
            raise ValidationFailed(errors=[FieldError("name", "Name the category.", "required")])
        await service.create_category(
            session,
            actor,
            community_id=community.id,
            name=str(form["name"]).strip()[:100],
            kind=OrderKind(kind),
            sla=_sla_from_form(form),
        )

    return await _settings_action(request, session, actor, act)


@router.post("/console/workorders/settings/categories/{category_id}", dependencies=[ConsoleCsrf])
async def edit_category(
    request: Request, actor: Configurer, session: StaffDb, category_id: str
) -> Response:
    form = dict(await request.form())
    wanted = optional_uuid(category_id)

    async def act() -> None:
        if wanted is None:
            raise NotFound("Category not found.", code="category_not_found")
        await service.update_category(
            session,
            actor,
            category_id=wanted,
            sla=_sla_from_form(form),
            archived=form.get("archived") == "1" if "archived" in form else None,
        )

    return await _settings_action(request, session, actor, act)


@router.post("/console/workorders/settings/calendar", dependencies=[ConsoleCsrf])
async def save_calendar(request: Request, actor: Configurer, session: StaffDb) -> Response:
    form = dict(await request.form())
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]

    async def act() -> None:
        if community is None:
            raise NotFound("Community not found.", code="community_not_found")
        weekly = _parse_weekly_text({d: str(form.get(f"day{d}", ""))[:200] for d in range(1, 8)})
        await service.set_calendar(
            session,
            actor,
            community_id=community.id,
            weekly=weekly,
            holidays=_parse_holidays(str(form.get("holidays", ""))[:20000]),
        )

    return await _settings_action(request, session, actor, act)


@router.post("/console/workorders/settings/rules", dependencies=[ConsoleCsrf])
async def add_rule(
    request: Request,
    actor: Configurer,
    session: StaffDb,
    technician_id: Annotated[str, Form(max_length=64)] = "",
    category_id: Annotated[str, Form(max_length=64)] = "",
    building_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]

    async def act() -> None:
        technician = optional_uuid(technician_id)
        if community is None or technician is None:
            raise ValidationFailed(
                errors=[FieldError("technician_id", "Choose a technician.", "required")]
            )
        await service.add_coverage(
            session,
            actor,
            technician_id=technician,
            community_id=community.id,
            category_id=optional_uuid(category_id),
            building_id=optional_uuid(building_id),
        )

    return await _settings_action(request, session, actor, act)


@router.post("/console/workorders/settings/rules/{coverage_id}/delete", dependencies=[ConsoleCsrf])
async def delete_rule(
    request: Request, actor: Configurer, session: StaffDb, coverage_id: str
) -> Response:
    wanted = optional_uuid(coverage_id)

    async def act() -> None:
        if wanted is None:
            raise NotFound("Rule not found.", code="coverage_not_found")
        await service.delete_coverage(session, actor, coverage_id=wanted)

    return await _settings_action(request, session, actor, act)


# --- console: reports ---------------------------------------------------------------------------


@router.get("/console/workorders/reports", name="console.workorders.reports")
async def reports_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    since = until - dt.timedelta(days=days)
    found = await service.report(
        session, actor, community_id=community.id if community else None, since=since, until=until
    )
    volume_chart = bar_chart(
        [(r.label, Decimal(r.orders)) for r in found.by_category],
        title=N_("Orders per category"),
        unit="",
    )
    sla_chart = bar_chart(
        [(r.label, r.completion_rate or Decimal(0)) for r in found.by_technician],
        title=N_("Completed within SLA, per technician (%)"),
        unit="%",
        maximum=Decimal(100),
    )
    return render(
        request,
        "workorders/reports.html",
        shell
        | {"report": found, "days": days, "volume_chart": volume_chart, "sla_chart": sla_chart},
    )


# --- console: one order ---------------------------------------------------------------------------


@router.get("/console/workorders/{order_id}", name="console.workorder")
async def order_page(request: Request, actor: Reader, session: StaffDb, order_id: str) -> Response:
    wanted = _order_id(order_id)
    shell = await console_shell(request, session, actor)
    order = await service.get_order(session, actor, order_id=wanted)
    context = await _order_context(session, actor, order)
    if actor.can(Permission.DESK_ORDERS_WRITE):
        context["technicians"] = await service.technicians(
            session, actor, community_id=order.community_id
        )
    return render(request, "workorders/order.html", shell | BASE_CONTEXT | context)


async def _order_context(session: AsyncSession, actor: Actor, order: WorkOrder) -> dict[str, Any]:
    timeline = await service.timeline(session, actor, order_id=order.id)
    return {
        "order": order,
        "timeline": timeline,
        "photos": await service.photos(session, actor, order_id=order.id),
        "charges": await service.charges(session, actor, order_id=order.id),
        "is_overdue": overdue,
        "now_utc": dt.datetime.now(dt.UTC),
        **await _labels(session, actor, [order]),
    }


@router.get("/console/workorders/{order_id}/photos/{photo_id}")
async def order_photo(
    request: Request,
    actor: Annotated[Actor, staff(Permission.COMMUNITIES_READ)],
    session: StaffDb,
    order_id: str,
    photo_id: str,
) -> Response:
    # Both the desk (any order it may read) and technicians (their own orders) see photos.
    if not (actor.can(Permission.DESK_ORDERS_READ) or actor.can(Permission.DESK_ORDERS_WORK)):
        raise PermissionDenied()
    photo_uuid = optional_uuid(photo_id)
    if photo_uuid is None:
        raise NotFound("Photo not found.", code="photo_not_found")
    photo = await service.get_photo(
        session, actor, order_id=_order_id(order_id), photo_id=photo_uuid
    )
    return Response(
        photo.data,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/console/workorders/{order_id}/assign", dependencies=[ConsoleCsrf])
async def assign(
    request: Request,
    actor: Writer,
    session: StaffDb,
    order_id: str,
    technician_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    await service.assign(
        session, actor, order_id=_order_id(order_id), technician_id=optional_uuid(technician_id)
    )
    return redirect(request, f"/console/workorders/{order_id}")


@router.post("/console/workorders/{order_id}/cancel", dependencies=[ConsoleCsrf])
async def cancel(
    request: Request,
    actor: Writer,
    session: StaffDb,
    order_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    await service.cancel(session, actor, order_id=_order_id(order_id), reason=reason)
    return redirect(request, f"/console/workorders/{order_id}")


# --- technician (mobile) --------------------------------------------------------------------------


@router.get("/console/tech", name="console.tech")
async def tech_queue(request: Request, actor: Worker, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    rows = await service.my_queue(session, actor)
    return render(
        request,
        "workorders/tech_queue.html",
        shell
        | BASE_CONTEXT
        | await _labels(session, actor, rows)
        | {"rows": rows, "is_overdue": overdue, "now_utc": dt.datetime.now(dt.UTC)},
    )


async def _tech_order_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    order_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    order = await service.get_order(session, actor, order_id=order_id)
    context = await _order_context(session, actor, order)
    return render(
        request,
        "workorders/tech_order.html",
        shell | BASE_CONTEXT | context | {"error": error, "mine": order.assignee_id == actor.id},
        status_code=status_code,
    )


@router.get("/console/tech/{order_id}", name="console.tech.order")
async def tech_order(request: Request, actor: Worker, session: StaffDb, order_id: str) -> Response:
    return await _tech_order_page(request, session, actor, _order_id(order_id))


async def _tech_action(
    request: Request, session: AsyncSession, actor: Actor, order_id: uuid.UUID, action: Any
) -> Response:
    failed = await attempt(session, action)
    if failed is not None:
        if failed.status == 404:
            raise failed
        return await _tech_order_page(
            request, session, actor, order_id, error=describe(failed), status_code=failed.status
        )
    return redirect(request, f"/console/tech/{order_id}")


@router.post("/console/tech/{order_id}/accept", dependencies=[ConsoleCsrf])
async def tech_accept(request: Request, actor: Worker, session: StaffDb, order_id: str) -> Response:
    wanted = _order_id(order_id)

    async def act() -> None:
        await service.accept(session, actor, order_id=wanted)

    return await _tech_action(request, session, actor, wanted, act)


@router.post("/console/tech/{order_id}/work", dependencies=[ConsoleCsrf])
async def tech_work(
    request: Request, actor: Worker, session: StaffDb, order_id: str, note: FormText = ""
) -> Response:
    wanted = _order_id(order_id)

    async def act() -> None:
        await service.record_work(session, actor, order_id=wanted, note=note)

    return await _tech_action(request, session, actor, wanted, act)


@router.post("/console/tech/{order_id}/charge", dependencies=[ConsoleCsrf])
async def tech_charge(
    request: Request,
    actor: Worker,
    session: StaffDb,
    order_id: str,
    kind: Annotated[str, Form(max_length=20)] = "",
    description: FormShort = "",
    quantity: Annotated[str, Form(max_length=20)] = "1",
    unit_price: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    wanted = _order_id(order_id)

    async def act() -> None:
        try:
            amount, qty = Decimal(unit_price), Decimal(quantity)
        except InvalidOperation as exc:
            raise ValidationFailed(
                errors=[FieldError("unit_price", "Not an amount.", "invalid")]
            ) from exc
        if amount.as_tuple().exponent < -2 or not description.strip():  # type: ignore[operator]
            raise ValidationFailed(
                errors=[FieldError("unit_price", "Yuan with at most two decimals.", "invalid")]
            )
        await service.add_charge(
            session,
            actor,
            order_id=wanted,
            kind=ChargeKind(kind) if kind in {k.value for k in ChargeKind} else ChargeKind.LABOUR,
            description=description,
            quantity=qty,
            unit_price=amount,
        )

    return await _tech_action(request, session, actor, wanted, act)


@router.post("/console/tech/{order_id}/photo", dependencies=[ConsoleCsrf])
async def tech_photo(
    request: Request, actor: Worker, session: StaffDb, order_id: str, photos: Photos
) -> Response:
    wanted = _order_id(order_id)
    data = await _uploads(photos)

    async def act() -> None:
        for item in data:
            await service.add_work_photo(session, actor, order_id=wanted, data=item)

    return await _tech_action(request, session, actor, wanted, act)


@router.post("/console/tech/{order_id}/finish", dependencies=[ConsoleCsrf])
async def tech_finish(
    request: Request, actor: Worker, session: StaffDb, order_id: str, note: FormText = ""
) -> Response:
    wanted = _order_id(order_id)

    async def act() -> None:
        await service.finish(session, actor, order_id=wanted, note=note)

    return await _tech_action(request, session, actor, wanted, act)


# --- portal ----------------------------------------------------------------------------------


async def _repairs_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    rows = await service.resident_orders(session, actor)
    return render(
        request,
        "workorders/portal_repairs.html",
        context | BASE_CONTEXT | {"rows": rows, "error": error},
        status_code=status_code,
    )


@router.get("/portal/repairs", name="portal.repairs")
async def repairs_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _repairs_page(request, session, actor)


async def _new_repair_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    house: str = "",
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    homes, _ = await residents.my_homes(session, actor)
    chosen = next((h for h in homes if str(h.house_id) == house), homes[0] if homes else None)
    categories = (
        await service.resident_categories(session, actor, house_id=chosen.house_id)
        if chosen
        else []
    )
    await set_tenant(session, None)
    return render(
        request,
        "workorders/portal_new.html",
        context
        | BASE_CONTEXT
        | {
            "homes": homes,
            "chosen": chosen,
            "categories": categories,
            "error": error,
            "form": form or {},
            "max_kb": service.MAX_PHOTO_BYTES // 1024,
        },
        status_code=status_code,
    )


@router.get("/portal/repairs/new", name="portal.repairs.new")
async def new_repair_page(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    house: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    return await _new_repair_page(request, session, actor, house=house)


@router.post("/portal/repairs/new", dependencies=[PortalCsrf])
async def submit_repair(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - FastAPI reads the default
    house_id: Annotated[str, Form(max_length=64)] = "",
    category_id: Annotated[str, Form(max_length=64)] = "",
    description: FormText = "",
    location: FormShort = "",
    preferred_from: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {"description": description, "location": location, "category_id": category_id}
    data = await _uploads(photos)

    async def act() -> None:
        house, category = optional_uuid(house_id), optional_uuid(category_id)
        if house is None or category is None:
            raise ValidationFailed(
                errors=[FieldError("category_id", "Choose a category.", "required")]
            )
        await service.create_resident_order(
            session,
            actor,
            house_id=house,
            new=service.NewOrder(
                community_id=uuid.UUID(int=0),
                category_id=category,
                description=description,
                location=location,
                preferred_from=_local(preferred_from, "Asia/Shanghai"),
            ),
            photos=data,
        )

    failed = await attempt(session, act)
    if failed is not None:
        return await _new_repair_page(
            request,
            session,
            actor,
            house=house_id,
            error=describe(failed),
            form=form,
            status_code=failed.status,
        )
    return redirect(request, "/portal/repairs")


@router.post("/portal/repairs/{order_id}/rate", dependencies=[PortalCsrf])
async def rate_repair(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    order_id: str,
    rating: Annotated[int, Form(ge=1, le=5)] = 5,
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    wanted = _order_id(order_id)

    async def act() -> None:
        await service.rate(session, actor, order_id=wanted, rating=rating, comment=comment)

    failed = await attempt(session, act)
    if failed is not None:
        if failed.status == 404:
            raise failed
        return await _repairs_page(
            request, session, actor, error=describe(failed), status_code=failed.status
        )
    return redirect(request, "/portal/repairs")

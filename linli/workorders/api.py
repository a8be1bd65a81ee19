"""Routes of the workorders domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.db.engine import unit_of_work
from linli.workorders import fastpath, service
from linli.workorders.models import OrderKind, OrderStatus, Priority, WorkOrderPhoto
from linli.workorders.schemas import (
    AssignIn,
    CalendarIn,
    CalendarRead,
    CancelIn,
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ChargeIn,
    ChargeRead,
    CoverageCreate,
    CoverageRead,
    EscalationResult,
    EventRead,
    FinishIn,
    HolidayIn,
    NoteIn,
    OrderCreate,
    OrderRead,
    PhotoRead,
    RateIn,
    ReportRead,
    ReportRowRead,
    ResidentOrderCreate,
    SlaTargetIn,
)

router = APIRouter(prefix="/api/v1/workorders", route_class=DeclaredRoute, tags=["workorders"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.DESK_ORDERS_READ))]
Writer = Annotated[Actor, Depends(Authorizer(Permission.DESK_ORDERS_WRITE))]
Worker = Annotated[Actor, Depends(Authorizer(Permission.DESK_ORDERS_WORK))]
Configurer = Annotated[Actor, Depends(Authorizer(Permission.DESK_CONFIGURE))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Paging = Annotated[PageParams, Depends(page_params)]
PhotoFile = Annotated[UploadFile, File(description="JPEG, PNG or WebP")]


def _sla(raw: dict[Priority, SlaTargetIn] | None) -> dict[Priority, service.SlaTarget] | None:
    if raw is None:
        return None
    return {p: service.SlaTarget(t.response_minutes, t.completion_minutes) for p, t in raw.items()}


async def _read_upload(upload: UploadFile) -> bytes:
    # One byte past the limit is enough for the service to refuse it as too large.
    return await upload.read(service.MAX_PHOTO_BYTES + 1)


# --- categories, calendars, routing rules ---------------------------------------------------


@router.post("/categories", response_model=CategoryRead, status_code=201)
async def create_category(
    actor: Configurer, session: DbSession, body: CategoryCreate
) -> CategoryRead:
    category = await service.create_category(
        session,
        actor,
        community_id=body.community_id,
        name=body.name,
        kind=body.kind,
        default_priority=body.default_priority,
        sla=_sla(body.sla),
    )
    return CategoryRead.model_validate(category)


@router.get("/categories", response_model=list[CategoryRead])
async def list_categories(
    actor: Reader,
    session: DbSession,
    community_id: uuid.UUID | None = None,
    include_archived: bool = False,
) -> list[CategoryRead]:
    rows = await service.list_categories(
        session, actor, community_id=community_id, include_archived=include_archived
    )
    return [CategoryRead.model_validate(r) for r in rows]


@router.get("/categories/{category_id}", response_model=CategoryRead)
async def get_category(actor: Reader, session: DbSession, category_id: uuid.UUID) -> CategoryRead:
    return CategoryRead.model_validate(
        await service.get_category(session, actor, category_id=category_id)
    )


@router.patch("/categories/{category_id}", response_model=CategoryRead)
async def update_category(
    actor: Configurer, session: DbSession, category_id: uuid.UUID, body: CategoryUpdate
) -> CategoryRead:
    category = await service.update_category(
        session,
        actor,
        category_id=category_id,
        name=body.name,
        default_priority=body.default_priority,
        sla=_sla(body.sla),
        archived=body.archived,
    )
    return CategoryRead.model_validate(category)


def _calendar(view: service.CalendarView) -> CalendarRead:
    return CalendarRead(
        community_id=view.community_id,
        timezone=view.timezone,
        weekly=view.weekly,
        holidays=[HolidayIn(day=h.day, kind=h.kind, name=h.name) for h in view.holidays],
        configured=view.configured,
    )


@router.get("/communities/{community_id}/calendar", response_model=CalendarRead)
async def get_calendar(actor: Reader, session: DbSession, community_id: uuid.UUID) -> CalendarRead:
    return _calendar(await service.get_calendar(session, actor, community_id=community_id))


@router.put(
    "/communities/{community_id}/calendar",
    response_model=CalendarRead,
    summary="Set working hours and holidays (SLA clocks count working time only)",
)
async def set_calendar(
    actor: Configurer, session: DbSession, community_id: uuid.UUID, body: CalendarIn
) -> CalendarRead:
    view = await service.set_calendar(
        session,
        actor,
        community_id=community_id,
        weekly=body.weekly,
        holidays=[service.HolidayEntry(h.day, h.kind, h.name) for h in body.holidays],
    )
    return _calendar(view)


@router.get("/coverage", response_model=list[CoverageRead], summary="Routing rules")
async def list_coverage(
    actor: Reader, session: DbSession, community_id: uuid.UUID | None = None
) -> list[CoverageRead]:
    rows = await service.list_coverage(session, actor, community_id=community_id)
    return [CoverageRead.model_validate(r) for r in rows]


@router.post("/coverage", response_model=CoverageRead, status_code=201)
async def add_coverage(actor: Configurer, session: DbSession, body: CoverageCreate) -> CoverageRead:
    row = await service.add_coverage(session, actor, **body.model_dump())
    return CoverageRead.model_validate(row)


@router.delete("/coverage/{coverage_id}", status_code=204)
async def delete_coverage(
    actor: Configurer, session: DbSession, coverage_id: uuid.UUID
) -> Response:
    await service.delete_coverage(session, actor, coverage_id=coverage_id)
    return Response(status_code=204)


# --- orders: front desk and dispatch ---------------------------------------------------------


@router.post(
    "/orders", response_model=OrderRead, status_code=201, summary="Open an order from a call"
)
async def create_order(actor: Writer, body: OrderCreate, idempotency: IdempotencyDep) -> Any:
    new = service.NewOrder(
        community_id=body.community_id,
        category_id=body.category_id,
        description=body.description,
        house_id=body.house_id,
        location=body.location,
        priority=body.priority,
        preferred_from=body.preferred_from,
        preferred_to=body.preferred_to,
        reporter_name=body.reporter_name,
        contact_phone=body.contact_phone,
    )
    if not body.auto_assign:  # the desk dispatches later: one statement, key included
        opened = await fastpath.create_order(
            actor,
            new=new,
            source=body.source,
            request=fastpath.RequestKey(idempotency.key, idempotency.request_hash),
        )
        if opened is not None:
            return opened
    async with unit_of_work(actor.tenant_id) as session:

        async def create() -> OrderRead:
            order = await service.create_order(
                session, actor, new=new, source=body.source, auto_assign=body.auto_assign
            )
            return OrderRead.model_validate(order)

        return await idempotency.run(session, actor, create, status_code=201)


@router.get("/orders", response_model=Page[OrderRead])
async def list_orders(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    status: OrderStatus | None = None,
    category_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    kind: OrderKind | None = None,
    overdue: Annotated[bool, Query(description="open orders past an SLA deadline")] = False,
    open_only: bool = False,
) -> Page[OrderRead]:
    rows, cursor = await service.list_orders(
        session,
        actor,
        filters=service.OrderFilter(
            community_id=community_id,
            status=status,
            category_id=category_id,
            assignee_id=assignee_id,
            kind=kind,
            overdue=overdue,
            open_only=open_only,
        ),
        page=page,
    )
    return Page[OrderRead].of(rows, cursor)


@router.get("/orders/{order_id}", response_model=OrderRead)
async def get_order(actor: Reader, session: DbSession, order_id: uuid.UUID) -> OrderRead:
    return OrderRead.model_validate(await service.get_order(session, actor, order_id=order_id))


@router.get("/orders/{order_id}/timeline", response_model=list[EventRead])
async def order_timeline(actor: Reader, session: DbSession, order_id: uuid.UUID) -> list[EventRead]:
    rows = await service.timeline(session, actor, order_id=order_id)
    return [EventRead.model_validate(r) for r in rows]


@router.get("/orders/{order_id}/charges", response_model=list[ChargeRead])
async def order_charges(actor: Reader, session: DbSession, order_id: uuid.UUID) -> list[ChargeRead]:
    rows = await service.charges(session, actor, order_id=order_id)
    return [ChargeRead.model_validate(r) for r in rows]


@router.get("/orders/{order_id}/photos", response_model=list[PhotoRead])
async def order_photos(actor: Reader, session: DbSession, order_id: uuid.UUID) -> list[PhotoRead]:
    rows = await service.photos(session, actor, order_id=order_id)
    return [PhotoRead(**vars(r)) for r in rows]


@router.get(
    "/orders/{order_id}/photos/{photo_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
async def order_photo(
    actor: Reader, session: DbSession, order_id: uuid.UUID, photo_id: uuid.UUID
) -> Response:
    photo = await service.get_photo(session, actor, order_id=order_id, photo_id=photo_id)
    return Response(
        photo.data,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/orders/{order_id}/photos", response_model=PhotoRead, status_code=201)
async def add_staff_photo(
    actor: Writer, session: DbSession, order_id: uuid.UUID, photo: PhotoFile
) -> PhotoRead:
    stored = await service.add_staff_photo(
        session, actor, order_id=order_id, data=await _read_upload(photo)
    )
    return _photo(stored)


def _photo(stored: WorkOrderPhoto) -> PhotoRead:
    return PhotoRead(
        id=stored.id,
        order_id=stored.order_id,
        stage=stored.stage,
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        size_bytes=stored.size_bytes,
        created_at=stored.created_at,
    )


@router.post("/orders/{order_id}/assign", response_model=OrderRead, summary="Dispatch (派单)")
async def assign(actor: Writer, order_id: uuid.UUID, body: AssignIn) -> OrderRead:
    if body.technician_id is None:  # the routing rules choose: one statement
        return OrderRead.model_validate(await fastpath.assign_auto(actor, order_id=order_id))
    async with unit_of_work(actor.tenant_id) as session:
        order = await service.assign(
            session, actor, order_id=order_id, technician_id=body.technician_id
        )
        return OrderRead.model_validate(order)


@router.post("/orders/{order_id}/cancel", response_model=OrderRead)
async def cancel(
    actor: Writer, session: DbSession, order_id: uuid.UUID, body: CancelIn
) -> OrderRead:
    order = await service.cancel(session, actor, order_id=order_id, reason=body.reason)
    return OrderRead.model_validate(order)


@router.post(
    "/escalations/run",
    response_model=EscalationResult,
    summary="Warn managers of orders about to breach their SLA now (the job does it every minute)",
)
async def run_escalation(actor: Writer, session: DbSession) -> EscalationResult:
    return EscalationResult(warned=await service.escalate_due(session, actor))


@router.get("/reports", response_model=ReportRead)
async def report(
    actor: Reader,
    session: DbSession,
    since: dt.datetime,
    until: dt.datetime,
    community_id: uuid.UUID | None = None,
) -> ReportRead:
    found = await service.report(
        session, actor, community_id=community_id, since=since, until=until
    )

    def row(r: service.ReportRow) -> ReportRowRead:
        return ReportRowRead(
            **{
                k: getattr(r, k)
                for k in ReportRowRead.model_fields
                if k not in ("response_rate", "completion_rate")
            },
            response_rate=r.response_rate,
            completion_rate=r.completion_rate,
        )

    return ReportRead(
        since=found.since,
        until=found.until,
        total=row(found.total),
        by_category=[row(r) for r in found.by_category],
        by_technician=[row(r) for r in found.by_technician],
    )


# --- the technician's queue --------------------------------------------------------------------


@router.get("/queue", response_model=list[OrderRead], summary="My assigned orders (technician)")
async def my_queue(actor: Worker, session: DbSession) -> list[OrderRead]:
    return [OrderRead.model_validate(o) for o in await service.my_queue(session, actor)]


@router.post("/orders/{order_id}/accept", response_model=OrderRead, summary="Accept (接单)")
async def accept(actor: Worker, order_id: uuid.UUID) -> OrderRead:
    return OrderRead.model_validate(await fastpath.accept(actor, order_id=order_id))


@router.post("/orders/{order_id}/work", response_model=OrderRead, summary="Record work done")
async def record_work(
    actor: Worker, session: DbSession, order_id: uuid.UUID, body: NoteIn
) -> OrderRead:
    order = await service.record_work(session, actor, order_id=order_id, note=body.note)
    return OrderRead.model_validate(order)


@router.post("/orders/{order_id}/charges", response_model=ChargeRead, status_code=201)
async def add_charge(
    actor: Worker,
    session: DbSession,
    order_id: uuid.UUID,
    body: ChargeIn,
    idempotency: IdempotencyDep,
) -> ChargeRead:
    async def create() -> ChargeRead:
        line = await service.add_charge(session, actor, order_id=order_id, **body.model_dump())
        return ChargeRead.model_validate(line)

    result: ChargeRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.post("/orders/{order_id}/work-photos", response_model=PhotoRead, status_code=201)
async def add_work_photo(
    actor: Worker, session: DbSession, order_id: uuid.UUID, photo: PhotoFile
) -> PhotoRead:
    stored = await service.add_work_photo(
        session, actor, order_id=order_id, data=await _read_upload(photo)
    )
    return _photo(stored)


@router.post("/orders/{order_id}/finish", response_model=OrderRead, summary="Finish (完工)")
async def finish(actor: Worker, order_id: uuid.UUID, body: FinishIn) -> OrderRead:
    return OrderRead.model_validate(await fastpath.finish(actor, order_id=order_id, note=body.note))


# --- residents ---------------------------------------------------------------------------------


@router.get("/resident/categories", response_model=list[CategoryRead])
async def resident_categories(
    actor: Resident, session: DbSession, house_id: uuid.UUID
) -> list[CategoryRead]:
    rows = await service.resident_categories(session, actor, house_id=house_id)
    return [CategoryRead.model_validate(r) for r in rows]


@router.post("/resident/orders", response_model=OrderRead, status_code=201, summary="Report (报修)")
async def resident_create(
    actor: Resident, session: DbSession, body: ResidentOrderCreate
) -> OrderRead:
    order = await service.create_resident_order(
        session,
        actor,
        house_id=body.house_id,
        new=service.NewOrder(
            community_id=uuid.UUID(int=0),  # taken from the house
            category_id=body.category_id,
            description=body.description,
            location=body.location,
            priority=body.priority,
            preferred_from=body.preferred_from,
            preferred_to=body.preferred_to,
        ),
    )
    return OrderRead.model_validate(order)


@router.get("/resident/orders", response_model=list[OrderRead], summary="My orders")
async def resident_list(actor: Resident, session: DbSession) -> list[OrderRead]:
    return [
        OrderRead.model_validate(r.order) for r in await service.resident_orders(session, actor)
    ]


@router.post("/resident/orders/{order_id}/photos", response_model=PhotoRead, status_code=201)
async def resident_photo(
    actor: Resident, session: DbSession, order_id: uuid.UUID, photo: PhotoFile
) -> PhotoRead:
    stored = await service.add_resident_photo(
        session, actor, order_id=order_id, data=await _read_upload(photo)
    )
    return _photo(stored)


@router.post(
    "/resident/orders/{order_id}/rate",
    response_model=OrderRead,
    summary="Confirm and rate; 1-2 stars reopen the order",
)
async def resident_rate(
    actor: Resident, session: DbSession, order_id: uuid.UUID, body: RateIn
) -> OrderRead:
    order = await service.rate(
        session, actor, order_id=order_id, rating=body.rating, comment=body.comment
    )
    return OrderRead.model_validate(order)

"""The API's hot path for dispatch and technician work: one write round trip per step.

The unit of work (ORM session: BEGIN, ``SET LOCAL``, a SELECT … FOR UPDATE, the UPDATE,
the timeline, audit and outbox INSERTs, COMMIT, each its own round trip and a few
hundred microseconds of client CPU) costs far more than the change it makes. Here a
step is one statement: a data-modifying CTE whose ``UPDATE … WHERE status = …`` is
the state check, so the transition is atomic under races (a second accept, a double
finish, an order cancelled meanwhile: PostgreSQL re-checks the WHERE on the row's
latest version and updates nothing) and the timeline event, the audit row and the
outbox event with its delivery job are written by the same statement, only for the
row it moved. It runs through :func:`linli.db.reads.write_rows` (tenant bound with
``set_config(…, true)``, one implicit transaction, one round trip).

Accept and finish first read the order (one read-only round trip): the SLA minutes are
counted in Python from the community's working calendar (cached for
``CALENDAR_TTL_SECONDS``; :func:`forget_calendar` drops it when it is set) and the
precise refusal (not found, not yours, wrong state) is chosen from that row. When the
write moves nothing, the order is read again and the same checks name the reason.

The page routes and other callers keep the ORM functions of :mod:`.service`; both
paths write the same rows (tests/workorders/test_fastpath.py compares them).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.permissions import Permission, Role
from linli.core import crypto, outbox
from linli.core.errors import Conflict, NotFound, PermissionDenied
from linli.core.ids import new_id
from linli.db.engine import unit_of_work
from linli.db.reads import ReadQuery, Record, read_rows, write_rows
from linli.estate.service import get_community, sees_all_communities
from linli.workorders import events
from linli.workorders.calendar import WorkingCalendar
from linli.workorders.models import OrderKind, OrderSource, OrderStatus, Priority
from linli.workorders.schemas import OrderRead

if TYPE_CHECKING:
    from linli.workorders.service import NewOrder

CALENDAR_TTL_SECONDS = 30.0

# What OrderRead shows, plus what the checks and events need.
_COLUMNS = (
    "id, number, community_id, kind, category_id, priority, status, source, house_id,"
    " location, description, preferred_from, preferred_to, assignee_id, created_at,"
    " assigned_at, accepted_at, finished_at, closed_at, response_due_at,"
    " completion_due_at, response_minutes, completion_minutes, response_met,"
    " completion_met, rating, rating_comment, reopen_count, reporter_account_id, tenant_id"
)
_SCOPE = "(:all_communities OR community_id = ANY(:communities))"

# What the checks, the SLA count and the events of accept and finish need.
_CHECKED = (
    "id, number, community_id, status, house_id, assignee_id, created_at, response_due_at,"
    " completion_due_at, response_minutes, reporter_account_id"
)
_ORDER = ReadQuery(
    text(
        f"SELECT {_CHECKED} FROM work_orders"  # noqa: S608 (constants joined; values bound)
        f" WHERE tenant_id = CAST(:tenant AS uuid) AND id = CAST(:order_id AS uuid) AND {_SCOPE}"
    )
)

# The timeline line, the audit row and (optionally) the outbox event with its delivery
# job, each written only when ``moved`` holds a row. ``deferred`` is a plain SELECT, so
# the final query references it: PostgreSQL runs an unreferenced SELECT CTE not at all.
_LOGGED = """
, logged AS (
    INSERT INTO work_order_events
        (tenant_id, id, order_id, kind, actor_kind, actor_id, actor_name, note, detail)
    SELECT tenant_id, CAST(:event_id AS uuid), id, :kind, :actor_kind,
           CAST(:actor_id AS uuid), :actor_name, :note, CAST(:detail AS jsonb)
    FROM moved
), audited AS (
    INSERT INTO audit_log
        (tenant_id, id, community_id, principal_kind, principal_id, action, target_type,
         target_id, request_id, ip, detail)
    SELECT tenant_id, CAST(:audit_id AS uuid), community_id, :actor_kind, :principal_id,
           :action, 'work_order', CAST(id AS text), :request_id, CAST(:ip AS inet),
           CAST(:detail AS jsonb)
    FROM moved
)"""
_EMITTED = """
, emitted AS (
    INSERT INTO outbox_events (tenant_id, id, event_type, payload, request_id)
    SELECT tenant_id, CAST(:outbox_id AS uuid), :event_type, CAST(:payload AS jsonb),
           :request_id
    FROM moved
), deferred AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,
           CAST(:job_args AS jsonb), NULL)::procrastinate_job_to_defer_v1]) AS jobs
    FROM moved
)"""

_ACCEPT = ReadQuery(
    text(
        f"""WITH moved AS (
    UPDATE work_orders
    SET status = 'in_progress', accepted_at = CAST(:now AS timestamptz),
        response_minutes = COALESCE(response_minutes, CAST(:minutes AS integer)),
        response_met = CASE WHEN response_minutes IS NULL
                            THEN CAST(:met AS boolean) ELSE response_met END
    WHERE tenant_id = CAST(:tenant AS uuid) AND id = CAST(:order_id AS uuid)
      AND status = 'assigned' AND assignee_id = CAST(:actor_id AS uuid)
    RETURNING {_COLUMNS}
){_LOGGED}
SELECT * FROM moved"""  # noqa: S608 (module constants joined; values bound)
    )
)

_FINISH = ReadQuery(
    text(
        f"""WITH moved AS (
    UPDATE work_orders
    SET status = 'finished', finished_at = CAST(:now AS timestamptz),
        completion_minutes = CAST(:minutes AS integer), completion_met = CAST(:met AS boolean)
    WHERE tenant_id = CAST(:tenant AS uuid) AND id = CAST(:order_id AS uuid)
      AND status = 'in_progress' AND assignee_id = CAST(:actor_id AS uuid)
    RETURNING {_COLUMNS}
){_LOGGED}{_EMITTED}
SELECT moved.*, (SELECT count(*) FROM deferred) AS deferred FROM moved"""  # noqa: S608 (module constants joined; values bound)
    )
)

# Auto-dispatch (派单) by the routing rules, as service.pick_technician: the most specific
# rule first, then the lightest open load, then the lowest id; only active technicians
# granted the community. The load is read, not locked: two dispatches at the same
# instant may both choose the same technician (as the ORM path may), and no dispatch
# waits on another. The order row itself is re-checked by the UPDATE.
_ASSIGN_AUTO = ReadQuery(
    text(
        f"""WITH target AS (
    SELECT tenant_id, id, community_id, category_id, building_id, status
    FROM work_orders
    WHERE tenant_id = CAST(:tenant AS uuid) AND id = CAST(:order_id AS uuid) AND {_SCOPE}
      AND (NOT :only_own OR assignee_id = CAST(:actor_id AS uuid))
), pick AS (
    SELECT c.technician_id
    FROM work_order_coverage c JOIN target t
      ON c.tenant_id = t.tenant_id AND c.community_id = t.community_id
    WHERE (c.category_id IS NULL OR c.category_id = t.category_id)
      AND (c.building_id IS NULL OR c.building_id = t.building_id)
      AND EXISTS (
        SELECT 1 FROM staff_users s
        WHERE s.tenant_id = c.tenant_id AND s.id = c.technician_id AND s.is_active
          AND :technician_role = ANY(s.roles)
          AND (s.all_communities OR EXISTS (
            SELECT 1 FROM staff_community_grants g
            WHERE g.tenant_id = s.tenant_id AND g.staff_id = s.id
              AND g.community_id = t.community_id)))
    ORDER BY (CASE WHEN c.category_id IS NOT NULL THEN 2 ELSE 0 END
              + CASE WHEN c.building_id IS NOT NULL THEN 1 ELSE 0 END) DESC,
             (SELECT count(*) FROM work_orders w
              WHERE w.tenant_id = c.tenant_id AND w.assignee_id = c.technician_id
                AND w.status IN ('assigned', 'in_progress')),
             c.technician_id
    LIMIT 1
), moved AS (
    UPDATE work_orders o
    SET assignee_id = pick.technician_id, assigned_at = CAST(:now AS timestamptz),
        status = 'assigned',
        accepted_at = CASE WHEN o.assignee_id IS DISTINCT FROM pick.technician_id
                           THEN NULL ELSE o.accepted_at END
    FROM target, pick
    WHERE o.tenant_id = target.tenant_id AND o.id = target.id
      AND o.status IN ('new', 'assigned', 'in_progress')
    RETURNING {", ".join("o." + c.strip() for c in _COLUMNS.split(","))}
), logged AS (
    INSERT INTO work_order_events
        (tenant_id, id, order_id, kind, actor_kind, actor_id, actor_name, note, detail)
    SELECT tenant_id, CAST(:event_id AS uuid), id, 'assigned', :actor_kind,
           CAST(:actor_id AS uuid), :actor_name, '',
           jsonb_build_object('technician_id', CAST(assignee_id AS text), 'auto', true)
    FROM moved
), audited AS (
    INSERT INTO audit_log
        (tenant_id, id, community_id, principal_kind, principal_id, action, target_type,
         target_id, request_id, ip, detail)
    SELECT tenant_id, CAST(:audit_id AS uuid), community_id, :actor_kind, :principal_id,
           'workorder.assigned', 'work_order', CAST(id AS text), :request_id,
           CAST(:ip AS inet),
           jsonb_build_object('technician_id', CAST(assignee_id AS text), 'auto', true)
    FROM moved
), emitted AS (
    INSERT INTO outbox_events (tenant_id, id, event_type, payload, request_id)
    SELECT tenant_id, CAST(:outbox_id AS uuid), :event_type,
           jsonb_build_object(
               'order_id', CAST(id AS text), 'number', number,
               'community_id', CAST(community_id AS text), 'status', 'assigned',
               'technician_ids', jsonb_build_array(CAST(assignee_id AS text)),
               'recipient_staff_ids', jsonb_build_array(CAST(assignee_id AS text))),
           :request_id
    FROM moved
), deferred AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,
           CAST(:job_args AS jsonb), NULL)::procrastinate_job_to_defer_v1]) AS jobs
    FROM moved
)
SELECT target.status AS found_status, (SELECT technician_id FROM pick) AS picked,
       (SELECT count(*) FROM deferred) AS deferred, moved.*
FROM target LEFT JOIN moved ON true"""  # noqa: S608 (module constants joined; values bound)
    )
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _not_found() -> Exception:
    from linli.workorders.service import _not_found as not_found

    return not_found()


def _scope(actor: Actor) -> dict[str, Any]:
    return {
        "all_communities": sees_all_communities(actor),
        "communities": sorted(actor.community_ids),
    }


def _who(actor: Actor, tenant_id: uuid.UUID) -> dict[str, Any]:
    return {
        "tenant": tenant_id,
        "actor_id": actor.id,
        "actor_kind": actor.kind.value,
        "actor_name": actor.display_name,
        "principal_id": str(actor.id),
        "request_id": actor.request_id,
        "ip": actor.ip,
        "event_id": new_id(),
        "audit_id": new_id(),
    }


def _emission(tenant_id: uuid.UUID, event_type: str) -> dict[str, Any]:
    event_id = new_id()
    return {
        "outbox_id": event_id,
        "event_type": event_type,
        "queue": "outbox",
        "task": outbox.DELIVER_TASK,
        "job_args": json.dumps({"tenant_id": str(tenant_id), "event_id": str(event_id)}),
    }


# --- the working calendar, cached per community ----------------------------------------------

_calendars: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, WorkingCalendar]] = {}


def forget_calendar(tenant_id: uuid.UUID, community_id: uuid.UUID) -> None:
    """Drop a cached calendar (its hours or holidays changed in this process)."""
    _calendars.pop((tenant_id, community_id), None)
    for key in [k for k in _facts if k[:2] == (tenant_id, community_id)]:
        _facts.pop(key, None)


async def cached_calendar(tenant_id: uuid.UUID, community_id: uuid.UUID) -> WorkingCalendar:
    """The community's working calendar, read at most once per ``CALENDAR_TTL_SECONDS``.

    Another process's change shows here within the TTL: an SLA minute count may use
    the hours of up to that long ago, never another community's.
    """
    key = (tenant_id, community_id)
    now = time.monotonic()
    hit = _calendars.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    from linli.workorders.service import working_calendar

    async with unit_of_work(tenant_id) as session:
        calendar = await working_calendar(
            session, Actor.system(tenant_id), community_id=community_id
        )
    if len(_calendars) > 10_000:
        _calendars.clear()
    _calendars[key] = (now + CALENDAR_TTL_SECONDS, calendar)
    return calendar


# --- accept and finish -------------------------------------------------------------------------


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise _not_found()
    return actor.tenant_id


async def _read(actor: Actor, tenant_id: uuid.UUID, order_id: uuid.UUID) -> Record:
    """The order as :func:`service._mine` checks it: 404 unless yours or desk-visible, 403."""
    rows = await read_rows(
        tenant_id, _ORDER, {"tenant": tenant_id, "order_id": order_id, **_scope(actor)}
    )
    order = rows[0] if rows else None
    if order is None or (
        order["assignee_id"] != actor.id and not actor.can(Permission.DESK_ORDERS_READ)
    ):
        raise _not_found()
    if order["assignee_id"] != actor.id:
        raise PermissionDenied(
            "Only the assigned technician may do this.", code="not_assigned_to_you"
        )
    return order


def _not_assigned() -> Conflict:
    return Conflict("Only an assigned order can be accepted.", code="order_not_assigned")


def _not_in_progress() -> Conflict:
    return Conflict("Accept the order first.", code="order_not_in_progress")


async def accept(actor: Actor, *, order_id: uuid.UUID) -> Record:
    """The technician takes the order (接单); as :func:`service.accept`, in one write."""
    tenant_id = _tenant(actor)
    order = await _read(actor, tenant_id, order_id)
    if order["status"] != OrderStatus.ASSIGNED:
        raise _not_assigned()
    now = _now()
    minutes: int | None = None
    met: bool | None = None
    if order["response_minutes"] is None:
        calendar = await cached_calendar(tenant_id, order["community_id"])
        minutes = calendar.working_minutes_between(order["created_at"], now)
        met = now <= order["response_due_at"]
    [moved] = await write_rows(
        tenant_id,
        [
            (
                _ACCEPT,
                {
                    **_who(actor, tenant_id),
                    "order_id": order_id,
                    "now": now,
                    "minutes": minutes,
                    "met": met,
                    "kind": "accepted",
                    "note": "",
                    "detail": "{}",
                    "action": "workorder.accepted",
                },
            )
        ],
    )
    if not moved:
        await _read(actor, tenant_id, order_id)  # gone, or no longer yours: say so
        raise _not_assigned()  # accepted (or moved on) meanwhile
    return moved[0]


async def finish(actor: Actor, *, order_id: uuid.UUID, note: str = "") -> Record:
    """The technician finishes (完工); as :func:`service.finish`, in one write."""
    tenant_id = _tenant(actor)
    order = await _read(actor, tenant_id, order_id)
    if order["status"] != OrderStatus.IN_PROGRESS:
        raise _not_in_progress()
    now = _now()
    calendar = await cached_calendar(tenant_id, order["community_id"])
    reporter = order["reporter_account_id"]
    payload = {
        "order_id": str(order["id"]),
        "number": order["number"],
        "community_id": str(order["community_id"]),
        "status": OrderStatus.FINISHED.value,
        "resident_account_ids": [str(reporter)] if reporter else [],
        "house_id": str(order["house_id"]) if order["house_id"] else None,
    }
    [moved] = await write_rows(
        tenant_id,
        [
            (
                _FINISH,
                {
                    **_who(actor, tenant_id),
                    **_emission(tenant_id, events.FINISHED),
                    "order_id": order_id,
                    "now": now,
                    "minutes": calendar.working_minutes_between(order["created_at"], now),
                    "met": now <= order["completion_due_at"],
                    "kind": "finished",
                    "note": note.strip(),
                    "detail": "{}",
                    "action": "workorder.finished",
                    "payload": json.dumps(payload),
                },
            )
        ],
    )
    if not moved:
        await _read(actor, tenant_id, order_id)
        raise _not_in_progress()  # finished (or cancelled) meanwhile
    return moved[0]


# --- auto-dispatch -----------------------------------------------------------------------------


async def assign_auto(actor: Actor, *, order_id: uuid.UUID) -> Record:
    """Dispatch by the routing rules (自动派单); as :func:`service.assign` with no technician."""
    tenant_id = _tenant(actor)
    [rows] = await write_rows(
        tenant_id,
        [
            (
                _ASSIGN_AUTO,
                {
                    **_who(actor, tenant_id),
                    **_emission(tenant_id, events.ASSIGNED),
                    **_scope(actor),
                    "order_id": order_id,
                    "only_own": _only_own(actor),
                    "technician_role": Role.TECHNICIAN.value,
                    "now": _now(),
                },
            )
        ],
    )
    if not rows:
        raise _not_found()
    row = rows[0]
    if row["id"] is not None:
        del row["found_status"], row["picked"], row["deferred"]
        return row
    if row["found_status"] not in (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS):
        raise _not_open()
    if row["picked"] is None:
        raise Conflict(
            "No routing rule matches this order; choose a technician.", code="no_technician"
        )
    raise _not_open()  # closed or cancelled between the read and the update


def _not_open() -> Conflict:
    return Conflict("This order can no longer be dispatched.", code="order_not_open")


def _only_own(actor: Actor) -> bool:
    return actor.kind is PrincipalKind.STAFF and not actor.can(Permission.DESK_ORDERS_READ)


# --- opening an order from a call ----------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What opening an order in (community, category) reads, cached; re-checked by the INSERT."""

    timezone: str
    calendar: WorkingCalendar
    kind: OrderKind
    default_priority: Priority
    sla: dict[str, Any]


_facts: dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], tuple[float, _Facts]] = {}


async def _facts_of(
    tenant_id: uuid.UUID, community_id: uuid.UUID, category_id: uuid.UUID
) -> _Facts | None:
    """The community's time zone and calendar and the category's SLA; None when not open here."""
    key = (tenant_id, community_id, category_id)
    now = time.monotonic()
    hit = _facts.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    from linli.workorders import service

    system = Actor.system(tenant_id)
    try:
        async with unit_of_work(tenant_id) as session:
            community = await get_community(session, system, community_id=community_id)
            category = await service.get_category(session, system, category_id=category_id)
            calendar = await service.working_calendar(
                session, system, community_id=community_id, timezone=community.timezone
            )
    except NotFound:
        return None
    if category.community_id != community_id or category.archived_at is not None:
        return None
    facts = _Facts(
        community.timezone, calendar, category.kind, category.default_priority, category.sla
    )
    if len(_facts) > 10_000:
        _facts.clear()
    _facts[key] = (now + CALENDAR_TTL_SECONDS, facts)
    _calendars[(tenant_id, community_id)] = (now + CALENDAR_TTL_SECONDS, calendar)
    return facts


# The category (its kind, default priority and SLA as cached) and the community (open,
# in the cached time zone) are re-read by the INSERT itself: when either changed, nothing
# is written and the caller takes the ORM path, which reads them afresh.
_CREATE = ReadQuery(
    text(
        f"""WITH fresh AS (
    SELECT c.tenant_id FROM work_order_categories c
    WHERE c.tenant_id = CAST(:tenant AS uuid) AND c.id = CAST(:category_id AS uuid)
      AND c.community_id = CAST(:community_id AS uuid) AND c.archived_at IS NULL
      AND c.kind = CAST(:order_kind AS work_order_kind)
      AND c.default_priority = CAST(:default_priority AS work_order_priority)
      AND c.sla = CAST(:sla AS jsonb)
      AND EXISTS (
        SELECT 1 FROM communities m
        WHERE m.tenant_id = c.tenant_id AND m.id = c.community_id
          AND m.archived_at IS NULL AND m.timezone = :timezone)
), kept AS (
    INSERT INTO idempotency_keys (principal, key, request_hash, status_code, response_body)
    SELECT :principal, :idempotency_key, :request_hash, 201, CAST(:response AS jsonb)
    FROM fresh WHERE CAST(:idempotency_key AS text) IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING key
), moved AS (
    INSERT INTO work_orders
        (tenant_id, id, community_id, number, kind, category_id, priority, status, source,
         house_id, building_id, location, description, preferred_from, preferred_to,
         reporter_account_id, reporter_name, contact_phone_enc, created_by_staff_id,
         response_due_at, completion_due_at, response_warn_at, completion_warn_at,
         rating_comment, reopen_count, created_at)
    SELECT tenant_id, CAST(:order_id AS uuid), CAST(:community_id AS uuid), :number,
           CAST(:order_kind AS work_order_kind), CAST(:category_id AS uuid),
           CAST(:priority AS work_order_priority), 'new', CAST(:source AS work_order_source),
           NULL, NULL, :location, :description, CAST(:preferred_from AS timestamptz),
           CAST(:preferred_to AS timestamptz), CAST(:reporter_account_id AS uuid),
           :reporter_name, CAST(:contact_phone_enc AS bytea),
           CAST(:created_by_staff_id AS uuid), CAST(:response_due_at AS timestamptz),
           CAST(:completion_due_at AS timestamptz), CAST(:response_warn_at AS timestamptz),
           CAST(:completion_warn_at AS timestamptz), '', 0, CAST(:now AS timestamptz)
    FROM fresh
    WHERE CAST(:idempotency_key AS text) IS NULL OR EXISTS (SELECT 1 FROM kept)
    RETURNING tenant_id, id, community_id
){_LOGGED}{_EMITTED}
SELECT (SELECT count(*) FROM fresh) AS fresh, (SELECT count(*) FROM moved) AS moved,
       (SELECT count(*) FROM deferred) AS deferred"""  # noqa: S608 (constants joined; values bound)
    )
)


@dataclass(frozen=True)
class RequestKey:
    """An ``Idempotency-Key`` and the hash of its request (linli.core.idempotency)."""

    key: str | None
    request_hash: str


async def create_order(
    actor: Actor,
    *,
    new: NewOrder,
    source: OrderSource,
    request: RequestKey,
) -> OrderRead | None:
    """Open an order from the desk (no house, no auto-dispatch) in one write.

    Returns the order as the API shows it, or None when this path does not apply
    (a community or category not open to the actor, changed since cached, or an
    ``Idempotency-Key`` seen before): the caller then runs :func:`service.create_order`
    in a unit of work, which refuses, replays or creates exactly as before.
    """
    from linli.workorders import service

    service.check_new_order(new)
    tenant_id = actor.tenant_id
    if (
        tenant_id is None
        or new.house_id is not None
        or not (sees_all_communities(actor) or new.community_id in actor.community_ids)
    ):
        return None
    facts = await _facts_of(tenant_id, new.community_id, new.category_id)
    if facts is None:
        return None
    phone = crypto.normalize_phone(new.contact_phone) if new.contact_phone else None
    priority = new.priority or facts.default_priority
    sla = service.sla_from(facts.sla, priority)
    now = _now()
    order_id = new_id()
    response_due = facts.calendar.add_working_minutes(now, sla.response_minutes)
    completion_due = facts.calendar.add_working_minutes(now, sla.completion_minutes)
    shown: dict[str, Any] = {
        "id": order_id,
        "number": service.order_number(order_id, now, facts.timezone),
        "community_id": new.community_id,
        "kind": facts.kind,
        "category_id": new.category_id,
        "priority": priority,
        "status": OrderStatus.NEW,
        "source": source,
        "house_id": None,
        "location": new.location.strip(),
        "description": new.description.strip(),
        "preferred_from": new.preferred_from,
        "preferred_to": new.preferred_to,
        "assignee_id": None,
        "created_at": now,
        "assigned_at": None,
        "accepted_at": None,
        "finished_at": None,
        "closed_at": None,
        "response_due_at": response_due,
        "completion_due_at": completion_due,
        "response_minutes": None,
        "completion_minutes": None,
        "response_met": None,
        "completion_met": None,
        "rating": None,
        "rating_comment": "",
        "reopen_count": 0,
    }
    order = OrderRead.model_validate(shown)
    response = order.model_dump(mode="json")
    detail = {"source": source.value, "priority": priority.value}
    payload = {
        "order_id": str(order_id),
        "number": shown["number"],
        "community_id": str(new.community_id),
        "status": OrderStatus.NEW.value,
        "kind": facts.kind.value,
    }
    [rows] = await write_rows(
        tenant_id,
        [
            (
                _CREATE,
                {
                    **_who(actor, tenant_id),
                    **_emission(tenant_id, events.CREATED),
                    **{k: shown[k] for k in _SHOWN_PARAMS},
                    "tenant": tenant_id,
                    "order_id": order_id,
                    "order_kind": facts.kind.value,
                    "kind": "created",
                    "default_priority": facts.default_priority.value,
                    "sla": json.dumps(facts.sla),
                    "timezone": facts.timezone,
                    "priority": priority.value,
                    "source": source.value,
                    "now": now,
                    "reporter_account_id": None,
                    "reporter_name": new.reporter_name.strip(),
                    "contact_phone_enc": crypto.encrypt(phone) if phone else None,
                    "created_by_staff_id": actor.id if actor.kind is PrincipalKind.STAFF else None,
                    "response_warn_at": service.warn_at(now, response_due),
                    "completion_warn_at": service.warn_at(now, completion_due),
                    "principal": actor.principal,
                    "idempotency_key": request.key,
                    "request_hash": request.request_hash,
                    "response": json.dumps(response),
                    "note": shown["description"][:200],
                    "detail": json.dumps(detail),
                    "action": "workorder.created",
                    "payload": json.dumps(payload),
                },
            )
        ],
    )
    if not rows or not rows[0]["moved"]:
        if not rows or not rows[0]["fresh"]:
            _facts.pop((tenant_id, new.community_id, new.category_id), None)
        return None
    return order


_SHOWN_PARAMS = (
    "number",
    "community_id",
    "category_id",
    "location",
    "description",
    "preferred_from",
    "preferred_to",
    "response_due_at",
    "completion_due_at",
)

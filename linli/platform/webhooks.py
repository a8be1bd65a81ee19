"""Webhooks of partner apps, per the Standard Webhooks spec, fed by the outbox.

The ``platform-webhooks`` outbox consumer turns one event into one delivery row
per subscribed installation (one ``INSERT … SELECT``, idempotent on
``(installation, event)``), in its own transaction, and queues a dispatch job per
installation. The outbox records the consumer only after that commit, so an
event is never lost, and a repeat inserts nothing new.

A dispatch job leases a batch of due deliveries of one installation, sends them
concurrently (each with a timeout), and records the outcome. Failures come back
with exponential backoff for 3 days; then the delivery is ``failed`` and, if the
receiver has not accepted anything since, the app's webhook is disabled and the
developer portal shows a notice. Each installation has its own job, so a slow
or dead receiver never holds up another's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
from procrastinate import RetryStrategy
from sqlalchemy import (
    String,
    Uuid,
    cast,
    exists,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from linli.auth.actor import Actor
from linli.core import audit
from linli.core.consumers import DeliveredEvent, EventConsumer, register
from linli.core.errors import NotFound, PermissionDenied
from linli.core.logging import get_logger
from linli.db.engine import unit_of_work
from linli.estate import service as estate_service
from linli.jobs import defer_in_transaction, job_app
from linli.platform import events as platform_events
from linli.platform import service as platform_service
from linli.platform.models import (
    DeliveryStatus,
    Installation,
    InstallationCommunity,
    PartnerApp,
    ReviewStatus,
    WebhookDelivery,
)

log = get_logger(__name__)

CONSUMER_NAME = "platform-webhooks"
DISPATCH_TASK = "linli.platform.webhooks.dispatch"
SWEEP_TASK = "linli.platform.webhooks.sweep"
QUEUE = "webhooks"
BATCH = 200
CONCURRENCY = 32  # requests in flight per installation
TIMEOUT_SECONDS = 10.0  # a whole request; a slow receiver is cut here and retried later
CONNECT_SECONDS = 3.0
LEASE = dt.timedelta(seconds=60)
GIVE_UP_AFTER = dt.timedelta(days=3)
# Waits after the 1st, 2nd, … failed attempt (Standard Webhooks' suggested shape,
# stretched so the last attempt falls about 3 days after the first).
BACKOFF = [
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=14),
    dt.timedelta(hours=20),
    dt.timedelta(hours=24),
]
INSTALLATION_HEADER = "linli-installation-id"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff(attempts: int) -> dt.timedelta:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1] if attempts > 0 else dt.timedelta(0)


def payload_of(event: DeliveredEvent) -> str:
    """The Standard Webhooks body: ``type``, ``timestamp``, ``data`` (+ linli's ids)."""
    return json.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "timestamp": event.created_at.isoformat(),
            "tenant_id": str(event.tenant_id),
            "data": event.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


# --- outbox -> delivery rows -----------------------------------------------------------------


async def _community_of(
    session: AsyncSession, tenant_id: uuid.UUID, payload: dict[str, Any]
) -> uuid.UUID | None:
    raw = payload.get("community_id")
    if raw is None and payload.get("house_id"):
        try:
            house = await estate_service.get_house(
                session,
                Actor.system(tenant_id),
                house_id=uuid.UUID(str(payload["house_id"])),
                include_archived=True,
            )
        except (NotFound, ValueError):
            return None
        return house.community_id
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


async def fan_out(session: AsyncSession, event: DeliveredEvent) -> list[uuid.UUID]:
    """Insert the event's deliveries; the installations that got a new one."""
    needed = platform_events.CATALOG.get(event.type, "-")
    if needed == "-":
        return []
    community = await _community_of(session, event.tenant_id, event.payload)
    conditions = [
        Installation.revoked_at.is_(None),
        PartnerApp.events.contains(cast([event.type], ARRAY(String(80)))),
        PartnerApp.webhook_url != "",
        PartnerApp.webhook_disabled_at.is_(None),
        PartnerApp.review_status != ReviewStatus.SUSPENDED.value,
    ]
    if needed is not None:
        conditions.append(Installation.granted_scopes.contains(cast([needed], ARRAY(String(40)))))
    if community is not None:
        conditions.append(
            exists().where(
                InstallationCommunity.tenant_id == Installation.tenant_id,
                InstallationCommunity.installation_id == Installation.id,
                InstallationCommunity.community_id == community,
            )
        )
    now = _now()
    chosen = (
        select(
            Installation.tenant_id,
            func.linli_uuid7(),
            Installation.id,
            Installation.app_id,
            literal(event.id, Uuid()),
            literal(event.type, String()),
            literal(payload_of(event), String()),
            literal(DeliveryStatus.PENDING.value, String()),
            literal(0),
            literal(now),
            literal(""),
        )
        .join(PartnerApp, PartnerApp.id == Installation.app_id)
        .where(*conditions)
    )
    statement = (
        insert(WebhookDelivery)
        .from_select(
            [
                "tenant_id",
                "id",
                "installation_id",
                "app_id",
                "event_id",
                "event_type",
                "body",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
            ],
            chosen,
        )
        .on_conflict_do_nothing()
        .returning(WebhookDelivery.installation_id)
    )
    installations = list((await session.scalars(statement)).all())
    await queue_dispatches(session, event.tenant_id, installations)
    return installations


# One statement queues a dispatch job for every installation that has none waiting.
_QUEUE_MANY = text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY(
      SELECT ROW(:queue, :task, 0, 'webhooks:' || i::text, 'webhooks:' || i::text,
                 jsonb_build_object('tenant_id', CAST(:tenant AS text),
                                    'installation_id', i::text),
                 NULL)::procrastinate_job_to_defer_v1
      FROM unnest(CAST(:ids AS uuid[])) AS i
      WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.queueing_lock = 'webhooks:' || i::text AND j.status = 'todo')
    ))
    """
)


async def queue_dispatches(
    session: AsyncSession, tenant_id: uuid.UUID, installations: list[uuid.UUID]
) -> None:
    """Queue dispatch jobs for many installations in one round trip (per-row on a race)."""
    if not installations:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                _QUEUE_MANY,
                {
                    "queue": QUEUE,
                    "task": DISPATCH_TASK,
                    "tenant": str(tenant_id),
                    "ids": installations,
                },
            )
    except IntegrityError:  # another transaction queued one meanwhile: go one by one
        for installation_id in installations:
            await queue_dispatch(session, tenant_id, installation_id)


async def queue_dispatch(
    session: AsyncSession, tenant_id: uuid.UUID, installation_id: uuid.UUID
) -> None:
    """Queue a dispatch job for the installation unless one is already waiting."""
    try:
        async with session.begin_nested():
            await defer_in_transaction(
                session,
                DISPATCH_TASK,
                queue=QUEUE,
                lock=f"webhooks:{installation_id}",
                queueing_lock=f"webhooks:{installation_id}",
                tenant_id=str(tenant_id),
                installation_id=str(installation_id),
            )
    except IntegrityError:
        pass  # a waiting job will see this delivery too


class WebhookConsumer(EventConsumer):
    """Outbox consumer: event -> one delivery row per subscribed installation."""

    name = CONSUMER_NAME

    async def handle(self, event: DeliveredEvent) -> None:
        async with unit_of_work(event.tenant_id) as session:
            await fan_out(session, event)


register(WebhookConsumer())


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    delivery_id: uuid.UUID
    ok: bool
    status_code: int | None
    error: str


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def http_client() -> aiohttp.ClientSession:
    """One keep-alive session per event loop (aiohttp: several times httpx's rate here)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS, connect=CONNECT_SECONDS),
            auto_decompress=False,
        )
        _sessions[loop] = session
    return session


async def close_http_clients() -> None:
    """Close this loop's session (tests and shutdown; aiohttp warns on unclosed ones)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


async def send_one(
    http: aiohttp.ClientSession,
    signer: Webhook,
    url: str,
    delivery: WebhookDelivery,
) -> Outcome:
    now = _now()
    msg_id = f"msg_{delivery.event_id}"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(msg_id, now, delivery.body),
        INSTALLATION_HEADER: str(delivery.installation_id),
    }
    try:
        async with http.post(
            url,
            data=delivery.body.encode(),
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS, connect=CONNECT_SECONDS),
        ) as response:
            status = response.status
            await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Outcome(delivery.id, False, None, type(exc).__name__)
    if 200 <= status < 300:
        return Outcome(delivery.id, True, status, "")
    return Outcome(delivery.id, False, status, f"HTTP {status}")


async def _send_all(
    http: aiohttp.ClientSession, signer: Webhook, url: str, deliveries: list[WebhookDelivery]
) -> list[Outcome]:
    """Send concurrently, at most CONCURRENCY in flight: one slow answer holds up no other."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(delivery: WebhookDelivery) -> Outcome:
        async with gate:
            return await send_one(http, signer, url, delivery)

    return list(await asyncio.gather(*(send(d) for d in deliveries)))


async def _lease(
    tenant_id: uuid.UUID, installation_id: uuid.UUID
) -> tuple[list[WebhookDelivery], PartnerApp | None, bool]:
    """Take a batch of due deliveries (pushing their next attempt a lease ahead)."""
    async with unit_of_work(tenant_id) as session:
        installation = await session.get(Installation, (tenant_id, installation_id))
        if installation is None:
            return [], None, False
        app = await session.get(PartnerApp, installation.app_id)
        if app is None:
            return [], None, False
        now = _now()
        if installation.revoked_at is not None:
            reason = "installation revoked"
        elif app.review_status == ReviewStatus.SUSPENDED.value:
            reason = "app suspended"
        elif app.webhook_disabled_at is not None:
            reason = "webhook disabled"
        else:
            reason = ""
        if reason:
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.installation_id == installation_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                )
                .values(status=DeliveryStatus.FAILED.value, last_error=reason)
            )
            return [], app, False
        due = (
            await session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.installation_id == installation_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if due:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([d.id for d in due]))
                .values(next_attempt_at=now + LEASE)
            )
        session.expunge_all()
        return list(due), app, True


async def _record(
    tenant_id: uuid.UUID,
    app: PartnerApp,
    deliveries: list[WebhookDelivery],
    outcomes: list[Outcome],
) -> None:
    by_id = {d.id: d for d in deliveries}
    now = _now()
    ok = [o.delivery_id for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    gave_up: list[uuid.UUID] = []
    async with unit_of_work(tenant_id) as session:
        if ok:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ok))
                .values(
                    status=DeliveryStatus.DELIVERED.value,
                    attempts=WebhookDelivery.attempts + 1,
                    delivered_at=now,
                    last_status_code=200,
                    last_error="",
                )
            )
        rows = []
        for outcome in failed:
            delivery = by_id[outcome.delivery_id]
            attempts = delivery.attempts + 1
            expired = now - delivery.created_at >= GIVE_UP_AFTER
            if expired:
                gave_up.append(delivery.id)
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": delivery.id,
                    "attempts": attempts,
                    "next_attempt_at": now + backoff(attempts),
                    "last_status_code": outcome.status_code,
                    "last_error": outcome.error[:300],
                    "status": (DeliveryStatus.FAILED if expired else DeliveryStatus.PENDING).value,
                }
            )
        if rows:
            # ORM bulk UPDATE by primary key: one executemany for the whole batch.
            await session.execute(update(WebhookDelivery), rows)
        if gave_up and not ok:
            await _maybe_disable(session, app, tenant_id, gave_up)


async def _maybe_disable(
    session: AsyncSession, app: PartnerApp, tenant_id: uuid.UUID, gave_up: list[uuid.UUID]
) -> None:
    """Persistent failure: nothing accepted for the whole retry window -> disable, with notice."""
    since = _now() - GIVE_UP_AFTER
    accepted = await session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.app_id == app.id, WebhookDelivery.delivered_at >= since)
    )
    if accepted:
        return
    await session.execute(
        update(PartnerApp)
        .where(PartnerApp.id == app.id, PartnerApp.webhook_disabled_at.is_(None))
        .values(webhook_disabled_at=_now())
    )
    await audit.record(
        session,
        Actor.system(tenant_id),
        "platform.webhook.disabled",
        target_type="app",
        target_id=app.id,
        detail={"failed_deliveries": len(gave_up)},
    )
    log.warning("platform.webhook_disabled", app_id=str(app.id))


async def dispatch_installation(
    tenant_id: uuid.UUID, installation_id: uuid.UUID, *, http: aiohttp.ClientSession | None = None
) -> int:
    """Send every due delivery of one installation. Returns how many were accepted."""
    http = http or http_client()
    accepted = 0
    while True:
        deliveries, app, go_on = await _lease(tenant_id, installation_id)
        if not go_on or app is None or not deliveries:
            break
        signer = Webhook(platform_service.webhook_secret(app))
        outcomes = await _send_all(http, signer, app.webhook_url, deliveries)
        await _record(tenant_id, app, deliveries, outcomes)
        accepted += sum(1 for o in outcomes if o.ok)
        if len(deliveries) < BATCH:
            break
    await _schedule_next(tenant_id, installation_id)
    return accepted


async def _schedule_next(tenant_id: uuid.UUID, installation_id: uuid.UUID) -> None:
    async with unit_of_work(tenant_id) as session:
        nxt = await session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.installation_id == installation_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
        )
    if nxt is None:
        return
    try:
        await job_app.configure_task(
            DISPATCH_TASK,
            queue=QUEUE,
            lock=f"webhooks:{installation_id}",
            queueing_lock=f"webhooks-later:{installation_id}",
            schedule_at=max(nxt, _now()),
        ).defer_async(tenant_id=str(tenant_id), installation_id=str(installation_id))
    except Exception as exc:  # already scheduled; the sweeper is the backstop anyway
        log.debug("platform.webhook_schedule_skipped", error=type(exc).__name__)


class _RetrySoon(RetryStrategy):
    pass


@job_app.task(name=DISPATCH_TASK, queue=QUEUE, retry=_RetrySoon(max_attempts=5, wait=10))
async def dispatch(tenant_id: str, installation_id: str) -> None:
    await dispatch_installation(uuid.UUID(tenant_id), uuid.UUID(installation_id))


async def sweep_due() -> int:
    """Backstop: queue a dispatch for every installation with due deliveries, company by company."""
    from linli.core.tasks import _tenant_ids

    queued = 0
    for tenant_id in await _tenant_ids():
        async with unit_of_work(tenant_id) as session:
            ids = (
                await session.scalars(
                    select(WebhookDelivery.installation_id)
                    .where(
                        WebhookDelivery.status == DeliveryStatus.PENDING.value,
                        WebhookDelivery.next_attempt_at <= _now(),
                    )
                    .distinct()
                )
            ).all()
            for installation_id in ids:
                await queue_dispatch(session, tenant_id, installation_id)
                queued += 1
    return queued


@job_app.periodic(cron="*/5 * * * *", periodic_id="webhooks-sweep")
@job_app.task(name=SWEEP_TASK, queue=QUEUE, queueing_lock=SWEEP_TASK)
async def sweep(timestamp: int) -> None:
    await sweep_due()


async def delivery_rows(session: AsyncSession, installation_id: uuid.UUID) -> list[WebhookDelivery]:
    """One installation's deliveries, oldest first (the company's view and tests)."""
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.installation_id == installation_id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return list(rows)


# --- the developer's delivery log and replay -----------------------------------------------


async def delivery_log(
    developer: platform_service.DeveloperPrincipal,
    app_id: uuid.UUID,
    *,
    limit: int = 100,
    owner_checked: bool = False,
) -> list[WebhookDelivery]:
    """Recent deliveries of one of the developer's apps, across the companies that installed it.

    Deliveries live under each company's RLS, so this reads company by company.
    """
    from linli.core.tasks import _tenant_ids

    if not owner_checked:
        async with unit_of_work() as session:
            await platform_service.my_app(session, developer, app_id)
    found: list[WebhookDelivery] = []
    for tenant_id in await _tenant_ids():
        async with unit_of_work(tenant_id) as session:
            rows = (
                await session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.app_id == app_id)
                    .order_by(WebhookDelivery.created_at.desc())
                    .limit(limit)
                )
            ).all()
            session.expunge_all()
            found.extend(rows)
    found.sort(key=lambda d: d.created_at, reverse=True)
    return found[:limit]


async def replay(
    developer: platform_service.DeveloperPrincipal,
    app_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> WebhookDelivery:
    """Send a delivery again (same ``webhook-id``: receivers de-duplicate). Re-enables the hook."""
    async with unit_of_work() as session:
        app = await platform_service.my_app(session, developer, app_id)
        if app.review_status == ReviewStatus.SUSPENDED.value:
            raise PermissionDenied("The platform has suspended this app.", code="app_suspended")
        app.webhook_disabled_at = None
    async with unit_of_work(tenant_id) as session:
        delivery = await session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.app_id == app_id
            )
        )
        if delivery is None:
            raise NotFound("No such delivery.", code="delivery_not_found")
        delivery.status = DeliveryStatus.PENDING.value
        delivery.next_attempt_at = _now()
        delivery.created_at = _now()  # a fresh 3-day window
        await session.flush()
        await queue_dispatch(session, tenant_id, delivery.installation_id)
        await audit.record(
            session,
            developer.actor(),
            "platform.webhook.replayed",
            target_type="webhook_delivery",
            target_id=delivery.id,
        )
        session.expunge(delivery)
    return delivery

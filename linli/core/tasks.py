"""Outbox jobs: deliver each event to every active consumer, recover jobs of dead workers.

Delivery is at-least-once and per consumer. For each consumer the job opens one
transaction that locks the event row, skips the consumer if it already has a
row in ``outbox_deliveries``, hands the event over, and records the delivery.
A worker killed mid-delivery leaves its transaction uncommitted, so after
recovery only the consumers that had not finished see the event again; the row
lock means two workers never hand the same event to the same consumer at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from procrastinate import RetryStrategy
from procrastinate.retry import RetryDecision
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.config import get_settings
from linli.core.consumers import DeliveredEvent, DeliveryFailed, EventConsumer, active_consumers
from linli.core.logging import get_logger
from linli.core.models import OutboxDelivery, OutboxEvent
from linli.core.outbox import DELIVER_TASK
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.jobs import job_app

log = get_logger(__name__)

OUTBOX_QUEUE = "outbox"
MAINTENANCE_QUEUE = "default"
RECOVER_TASK = "linli.core.tasks.recover_stalled"
PURGE_TASK = "linli.core.tasks.purge_outbox"
MAX_RETRY_WAIT_SECONDS = 3600


class CappedExponentialRetry(RetryStrategy):
    """Exponential backoff (2, 4, 8 … s) that stops growing at an hour.

    An unreachable sink keeps being tried for about a day instead of going
    silent after minutes or waiting days between the last attempts.
    """

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        decision = super().get_retry_decision(exception=exception, job=job)
        if decision is None:
            return None
        wait = min(MAX_RETRY_WAIT_SECONDS, self.exponential_wait ** (job.attempts + 1))
        return RetryDecision(retry_in={"seconds": wait})


DELIVERY_RETRY = CappedExponentialRetry(max_attempts=36, exponential_wait=2)


async def _lock_event(session: AsyncSession, event_id: uuid.UUID) -> OutboxEvent | None:
    # Wait for a concurrent delivery of the same event a little longer than one
    # consumer call may take; past that, fail and let the retry come back later.
    timeout_ms = int((get_settings().event_sink_timeout_seconds + 5) * 1000)
    await session.execute(
        text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": str(timeout_ms)}
    )
    statement = select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update()
    event: OutboxEvent | None = await session.scalar(statement)
    return event


async def deliver_to(tenant_id: uuid.UUID, event_id: uuid.UUID, consumer: EventConsumer) -> bool:
    """Hand one event to one consumer unless it already has it. False if the event is gone."""
    async with unit_of_work(tenant_id) as session:
        event = await _lock_event(session, event_id)
        if event is None:
            return False
        done = await session.scalar(
            select(func.count())
            .select_from(OutboxDelivery)
            .where(
                OutboxDelivery.tenant_id == tenant_id,
                OutboxDelivery.event_id == event_id,
                OutboxDelivery.consumer == consumer.name,
            )
        )
        if done:
            return True
        await consumer.handle(
            DeliveredEvent(
                id=event.id,
                tenant_id=event.tenant_id,
                type=event.event_type,
                payload=event.payload,
                created_at=event.created_at,
            )
        )
        await session.execute(
            pg_insert(OutboxDelivery)
            .values(tenant_id=tenant_id, event_id=event_id, consumer=consumer.name)
            .on_conflict_do_nothing()
        )
        log.info(
            "outbox.delivered",
            event_id=str(event_id),
            consumer=consumer.name,
            event_type=event.event_type,
        )
    return True


@job_app.task(name=DELIVER_TASK, queue=OUTBOX_QUEUE, retry=DELIVERY_RETRY)
async def deliver_event(tenant_id: str, event_id: str) -> None:
    """Deliver one outbox event to every active consumer that has not had it yet."""
    tenant = uuid.UUID(tenant_id)
    event = uuid.UUID(event_id)
    failed: list[str] = []
    # One failing consumer must not hold up the others: each is tried, each
    # success is committed, and the job is retried for the failures only.
    for consumer in active_consumers():
        try:
            if not await deliver_to(tenant, event, consumer):
                # The job exists only if its event committed, so a missing event was purged.
                log.warning("outbox.event_missing", event_id=event_id)
                return
        except Exception as exc:
            failed.append(consumer.name)
            log.warning(
                "outbox.delivery_failed",
                event_id=event_id,
                consumer=consumer.name,
                error=f"{type(exc).__name__}: {exc}",
            )
    if failed:
        raise DeliveryFailed(f"event {event_id} not delivered to: {', '.join(failed)}")


async def recover_stalled_jobs(*, stalled_seconds: float | None = None) -> int:
    """Put back in the queue the jobs held by workers that stopped sending heartbeats.

    A SIGKILLed or partitioned worker leaves its jobs in ``doing`` for ever;
    procrastinate only notices the dead worker, it does not requeue its jobs.
    Needs ``job_app`` to be open.
    """
    seconds = get_settings().worker_stalled_seconds if stalled_seconds is None else stalled_seconds
    manager = job_app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=seconds)
    recovered = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except Exception as exc:  # another worker recovered it first, or it just finished
            log.debug("worker.recover_skipped", job_id=job.id, error=type(exc).__name__)
            continue
        recovered += 1
        log.warning(
            "worker.job_recovered", job_id=job.id, task=job.task_name, dead_worker=job.worker_id
        )
    return recovered


@job_app.periodic(cron="* * * * *", periodic_id="recover-stalled")
@job_app.task(name=RECOVER_TASK, queue=MAINTENANCE_QUEUE, queueing_lock=RECOVER_TASK)
async def recover_stalled(timestamp: int) -> None:
    """Every minute, fleet-wide: also covers workers not started through ``linli worker``."""
    await recover_stalled_jobs()


async def _tenant_ids() -> list[uuid.UUID]:
    from linli.tenancy import service as tenancy_service

    ids: list[uuid.UUID] = []
    page = PageParams(limit=200)
    async with unit_of_work() as session:
        while True:
            rows, cursor = await tenancy_service.list_tenants(session, Actor.system(), page=page)
            ids += [row.id for row in rows]
            if not cursor:
                return ids
            page = PageParams(cursor=cursor, limit=200)


async def purge_delivered_events(*, older_than: dt.timedelta | None = None) -> int:
    """Delete events older than the retention that every active consumer has received.

    Events some consumer still lacks stay, however old, so nothing undelivered
    disappears. RLS shows one company at a time, hence the loop over tenants.
    """
    settings = get_settings()
    retention = (
        dt.timedelta(days=settings.outbox_retention_days) if older_than is None else older_than
    )
    cutoff = dt.datetime.now(dt.UTC) - retention
    names = [consumer.name for consumer in active_consumers(settings)]
    purged = 0
    for tenant_id in await _tenant_ids():
        async with unit_of_work(tenant_id) as session:
            received = (
                select(func.count())
                .select_from(OutboxDelivery)
                .where(
                    OutboxDelivery.tenant_id == OutboxEvent.tenant_id,
                    OutboxDelivery.event_id == OutboxEvent.id,
                    OutboxDelivery.consumer.in_(names),
                )
                .scalar_subquery()
            )
            result = await session.execute(
                delete(OutboxEvent).where(OutboxEvent.created_at < cutoff, received == len(names))
            )
            purged += int(getattr(result, "rowcount", 0) or 0)
    await job_app.job_manager.delete_old_jobs(nb_hours=int(settings.outbox_retention_days * 24))
    if purged:
        log.info("outbox.purged", events=purged)
    return purged


@job_app.periodic(cron="17 3 * * *", periodic_id="purge-outbox")
@job_app.task(name=PURGE_TASK, queue=MAINTENANCE_QUEUE, queueing_lock=PURGE_TASK)
async def purge_outbox(timestamp: int) -> None:
    """Nightly, at a quiet hour."""
    await purge_delivered_events()

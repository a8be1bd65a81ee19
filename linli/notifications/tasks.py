"""The delivery job: a batch of SMS or WeChat messages, each retried with exponential backoff.

Deferred set-based by :func:`linli.notifications.service.queue_deliveries` (one job per
100 queued deliveries, in the transaction that wrote the messages). Each delivery is
tried in its own transaction; a provider that is down gets the delivery a retry job
of its own, 4, 8, 16 … seconds later (``LINLI_NOTIFY_RETRY_BASE_SECONDS``, capped at an
hour), queued with the failed try's record; the try that reaches
``LINLI_NOTIFY_MAX_ATTEMPTS`` marks it ``failed`` in the delivery log. A job that
crashes (database gone) is run again by procrastinate; tries already recorded are
not repeated.
"""

from __future__ import annotations

import uuid

from procrastinate import RetryStrategy

from linli.jobs import job_app
from linli.notifications import consumer as _consumer  # noqa: F401  (registers the consumer)
from linli.notifications import service


@job_app.task(
    name=service.DELIVERY_TASK,
    queue=service.QUEUE,
    retry=RetryStrategy(max_attempts=5, exponential_wait=2),
)
async def send_deliveries(*, tenant_id: str, delivery_ids: list[str]) -> dict[str, int]:
    tenant = uuid.UUID(tenant_id)
    outcomes: dict[str, int] = {}
    for raw in delivery_ids:
        attempt = await service.attempt_delivery(tenant, uuid.UUID(raw))
        key = "retrying" if attempt.retry_in is not None else attempt.status
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes

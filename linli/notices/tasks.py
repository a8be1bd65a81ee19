"""The scheduled-publishing job: deferred at approval with ``scheduled_at = publish_at``."""

from __future__ import annotations

import uuid

from procrastinate import RetryStrategy

from linli.jobs import job_app
from linli.notices import service


@job_app.task(
    name=service.PUBLISH_TASK,
    queue=service.QUEUE,
    retry=RetryStrategy(max_attempts=10, exponential_wait=2),
)
async def publish_scheduled(*, tenant_id: str, announcement_id: str) -> str:
    return await service.publish_due(uuid.UUID(tenant_id), uuid.UUID(announcement_id))

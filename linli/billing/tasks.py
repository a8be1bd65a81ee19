"""The billing-run job: procrastinate runs it in a worker; a retry resumes a killed run.

Each chunk of buildings is its own transaction (bills and their journal entry
together), and the bills' natural key makes re-inserting a chunk a no-op, so a
worker that dies mid-run leaves no duplicates and the retry leaves no gaps.
"""

from __future__ import annotations

import uuid

from procrastinate import RetryStrategy

from linli.billing import meter_import, service
from linli.jobs import job_app


@job_app.task(
    name=service.RUN_TASK,
    queue="billing",
    retry=RetryStrategy(max_attempts=5, wait=5, exponential_wait=2),
)
async def run_billing(*, tenant_id: str, run_id: str) -> str:
    return await service.run_job(uuid.UUID(tenant_id), uuid.UUID(run_id))


@job_app.task(
    name=meter_import.TASK_NAME,
    queue="billing",
    retry=RetryStrategy(max_attempts=3, wait=5, exponential_wait=2),
)
async def import_meter_readings(*, tenant_id: str, job_id: str) -> str:
    """A meter-reading spreadsheet (抄表导入): check, then write it with progress."""
    return await meter_import.run_job(uuid.UUID(tenant_id), uuid.UUID(job_id))

"""The import job: procrastinate runs it in a worker; it survives a worker restart.

All writes of one import are one transaction (see :mod:`linli.imports.service`),
so a worker that dies mid-way leaves nothing written; procrastinate hands the
job to the next worker (retry), and the re-run starts from the stored file.
"""

from __future__ import annotations

import uuid

from procrastinate import RetryStrategy

from linli.imports import service
from linli.jobs import job_app


@job_app.task(
    name=service.TASK_NAME,
    queue="imports",
    retry=RetryStrategy(max_attempts=5, wait=5, exponential_wait=2),
)
async def run_import(*, tenant_id: str, job_id: str) -> str:
    return await service.run_job(uuid.UUID(tenant_id), uuid.UUID(job_id))

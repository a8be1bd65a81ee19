"""Jobs of the workorders domain: the SLA escalation, every minute (超时预警).

RLS shows one company at a time, so the job walks the tenants; each company's
warnings are one transaction (marks, timeline rows and outbox events together).
"""

from __future__ import annotations

from linli.auth.actor import Actor
from linli.core.logging import get_logger
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.jobs import job_app
from linli.tenancy import service as tenancy_service
from linli.workorders import service

log = get_logger(__name__)

ESCALATE_TASK = "linli.workorders.tasks.escalate_sla"


async def escalate_all() -> int:
    """Warn about every order of every company that is about to breach an SLA clock."""
    tenant_ids = []
    page = PageParams(limit=200)
    async with unit_of_work() as session:
        while True:
            rows, cursor = await tenancy_service.list_tenants(session, Actor.system(), page=page)
            tenant_ids += [row.id for row in rows]
            if not cursor:
                break
            page = PageParams(cursor=cursor, limit=200)
    warned = 0
    for tenant_id in tenant_ids:
        async with unit_of_work(tenant_id) as session:
            warned += await service.escalate_due(session, Actor.system(tenant_id))
    if warned:
        log.info("workorders.sla_warnings", orders=warned)
    return warned


@job_app.periodic(cron="* * * * *", periodic_id="workorders-escalate")
@job_app.task(name=ESCALATE_TASK, queue="default", queueing_lock=ESCALATE_TASK)
async def escalate_sla(timestamp: int) -> None:
    await escalate_all()

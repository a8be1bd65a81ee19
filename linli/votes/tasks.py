"""Jobs of the votes domain: close every vote whose closing time has passed (到期自动计票).

Ballots are refused after ``closes_at`` whatever this job does; closing freezes the
tally on the vote and emits ``vote.closed`` so owners hear of the result.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.core.logging import get_logger
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.jobs import job_app
from linli.tenancy import service as tenancy_service
from linli.votes import service
from linli.votes.models import Vote, VoteStatus

log = get_logger(__name__)

CLOSE_TASK = "linli.votes.tasks.close_due_votes"


async def close_due(now: dt.datetime | None = None) -> int:
    """Close the open votes of every company whose closing time is past; returns how many."""
    now = now or dt.datetime.now(dt.UTC)
    tenant_ids: list[uuid.UUID] = []
    page = PageParams(limit=200)
    async with unit_of_work() as session:
        while True:
            rows, cursor = await tenancy_service.list_tenants(session, Actor.system(), page=page)
            tenant_ids += [row.id for row in rows]
            if not cursor:
                break
            page = PageParams(cursor=cursor, limit=200)
    closed = 0
    for tenant_id in tenant_ids:
        async with unit_of_work(tenant_id) as session:
            due = (
                await session.scalars(
                    select(Vote.id).where(Vote.status == VoteStatus.OPEN, Vote.closes_at <= now)
                )
            ).all()
        for vote_id in due:
            async with unit_of_work(tenant_id) as session:
                await service.close_vote(session, Actor.system(tenant_id), vote_id=vote_id)
            closed += 1
    if closed:
        log.info("votes.closed_due", votes=closed)
    return closed


@job_app.periodic(cron="* * * * *", periodic_id="votes-close-due")
@job_app.task(name=CLOSE_TASK, queue="default", queueing_lock=CLOSE_TASK)
async def close_due_votes(timestamp: int) -> None:
    await close_due()

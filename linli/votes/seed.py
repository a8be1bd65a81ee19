"""Demo vote: one open owners' vote (业主大会表决) in the company's first community.

``seed_demo(tenant_id)`` is idempotent: it creates and opens the vote only when the
community has no vote yet. Call it after the demo estate exists (the electorate is
frozen from the community's houses when the vote opens).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.tenancy.models import Community
from linli.votes import service
from linli.votes.models import Vote, VoteKind

TITLE = "2026年度业主大会第一次会议表决"
MATTERS = (
    service.MatterIn("续聘海纳物业为本小区物业服务企业", 4),
    service.MatterIn("使用专项维修资金更换1-3栋电梯", 5),
    service.MatterIn("筹集专项维修资金（续筹）", 6),
)


async def seed_demo(tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The open demo vote's id, or None when the first community already had a vote."""
    system = Actor.system(tenant_id)
    async with unit_of_work(tenant_id) as session:
        community_id = await session.scalar(select(Community.id).order_by(Community.code))
        if community_id is None:
            return None
        if await session.scalar(select(func.count()).where(Vote.community_id == community_id)):
            return None
        now = dt.datetime.now(dt.UTC)
        vote = await service.create_vote(
            session,
            system,
            community_id=community_id,
            kind=VoteKind.OWNERS_ASSEMBLY,
            title=TITLE,
            description="请各位业主在截止时间前对以下事项进行表决。",
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(days=14),
            matters=MATTERS,
        )
        await service.open_vote(session, system, vote_id=vote.id)
        return vote.id

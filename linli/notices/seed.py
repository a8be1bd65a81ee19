"""Demo data of the notices domain: one published announcement for the demo company.

``linli/demo.py`` calls, once the demo company and its communities exist::

    from linli.notices import seed as notices_seed
    await notices_seed.seed_demo(tenant_id=tenant_id)

Idempotent: an announcement with the demo title already in the community is left alone.
Published by the system actor (seeding), so the four-eyes rule does not apply.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.notices import service
from linli.notices.models import Announcement
from linli.tenancy.models import Community

DEMO_TITLE = "欢迎使用邻里住户服务"
DEMO_BODY = (
    "各位业主、住户:\n\n"
    "物业服务中心已开通线上住户服务。您可以在这里查看小区公告、接收缴费和报修消息,"
    "并在“消息设置”中选择是否同时通过短信或微信接收。\n\n"
    "如有疑问,请联系物业服务中心。"
)


async def seed_demo(*, tenant_id: uuid.UUID, community_code: str | None = None) -> uuid.UUID | None:
    """Publish the welcome announcement in ``community_code`` (default: the first by code)."""
    system = Actor.system(tenant_id)
    async with unit_of_work(tenant_id) as session:
        statement = select(Community.id).where(Community.archived_at.is_(None))
        if community_code is not None:
            statement = statement.where(Community.code == community_code)
        community_id = await session.scalar(statement.order_by(Community.code).limit(1))
        if community_id is None:
            return None
        existing = await session.scalar(
            select(Announcement.id).where(
                Announcement.community_id == community_id, Announcement.title == DEMO_TITLE
            )
        )
        if existing is not None:
            return existing
        draft = await service.create_draft(
            session,
            system,
            community_id=community_id,
            title=DEMO_TITLE,
            body=DEMO_BODY,
            pinned=True,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=365),
        )
        await service.submit(session, system, announcement_id=draft.id)
        published = await service.approve(session, system, announcement_id=draft.id)
        return published.id

"""Id makers of the notices and notifications domains for the cross-company sweep."""

from __future__ import annotations

import uuid

from linli.auth.actor import Actor
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.notices import service as notices
from linli.notifications import service as notifications
from tests.estate.factories import make_resident
from tests.isolation import IsolationContext, id_maker, sample_body


@id_maker("announcement_id")
async def an_announcement(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        announcement = await notices.create_draft(
            session,
            Actor.system(ctx.company.id),
            community_id=ctx.company.communities[0],
            title="停水通知",
            body="明天 9:00-12:00 停水。",
        )
        return announcement.id


@id_maker("delivery_id")
async def a_delivery(ctx: IsolationContext) -> uuid.UUID:
    resident = await make_resident(ctx.company, house_id=None, name="隔离投递", phone="13600001111")
    async with unit_of_work(ctx.company.id) as session:
        result = await notifications.notify(
            session,
            Actor.system(ctx.company.id),
            recipients=[resident],
            template="billing.reminder",
            params={"amount": "1.00"},
            channels=["sms"],
            community_id=ctx.company.communities[0],
        )
        rows, _ = await notifications.list_deliveries(
            session,
            Actor.system(ctx.company.id),
            filters=notifications.DeliveryFilter(template="billing.reminder"),
            page=PageParams(limit=1),
        )
        assert result.queued == 1 and rows
        return rows[0].id


sample_body("patch", "/api/v1/notices/announcements/{announcement_id}", {"title": "改"})

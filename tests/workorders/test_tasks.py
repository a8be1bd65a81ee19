"""The escalation job: every minute, each company's orders about to breach warn managers once."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from linli.core.models import OutboxEvent
from linli.db.engine import unit_of_work
from linli.jobs import job_app
from linli.workorders import tasks
from linli.workorders.models import WorkOrder
from tests.workorders.helpers import make_desk


async def test_the_job_is_registered_and_warns_once(client) -> None:
    assert tasks.ESCALATE_TASK in job_app.tasks
    desk = await make_desk(routing=False)
    response = await client.post(
        "/api/v1/workorders/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[0]),
            "category_id": str(desk.category_id),
            "description": "消防通道堵塞",
            "location": "地下车库",
        },
    )
    order_id = uuid.UUID(response.json()["id"])
    async with unit_of_work(desk.company.id) as session:
        await session.execute(
            update(WorkOrder)
            .where(WorkOrder.id == order_id)
            .values(response_warn_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert await tasks.escalate_all() >= 1
    await tasks.escalate_all()  # a second run warns no more about it
    async with unit_of_work(desk.company.id) as session:
        warnings = (
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.event_type == "workorder.sla_warning")
            )
        ).all()
    assert [w["order_id"] for w in warnings] == [str(order_id)]
    assert warnings[0]["clocks"] == ["response"]

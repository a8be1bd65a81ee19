"""Demo work orders: categories with SLA, service-desk hours and holidays, routing, a few orders.

``seed_demo(tenant_id)`` is idempotent: categories, hours and rules are created when
missing, and the sample orders only in a community that has none yet. Call it after
the demo staff exist (the technician gets the routing rule of his community).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.core.errors import Conflict
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.tenancy.models import Community
from linli.workorders import service
from linli.workorders.models import HolidayKind, OrderKind, OrderSource, Priority, WorkOrder


@dataclass(frozen=True)
class DemoCategory:
    name: str
    kind: OrderKind
    priority: Priority
    sla: dict[Priority, service.SlaTarget]


CATEGORIES = (
    DemoCategory(
        "水电维修",
        OrderKind.REPAIR,
        Priority.NORMAL,
        {
            Priority.URGENT: service.SlaTarget(30, 240),
            Priority.NORMAL: service.SlaTarget(120, 1440),
        },
    ),
    DemoCategory("门窗五金", OrderKind.REPAIR, Priority.LOW, {}),
    DemoCategory(
        "电梯故障", OrderKind.REPAIR, Priority.URGENT, {Priority.URGENT: service.SlaTarget(15, 120)}
    ),
    DemoCategory("噪音扰民", OrderKind.COMPLAINT, Priority.HIGH, {}),
    DemoCategory("物业咨询", OrderKind.INQUIRY, Priority.NORMAL, {}),
)
# 物业服务中心: 08:30-12:00 and 13:30-18:00 every day.
WEEKLY = {str(d): [["08:30", "12:00"], ["13:30", "18:00"]] for d in range(1, 8)}
# Example holidays for the demo (check each year's State Council notice for the real ones).
HOLIDAYS = (
    *(
        service.HolidayEntry(dt.date(2026, 10, d), HolidayKind.HOLIDAY, "国庆节")
        for d in range(1, 8)
    ),
    service.HolidayEntry(dt.date(2026, 10, 10), HolidayKind.WORKDAY, "国庆调休"),
    *(service.HolidayEntry(dt.date(2027, 1, d), HolidayKind.HOLIDAY, "元旦") for d in range(1, 4)),
)
ORDERS = (
    ("水电维修", "厨房水龙头一直滴水，关不紧。"),
    ("门窗五金", "阳台推拉门滑轮坏了，推不动。"),
    ("电梯故障", "2号电梯运行时有异响。"),
)


async def seed_demo(tenant_id: uuid.UUID) -> int:
    """Set up the service desk of every community; returns the sample orders created."""
    system = Actor.system(tenant_id)
    created = 0
    async with unit_of_work(tenant_id) as session:
        communities = (await session.scalars(select(Community.id).order_by(Community.code))).all()
        for community_id in communities:
            existing = {
                c.name: c
                for c in await service.list_categories(
                    session, system, community_id=community_id, include_archived=True
                )
            }
            for demo in CATEGORIES:
                if demo.name not in existing:
                    existing[demo.name] = await service.create_category(
                        session,
                        system,
                        community_id=community_id,
                        name=demo.name,
                        kind=demo.kind,
                        default_priority=demo.priority,
                        sla=demo.sla,
                    )
            calendar = await service.get_calendar(session, system, community_id=community_id)
            if not calendar.configured:
                await service.set_calendar(
                    session, system, community_id=community_id, weekly=WEEKLY, holidays=HOLIDAYS
                )
            for member in await service.technicians(session, system, community_id=community_id):
                try:
                    async with session.begin_nested():
                        await service.add_coverage(
                            session,
                            system,
                            technician_id=member.user.id,
                            community_id=community_id,
                        )
                except Conflict:
                    pass  # seeded by an earlier run
            has_orders = await session.scalar(
                select(func.count()).where(WorkOrder.community_id == community_id)
            )
            if has_orders:
                continue
            houses, _ = await estate.list_houses(
                session,
                system,
                filters=estate.HouseFilter(community_id=community_id),
                page=PageParams(limit=len(ORDERS)),
            )
            for (category, text), house in zip(ORDERS, houses, strict=False):
                await service.create_order(
                    session,
                    system,
                    new=service.NewOrder(
                        community_id=community_id,
                        category_id=existing[category].id,
                        description=text,
                        house_id=house.id,
                        reporter_name="住户",
                    ),
                    source=OrderSource.PHONE,
                )
                created += 1
    return created

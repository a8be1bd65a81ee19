"""Id makers of the workorders domain for the cross-company sweep."""

from __future__ import annotations

import uuid

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.workorders import service
from linli.workorders.models import OrderSource
from tests.isolation import IsolationContext, id_maker, sample_body
from tests.workorders.helpers import make_category, make_technician, png_bytes


async def _category(ctx: IsolationContext) -> uuid.UUID:
    if "wo_category" not in ctx.made:
        ctx.made["wo_category"] = await make_category(ctx.company, name="隔离测试")
    category: uuid.UUID = ctx.made["wo_category"]
    return category


@id_maker("category_id")
async def a_category(ctx: IsolationContext) -> uuid.UUID:
    return await _category(ctx)


@id_maker("coverage_id")
async def a_coverage(ctx: IsolationContext) -> uuid.UUID:
    technician = await make_technician(ctx.company, rule=False)
    async with unit_of_work(ctx.company.id) as session:
        row = await service.add_coverage(
            session,
            Actor.system(ctx.company.id),
            technician_id=technician,
            community_id=ctx.company.communities[0],
        )
        return row.id


async def _order(ctx: IsolationContext) -> uuid.UUID:
    if "wo_order" not in ctx.made:
        category = await _category(ctx)
        async with unit_of_work(ctx.company.id) as session:
            actor = Actor.system(ctx.company.id)
            order = await service.create_order(
                session,
                actor,
                new=service.NewOrder(
                    community_id=ctx.company.communities[0],
                    category_id=category,
                    description="隔离测试 漏水",
                    location="1栋大堂",
                ),
                source=OrderSource.PHONE,
            )
            photo = await service.add_staff_photo(
                session, actor, order_id=order.id, data=png_bytes()
            )
            ctx.made["wo_order"], ctx.made["wo_photo"] = order.id, photo.id
    order_id: uuid.UUID = ctx.made["wo_order"]
    return order_id


@id_maker("order_id")
async def an_order(ctx: IsolationContext) -> uuid.UUID:
    return await _order(ctx)


@id_maker("photo_id")
async def a_photo(ctx: IsolationContext) -> uuid.UUID:
    await _order(ctx)
    photo: uuid.UUID = ctx.made["wo_photo"]
    return photo


sample_body(
    "put",
    "/api/v1/workorders/communities/{community_id}/calendar",
    {"weekly": {"1": [["09:00", "18:00"]]}, "holidays": []},
)

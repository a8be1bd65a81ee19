"""Id makers of the access domain for the cross-company sweep (tests/isolation.py)."""

from __future__ import annotations

import uuid

from linli.access import service
from linli.access.models import AccessPointKind, DeviceKind
from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from tests.isolation import IsolationContext, id_maker, sample_body


async def _gate(ctx: IsolationContext) -> uuid.UUID:
    if "access_point_id" not in ctx.made:
        async with unit_of_work(ctx.company.id) as session:
            point = await service.create_access_point(
                session,
                Actor.system(ctx.company.id),
                community_id=ctx.company.communities[0],
                kind=AccessPointKind.COMMUNITY_GATE,
                name="隔离测试大门",
            )
            ctx.made["access_point_id"] = point.id
    made: uuid.UUID = ctx.made["access_point_id"]
    return made


@id_maker("access_point_id")
async def an_access_point(ctx: IsolationContext) -> uuid.UUID:
    return await _gate(ctx)


@id_maker("device_id")
async def a_device(ctx: IsolationContext) -> uuid.UUID:
    gate = await _gate(ctx)
    async with unit_of_work(ctx.company.id) as session:
        provisioned = await service.provision_device(
            session,
            Actor.system(ctx.company.id),
            access_point_id=gate,
            kind=DeviceKind.TURNSTILE,
            name="隔离测试闸机",
        )
        return provisioned.device.id


@id_maker("pass_id")
async def a_pass(ctx: IsolationContext) -> uuid.UUID:
    await _gate(ctx)
    async with unit_of_work(ctx.company.id) as session:
        row, _ = await service.register_walk_in(
            session,
            Actor.system(ctx.company.id),
            community_id=ctx.company.communities[0],
            name="隔离测试访客",
            phone=None,
        )
        return row.id


sample_body(
    "put",
    "/api/v1/access/communities/{community_id}/parking-tariff",
    {"free_minutes": 30, "hourly": "5.00", "daily_cap": "40.00"},
)

"""Id makers for the cross-company sweep, for domains that have not registered their own yet.

Each maker makes one real row of company A through the domain's own service or
API. A domain may move its maker into ``tests/<domain>/isolation_ids.py``; the
registry refuses two makers for one parameter, so delete it here when you do.
"""

from __future__ import annotations

import uuid

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.models import ParkingUsage
from linli.residents import service as residents
from linli.staff import service as staff_records
from tests.estate.factories import make_houses, make_resident
from tests.imports.helpers import HOUSE_HEADER, csv_bytes, house_rows, post_import
from tests.isolation import IsolationContext, id_maker, sample_body


@id_maker("building_id")
async def a_building(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        building = await estate.create_building(
            session,
            Actor.system(ctx.company.id),
            community_id=ctx.company.communities[0],
            building_no="ISO",
        )
        return building.id


@id_maker("house_id")
async def a_house(ctx: IsolationContext) -> uuid.UUID:
    if "house_id" not in ctx.made:
        houses = await make_houses(ctx.company, buildings=1, units=1, floors=1, per_floor=1)
        ctx.made["house_id"] = houses[0]
    house: uuid.UUID = ctx.made["house_id"]
    return house


@id_maker("resident_id")
async def a_resident(ctx: IsolationContext) -> uuid.UUID:
    return await make_resident(ctx.company, house_id=await a_house(ctx), name="隔离测试")


@id_maker("record_id")
async def a_staff_record(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        record = await staff_records.create_record(
            session,
            Actor.system(ctx.company.id),
            employee_no="ISO-1",
            name="隔离测试",
            community_ids=ctx.company.communities[:1],
        )
        return record.id


@id_maker("job_id")
async def an_import_job(ctx: IsolationContext) -> uuid.UUID:
    data = csv_bytes([HOUSE_HEADER, *house_rows("C01", 1, building="ISO-J")])
    response = await post_import(ctx.client, ctx.admin, data, filename="iso.csv", dry_run=False)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


@id_maker("area_id")
async def a_parking_area(ctx: IsolationContext) -> uuid.UUID:
    if "area_id" not in ctx.made:
        async with unit_of_work(ctx.company.id) as session:
            area = await estate.create_parking_area(
                session,
                Actor.system(ctx.company.id),
                community_id=ctx.company.communities[0],
                name="隔离车场",
            )
            ctx.made["area_id"] = area.id
    area_id: uuid.UUID = ctx.made["area_id"]
    return area_id


@id_maker("space_id")
async def a_parking_space(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        added = await estate.create_parking_space(
            session,
            Actor.system(ctx.company.id),
            area_id=await a_parking_area(ctx),
            space_no="ISO-001",
            usage=ParkingUsage.OWNED,
        )
        return added.id


sample_body("patch", "/api/v1/estate/parking-spaces/{space_id}", {"house_id": None})


@id_maker("facility_id")
async def a_facility(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        facility = await estate.create_facility(
            session,
            Actor.system(ctx.company.id),
            community_id=ctx.company.communities[0],
            name="隔离会所",
        )
        return facility.id


@id_maker("vehicle_id")
async def a_vehicle(ctx: IsolationContext) -> uuid.UUID:
    async with unit_of_work(ctx.company.id) as session:
        vehicle = await residents.register_vehicle(
            session,
            Actor.system(ctx.company.id),
            community_id=ctx.company.communities[0],
            plate="粤B12345",
            house_id=await a_house(ctx),
        )
        return vehicle.id

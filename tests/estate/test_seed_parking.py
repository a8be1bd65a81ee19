"""Parking in the seeds: the demo company's garages, and the set-based add-on of the bulk seed."""

from __future__ import annotations

import time

from sqlalchemy import text

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import seed
from linli.estate import service as estate
from linli.estate.demo import seed_demo_estate
from linli.estate.seed_parking import seed_parking
from tests.factories import make_company


async def _count(tenant_id, sql: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(tenant_id) as session:
        return int((await session.execute(text(sql))).scalar_one())


async def test_bulk_seed_parking_holds_the_cars_and_runs_once() -> None:
    company = await make_company(communities=0)
    other = await make_company(communities=1)
    await seed.seed_houses(tenant_id=company.id, houses=3000, batch_houses=1500, seed=11)
    cars = await _count(company.id, "SELECT count(*) FROM vehicles WHERE house_id IS NOT NULL")
    cpu = time.process_time()
    report = await seed_parking(company.id)
    cpu = time.process_time() - cpu
    communities = await _count(company.id, "SELECT count(*) FROM communities")
    assert report.areas == 2 * communities
    held = await _count(
        company.id, "SELECT count(*) FROM parking_spaces WHERE house_id IS NOT NULL"
    )
    assert cars > 0 and held == cars
    surface = await _count(
        company.id, "SELECT count(*) FROM parking_spaces WHERE usage = 'temporary'"
    )
    assert report.spaces == held + surface and surface >= 3000 // 10 - communities
    # Owners own, tenants rent with their lease; every holder lives in the space's house.
    assert (
        await _count(
            company.id,
            "SELECT count(*) FROM parking_spaces s JOIN resident_houses rh"
            " ON rh.house_id = s.house_id AND rh.resident_id = s.resident_id"
            " WHERE rh.moved_out_on IS NULL AND ("
            " (rh.relation = 'tenant') <> (s.usage = 'rented')"
            " OR (s.usage = 'rented' AND s.lease_end IS DISTINCT FROM rh.lease_end))",
        )
        == 0
    )
    assert (
        await _count(
            company.id,
            "SELECT count(*) FROM parking_spaces s JOIN houses h ON h.id = s.house_id"
            " WHERE h.community_id <> s.community_id",
        )
        == 0
    )
    again = await seed_parking(company.id)
    assert (again.areas, again.spaces) == (0, 0)
    assert await _count(other.id, "SELECT count(*) FROM parking_spaces") == 0
    print(f"seed_parking: {report.spaces} spaces, {cpu * 1000:.1f} ms client CPU")


async def test_demo_estate_has_parking_and_facilities_and_reseeding_changes_nothing() -> None:
    company = await make_company(communities=2)
    codes = ["C01", "C02"]
    people = (("13700019001", "张伟"),)
    assert await seed_demo_estate(company.id, codes, people) > 0
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        summary = await estate.parking_summary(session, actor, community_id=company.communities[0])
        by_name = {s.area.name: s for s in summary}
        garage, surface = by_name["地下车库B1"], by_name["地面停车场"]
        assert garage.spaces == 60 and surface.spaces == 20
        assert garage.bound > 0 and garage.by_usage.get("owned", 0) > 0
        assert garage.by_usage.get("rented", 0) > 0
        facilities, _ = await estate.list_facilities(
            session, actor, community_id=company.communities[0], page=estate.PageParams(limit=50)
        )
        assert {"lift", "pump_room", "charging"} <= {f.kind for f in facilities}
    # Every held space's holder has a car registered at that house.
    assert (
        await _count(
            company.id,
            "SELECT count(*) FROM parking_spaces s WHERE s.resident_id IS NOT NULL AND NOT EXISTS ("
            " SELECT 1 FROM vehicles v WHERE v.resident_id = s.resident_id"
            " AND v.house_id = s.house_id)",
        )
        == 0
    )
    assert await seed_demo_estate(company.id, codes, people) == 0

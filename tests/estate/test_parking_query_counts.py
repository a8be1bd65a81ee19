"""Parking and facility lists, the houseless filter and the parking export run a fixed
number of statements, however many rows they return (STYLE.md)."""

from __future__ import annotations

from typing import Any

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.models import ParkingUsage
from tests.estate.factories import make_houses, make_resident, random_phone
from tests.factories import Company, bearer, make_company, staff_token
from tests.residents.test_list_query_counts import counted

LISTS = (
    "/api/v1/estate/parking-areas?limit=100",
    "/api/v1/estate/parking-spaces?limit=100",
    "/api/v1/estate/facilities?limit=100",
    "/api/v1/residents?limit=100&without_house=true",
    "/api/v1/estate/stats",
    "/api/v1/exports/parking_spaces.xlsx",
)


async def _parking(company: Company, houses: list[Any], *, area: str, spaces: int) -> None:
    actor = Actor.system(company.id)
    owners = [
        await make_resident(company, house_id=h, name="车主", phone=random_phone()) for h in houses
    ]
    async with unit_of_work(company.id) as session:
        made = await estate.create_parking_area(
            session, actor, community_id=company.communities[0], name=area
        )
        await estate.create_parking_spaces(
            session,
            actor,
            area_id=made.id,
            space_nos=[f"{area}-{n:03d}" for n in range(spaces)],
            usage=ParkingUsage.OWNED,
        )
        listed, _ = await estate.list_parking_spaces(
            session, actor, community_id=None, area_id=made.id, page=estate.PageParams(limit=500)
        )
        for space, house, owner in zip(listed, houses, owners, strict=False):
            await estate.update_parking_space(
                session, actor, space_id=space.id, changes={"house_id": house, "resident_id": owner}
            )
        await estate.create_facility(
            session, actor, community_id=company.communities[0], name=f"{area} 电梯"
        )
    for n in range(len(houses)):
        await make_resident(company, house_id=None, name=f"无房{n}", phone=random_phone())


async def _counts(client: Any, company: Company) -> dict[str, int]:
    headers = bearer(staff_token(company))
    counts = {}
    for url in LISTS:
        with counted() as statements:
            response = await client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        counts[url] = len(statements)
    return counts


async def test_parking_lists_do_not_query_per_row(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company(communities=1)
    first = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    await _parking(company, first, area="A", spaces=3)
    await _counts(client, company)  # warm caches
    few = await _counts(client, company)

    more = await make_houses(company, buildings=2, units=2, floors=3, per_floor=2)
    await _parking(company, more, area="B", spaces=40)
    many = await _counts(client, company)

    assert all(n > 0 for n in few.values()), few
    assert many == few

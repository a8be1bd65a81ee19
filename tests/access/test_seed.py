from __future__ import annotations

from sqlalchemy import func, select

from linli.access.models import AccessPoint, Device
from linli.access.seed import seed_demo
from linli.db.engine import unit_of_work
from tests.estate.factories import make_houses
from tests.factories import make_company


async def test_seed_demo_is_idempotent() -> None:
    company = await make_company(communities=2)
    await make_houses(company, buildings=2, units=1, floors=1, per_floor=1)
    first = await seed_demo(company.id, company.communities)
    again = await seed_demo(company.id, company.communities)
    assert first.access_points == 3 + 2 + 3 and first.devices == first.access_points
    assert again.access_points == 0 and again.devices == 0
    async with unit_of_work(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(AccessPoint)) == 8
        assert await session.scalar(select(func.count()).select_from(Device)) == 8

"""Work-order and vote lists run a fixed number of statements, however many rows they hold."""

from __future__ import annotations

from typing import Any

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.workorders import service
from linli.workorders.models import OrderSource
from tests.residents.test_list_query_counts import counted
from tests.workorders.helpers import make_desk

LISTS = (
    "/api/v1/workorders/orders?limit=100",
    "/api/v1/workorders/orders?overdue=true&limit=100",
    "/api/v1/workorders/categories",
    "/api/v1/workorders/coverage",
    "/api/v1/votes?limit=100",
)


async def _orders(desk: Any, n: int) -> None:
    async with unit_of_work(desk.company.id) as session:
        for i in range(n):
            await service.create_order(
                session,
                Actor.system(desk.company.id),
                new=service.NewOrder(
                    community_id=desk.company.communities[0],
                    category_id=desk.category_id,
                    description=f"报修{i}",
                    location="大堂",
                ),
                source=OrderSource.PHONE,
            )


async def _counts(client: Any, desk: Any) -> dict[str, int]:
    counts = {}
    for url in LISTS:
        with counted() as statements:
            response = await client.get(url, headers=desk.admin)
        assert response.status_code == 200, (url, response.text)
        counts[url] = len(statements)
    return counts


async def test_lists_do_not_query_per_row(client) -> None:
    desk = await make_desk()
    await _orders(desk, 2)
    await client.get(LISTS[0], headers=desk.admin)  # warm caches
    few = await _counts(client, desk)
    await _orders(desk, 15)
    assert await _counts(client, desk) == few

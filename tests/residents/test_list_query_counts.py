"""List endpoints run a fixed number of statements, however many rows they return (STYLE.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from linli.db.engine import get_engine
from tests.estate.factories import make_houses, make_resident, random_phone
from tests.factories import Company, bearer, make_company, staff_token

LISTS = (
    "/api/v1/estate/houses?limit=100",
    "/api/v1/residents?limit=100",
    "/api/v1/vehicles?limit=100",
    "/api/v1/estate/buildings?limit=100",
)


@contextmanager
def counted() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _people(company: Company, houses: list[Any]) -> None:
    for house_id in houses:
        await make_resident(company, house_id=house_id, name="住户", phone=random_phone())


async def _counts(client: Any, company: Company) -> dict[str, int]:
    headers = bearer(staff_token(company))
    counts = {}
    for url in LISTS:
        with counted() as statements:
            response = await client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        counts[url] = len(statements)
    return counts


async def test_list_endpoints_do_not_query_per_row(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company()
    first = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    await _people(company, first)
    await client.get("/api/v1/estate/houses", headers=bearer(staff_token(company)))  # warm caches
    few = await _counts(client, company)

    more = await make_houses(company, buildings=3, units=2, floors=3, per_floor=2)
    await _people(company, more[:30])
    many = await _counts(client, company)

    assert all(n > 0 for n in few.values()), few
    assert many == few

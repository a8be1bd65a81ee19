"""The read path (linli.db.reads): one round trip, and the same tenant fence as a unit of work."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import column, select, table, text

from linli.db.reads import ReadQuery, read_pool, read_rows, write_rows
from tests.factories import make_company

SETTING = ReadQuery(select(text("current_setting('linli.tenant_id', true) AS tenant")))
COMMUNITIES = ReadQuery(select(column("id")).select_from(table("communities")))


async def test_rows_are_fenced_to_the_tenant_and_the_fence_does_not_outlive_the_read() -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=3)
    assert {r.id for r in await read_rows(a.id, COMMUNITIES, {})} == set(a.communities)
    assert {r["id"] for r in await read_rows(b.id, COMMUNITIES, {})} == set(b.communities)
    # No tenant: RLS shows nothing (fails closed).
    assert await read_rows(None, COMMUNITIES, {}) == []
    # The setting is local to the read's transaction: the pooled connection forgets it.
    pool = read_pool()
    for _ in range(pool.max_size + 1):
        await read_rows(a.id, SETTING, {})
    async with pool.connection() as conn:
        leftover = await (
            await conn.execute("SELECT current_setting('linli.tenant_id', true)")
        ).fetchone()
    assert leftover is not None and leftover[0] in ("", None)


async def test_a_read_cannot_write() -> None:
    company = await make_company(communities=1)
    sneaky = ReadQuery(text("UPDATE communities SET name = 'x' RETURNING id"))
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        await read_rows(company.id, sneaky, {})


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(KeyError):
        SETTING.params({"limit": 1})


async def test_a_write_commits_whole_under_the_tenant_fence_or_not_at_all() -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    rename = ReadQuery(
        text("UPDATE communities SET name = :name WHERE id = :id RETURNING id, name").bindparams(
            name="", id=None
        )
    )
    failing = ReadQuery(text("SELECT 1 / 0"))
    [renamed] = await write_rows(a.id, [(rename, {"name": "写入一", "id": a.communities[0]})])
    assert [r.name for r in renamed] == ["写入一"]
    # Another company's row is invisible to the fence: nothing to update.
    [untouched] = await write_rows(a.id, [(rename, {"name": "越权", "id": b.communities[0]})])
    assert untouched == []
    # A later statement failing rolls the earlier one back: one transaction.
    with pytest.raises(psycopg.errors.DivisionByZero):
        await write_rows(a.id, [(rename, {"name": "半截", "id": a.communities[0]}), (failing, {})])
    names = await read_rows(a.id, ReadQuery(text("SELECT name FROM communities")), {})
    assert [r.name for r in names] == ["写入一"]
    # Asynchronous commit is still a commit.
    await write_rows(
        a.id, [(rename, {"name": "写入二", "id": a.communities[0]})], wait_for_flush=False
    )
    names = await read_rows(a.id, ReadQuery(text("SELECT name FROM communities")), {})
    assert [r.name for r in names] == ["写入二"]

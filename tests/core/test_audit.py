"""Every state change leaves an audit row: who, which company, what, when, request, from where."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
from sqlalchemy import select, text

from linli.config import get_settings
from linli.core.models import AuditEntry
from linli.db.dsn import app_dsn
from linli.db.engine import unit_of_work
from tests.factories import bearer, make_company, staff_token


async def audit_rows(tenant_id: uuid.UUID, target_id: str) -> list[AuditEntry]:
    async with unit_of_work(tenant_id) as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.target_id == target_id))
        return list(rows)


async def test_creating_a_community_is_audited_for_its_company_only(client) -> None:
    company = await make_company(communities=0)
    other = await make_company(communities=0)
    before = dt.datetime.now(dt.UTC)
    response = await client.post(
        "/api/v1/communities",
        headers=bearer(staff_token(company)) | {"X-Request-ID": "audit-req-0001"},
        json={"code": "AU01", "name": "审计花园"},
    )
    assert response.status_code == 201, response.text
    community_id = response.json()["id"]

    (row,) = await audit_rows(company.id, community_id)
    assert row.tenant_id == company.id
    assert (row.principal_kind, row.principal_id) == ("staff", str(company.admin_id))
    assert (row.action, row.target_type, row.target_id) == (
        "community.create",
        "community",
        community_id,
    )
    assert row.request_id == "audit-req-0001"
    assert str(row.ip) == "127.0.0.1"  # the ASGI test client's address
    assert before - dt.timedelta(seconds=5) <= row.created_at <= dt.datetime.now(dt.UTC)

    # Another company sees nothing, through the ORM or raw SQL under its tenant setting.
    assert await audit_rows(other.id, community_id) == []

    def raw_count(tenant_id: uuid.UUID) -> object:
        with psycopg.connect(app_dsn(get_settings())) as conn, conn.transaction():
            conn.execute("SELECT set_config('linli.tenant_id', %s, true)", (str(tenant_id),))
            return conn.execute(
                "SELECT count(*) FROM audit_log WHERE target_id = %s", (community_id,)
            ).fetchone()

    assert raw_count(company.id) == (1,)
    assert raw_count(other.id) == (0,)


async def test_a_refused_change_leaves_no_audit_row(client) -> None:
    company = await make_company(communities=0)
    headers = bearer(staff_token(company))
    body = {"code": "AU02", "name": "重复小区"}
    assert (await client.post("/api/v1/communities", headers=headers, json=body)).status_code == 201
    duplicate = await client.post(
        "/api/v1/communities", headers=headers | {"X-Request-ID": "audit-dup"}, json=body
    )
    assert duplicate.status_code == 409
    async with unit_of_work(company.id) as session:
        count = await session.scalar(
            text("SELECT count(*) FROM audit_log WHERE request_id = 'audit-dup'")
        )
    assert count == 0

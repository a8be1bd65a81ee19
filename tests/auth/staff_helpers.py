"""Helpers of the staff sign-in tests: clients from chosen addresses, sign-in calls, DB peeks."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select, update

from linli.auth.models import StaffUser
from linli.core.models import AuditEntry
from linli.db.engine import unit_of_work
from tests.factories import PASSWORD, Company

_addresses = itertools.count(1)


def new_ip() -> str:
    """A client address no other test uses, so per-IP counters never mix between tests."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@asynccontextmanager
async def client_from(app: Any, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def sign_in(
    client: httpx.AsyncClient,
    company: Company | str,
    login: str = "admin",
    password: str = PASSWORD,
) -> httpx.Response:
    slug = company if isinstance(company, str) else company.slug
    return await client.post(
        "/api/v1/auth/staff/token", json={"company": slug, "login": login, "password": password}
    )


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def staff_row(company: Company, staff_id: uuid.UUID) -> StaffUser:
    async with unit_of_work(company.id) as session:
        row = await session.scalar(select(StaffUser).where(StaffUser.id == staff_id))
        assert row is not None
        return row


async def set_staff(company: Company, staff_id: uuid.UUID, **values: Any) -> None:
    async with unit_of_work(company.id) as session:
        await session.execute(update(StaffUser).where(StaffUser.id == staff_id).values(**values))


async def audit_actions(company: Company, *, target_id: uuid.UUID | str | None = None) -> list[str]:
    async with unit_of_work(company.id) as session:
        statement = select(AuditEntry.action).order_by(AuditEntry.id)
        if target_id is not None:
            statement = statement.where(AuditEntry.target_id == str(target_id))
        return list((await session.scalars(statement)).all())

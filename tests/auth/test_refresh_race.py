"""Two holders of one refresh token racing: one wins, the family dies, nobody hangs."""

from __future__ import annotations

import asyncio

from linli.auth import service
from linli.core.errors import Unauthorized
from linli.db.engine import unit_of_work
from tests.factories import PASSWORD, make_company


async def _refresh(token: str) -> object:
    try:
        async with unit_of_work() as session:
            return await service.refresh_staff(
                session, refresh_token=token, ip=None, request_id=None
            )
    except Unauthorized as exc:
        return exc


async def test_concurrent_refresh_with_one_token_does_not_hang() -> None:
    company = await make_company(communities=0)
    async with unit_of_work() as session:
        issued = await service.login_staff(
            session,
            company=company.slug,
            login="admin",
            password=PASSWORD,
            ip=None,
            request_id=None,
        )
    async with asyncio.timeout(15):
        results = await asyncio.gather(*(_refresh(issued.refresh_token) for _ in range(2)))
    errors = [r for r in results if isinstance(r, Unauthorized)]
    assert len(errors) >= 1
    assert {e.instance_code for e in errors} <= {"refresh_token_reused", "refresh_token_revoked"}


async def test_reused_token_revokes_the_family_even_though_the_request_fails() -> None:
    company = await make_company(communities=0)
    async with unit_of_work() as session:
        issued = await service.login_staff(
            session,
            company=company.slug,
            login="admin",
            password=PASSWORD,
            ip=None,
            request_id=None,
        )
    rotated = await _refresh(issued.refresh_token)
    assert not isinstance(rotated, Unauthorized)
    reused = await _refresh(issued.refresh_token)
    assert isinstance(reused, Unauthorized) and reused.instance_code == "refresh_token_reused"
    newest = await _refresh(rotated.refresh_token)  # type: ignore[attr-defined]
    assert isinstance(newest, Unauthorized) and newest.instance_code == "refresh_token_revoked"

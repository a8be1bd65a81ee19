"""One refresh token, two holders: racing tabs share a successor; a late copy ends the family."""

from __future__ import annotations

import asyncio

from linli.auth import service
from linli.core.errors import Unauthorized
from linli.db.engine import unit_of_work
from tests.auth.rotation import age_rotation
from tests.factories import PASSWORD, make_company


async def _refresh(token: str) -> object:
    try:
        async with unit_of_work() as session:
            return await service.refresh_staff(
                session, refresh_token=token, ip=None, request_id=None
            )
    except Unauthorized as exc:
        return exc


async def test_tabs_refreshing_at_once_share_one_successor_and_nobody_hangs() -> None:
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
        results = await asyncio.gather(*(_refresh(issued.refresh_token) for _ in range(3)))
    assert not [r for r in results if isinstance(r, Unauthorized)], results
    successors = {r.refresh_token for r in results}  # type: ignore[attr-defined]
    assert len(successors) == 1 and issued.refresh_token not in successors
    # The shared successor is a normal link: it rotates on.
    assert not isinstance(await _refresh(successors.pop()), Unauthorized)


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
    # Within the reuse interval a second use is a racing tab: it gets the same successor.
    again = await _refresh(issued.refresh_token)
    assert again.refresh_token == rotated.refresh_token  # type: ignore[attr-defined]
    # Beyond it, the old token coming back is a stolen copy.
    age_rotation(issued.refresh_token, table="staff_refresh_tokens")
    reused = await _refresh(issued.refresh_token)
    assert isinstance(reused, Unauthorized) and reused.instance_code == "refresh_token_reused"
    newest = await _refresh(rotated.refresh_token)  # type: ignore[attr-defined]
    assert isinstance(newest, Unauthorized) and newest.instance_code == "refresh_token_revoked"

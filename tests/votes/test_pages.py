"""The vote pages as people use them: create and open in the console, vote in the portal."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.factories import PASSWORD, make_company
from tests.votes.helpers import houses_with_areas, resident_of
from tests.web.pageutil import csrf_of, new_ip, resident_sign_in, staff_sign_in, text_of


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(new_ip(), 40000)),
            base_url="http://testserver",
        )
        for _ in range(2)
    ]
    yield clients
    for http in clients:
        await http.aclose()


async def test_create_open_vote_in_portal_close_and_read_results(browsers) -> None:
    console, portal = browsers
    company = await make_company()
    houses = await houses_with_areas(company, ["100.00", "100.00", "100.00"])
    from linli.auth.models import ResidentAccount
    from linli.core import crypto
    from linli.db.engine import unit_of_work

    account_id, _ = await resident_of(company, houses[0])
    async with unit_of_work() as session:
        account = await session.get(ResidentAccount, account_id)
        assert account is not None and account.phone_enc is not None
        phone = crypto.decrypt(account.phone_enc)

    assert (
        await staff_sign_in(console, company=company.slug, login="admin", password=PASSWORD)
    ).status_code == 303
    page = await console.get("/console/votes")
    assert page.status_code == 200, page.text
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, microsecond=0)
    bad = await console.post(
        "/console/votes",
        data={
            "csrf_token": csrf_of(page),
            "title": "业主大会",
            "kind": "owners_assembly",
            "opens_at": (now - dt.timedelta(minutes=5)).isoformat(),
            "closes_at": (now + dt.timedelta(days=3)).isoformat(),
            "matters": "续聘物业服务企业",
        },
    )
    assert bad.status_code == 422
    created = await console.post(
        "/console/votes",
        data={
            "csrf_token": csrf_of(page),
            "title": "业主大会",
            "kind": "owners_assembly",
            "opens_at": (now - dt.timedelta(minutes=5)).isoformat(),
            "closes_at": (now + dt.timedelta(days=3)).isoformat(),
            "matters": "4 续聘物业服务企业\n6 筹集维修资金",
        },
    )
    assert created.status_code == 303, created.text
    vote_url = created.headers["location"]
    page = await console.get(vote_url)
    opened = await console.post(f"{vote_url}/open", data={"csrf_token": csrf_of(page)})
    assert opened.status_code == 303
    page = await console.get(vote_url)
    assert "0 / 3" in text_of(page)
    paper = await console.post(
        f"{vote_url}/paper",
        data={"csrf_token": csrf_of(page), "house": "1-1-102"}
        | {
            f"choice_{key}": "agree"
            for key in [chunk.split('"')[0] for chunk in page.text.split('name="choice_')[1:]]
        },
    )
    assert paper.status_code == 303, paper.text

    assert (await resident_sign_in(portal, phone)).status_code == 303
    mine = await portal.get("/portal/votes")
    assert mine.status_code == 200 and "业主大会" in mine.text
    choices = {
        f"choice_{key}": "agree"
        for key in {chunk.split('"')[0] for chunk in mine.text.split('name="choice_')[1:]}
    }
    cast = await portal.post(
        f"{vote_url.replace('/console', '/portal')}/ballot",
        data={
            "csrf_token": csrf_of(mine),
            "company_id": str(company.id),
            "house_id": str(houses[0]),
            **choices,
        },
    )
    assert cast.status_code == 303, cast.text
    again = await portal.post(
        f"{vote_url.replace('/console', '/portal')}/ballot",
        data={
            "csrf_token": csrf_of(mine),
            "company_id": str(company.id),
            "house_id": str(houses[0]),
            **choices,
        },
    )
    assert again.status_code == 409
    page = await console.get(vote_url)
    closed = await console.post(f"{vote_url}/close", data={"csrf_token": csrf_of(page)})
    assert closed.status_code == 303
    page = await console.get(vote_url)
    assert "2 / 3" in text_of(page)
    chain = page.text.split('data-testid="chain">')[1].split("</p>")[0]
    assert "field-error" not in chain  # the broken-chain warning is not shown
    export = await console.get(f"{vote_url}/ballots.xlsx")
    assert export.status_code == 200 and export.content[:2] == b"PK"
    results = await portal.get(
        f"{vote_url.replace('/console', '/portal')}/results", params={"company": str(company.id)}
    )
    assert results.status_code == 200
    assert 'data-testid="matter-verdict"' in results.text

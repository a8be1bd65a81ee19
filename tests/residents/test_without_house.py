"""A resident registered without a house (登记小区): API, scoping and the console list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from linli.auth.permissions import Role
from tests.estate.factories import make_houses
from tests.factories import PASSWORD, bearer, make_company, make_staff, staff_token
from tests.web.pageutil import csrf_of, new_ip, staff_sign_in, text_of


@pytest.fixture
async def web(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_registered_without_a_house_then_moves_in(client) -> None:
    company = await make_company(communities=2)
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    c1, c2 = company.communities
    manager = bearer(
        staff_token(
            company, roles=(Role.COMMUNITY_MANAGER,), all_communities=False, community_ids=[c1]
        )
    )
    other = bearer(
        staff_token(
            company, roles=(Role.COMMUNITY_MANAGER,), all_communities=False, community_ids=[c2]
        )
    )
    # A manager limited to some communities says where the person is registered.
    refused = await client.post("/api/v1/residents", headers=manager, json={"name": "准租户"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "community_id"
    foreign = await client.post(
        "/api/v1/residents", headers=manager, json={"name": "准租户", "community_id": str(c2)}
    )
    assert foreign.status_code == 404
    made = await client.post(
        "/api/v1/residents",
        headers=manager,
        json={
            "name": "准租户",
            "phone": "13700004444",
            "community_id": str(c1),
            "tags": ["待签约"],
        },
    )
    assert made.status_code == 201, made.text
    person = made.json()
    assert person["community_id"] == str(c1)

    listed = await client.get("/api/v1/residents", headers=manager, params={"without_house": True})
    assert [r["id"] for r in listed.json()["items"]] == [person["id"]]
    tagged = await client.get("/api/v1/residents", headers=manager, params={"tag": "待签约"})
    assert [r["id"] for r in tagged.json()["items"]] == [person["id"]]
    untagged = await client.get("/api/v1/residents", headers=manager, params={"tag": "党员"})
    assert untagged.json()["items"] == []
    in_c1 = await client.get("/api/v1/residents", headers=manager, params={"community_id": str(c1)})
    assert person["id"] in [r["id"] for r in in_c1.json()["items"]]
    hidden = await client.get("/api/v1/residents", headers=other)
    assert person["id"] not in [r["id"] for r in hidden.json()["items"]]
    assert (await client.get(f"/api/v1/residents/{person['id']}", headers=other)).status_code == 404

    moved = await client.post(
        f"/api/v1/residents/{person['id']}/move-in",
        headers=manager,
        json={"house_id": str(house), "relation": "tenant", "lease_end": "2027-06-30"},
    )
    assert moved.status_code == 201, moved.text
    after = await client.get("/api/v1/residents", headers=manager, params={"without_house": True})
    assert after.json()["items"] == []

    # Company B sees none of it.
    b = await make_company(communities=1)
    theirs = await client.get(
        "/api/v1/residents", headers=bearer(staff_token(b)), params={"without_house": True}
    )
    assert theirs.json()["items"] == []


async def test_tags_are_checked_on_update_too(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    made = await client.post("/api/v1/residents", headers=admin, json={"name": "王五"})
    assert made.status_code == 201
    bad = await client.patch(
        f"/api/v1/residents/{made.json()['id']}", headers=admin, json={"tags": ["有 空格"]}
    )
    assert bad.status_code == 422


async def test_console_registers_a_person_without_a_house(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    await make_staff(
        company,
        roles=(Role.FRONT_DESK,),
        community_ids=company.communities,
        username="desk",
    )
    await staff_sign_in(web, company=company.slug, login="desk", password=PASSWORD)
    page = await web.get("/console/residents")
    assert page.status_code == 200 and 'action="/console/residents"' in page.text
    token = csrf_of(page)
    blank = await web.post("/console/residents", data={"csrf_token": token, "name": " "})
    assert blank.status_code == 422
    bad_house = await web.post(
        "/console/residents", data={"csrf_token": token, "name": "赵六", "house": "9-9-909"}
    )
    assert bad_house.status_code == 422
    made = await web.post(
        "/console/residents",
        data={"csrf_token": token, "name": "赵六", "phone": "13700005555", "tags": "亲属"},
    )
    assert made.status_code == 303, made.text
    resident_url = made.headers["location"]
    resident_page = await web.get(resident_url)
    assert resident_page.status_code == 200
    assert 'data-testid="registered-in"' in resident_page.text
    with_house = await web.post(
        "/console/residents",
        data={"csrf_token": token, "name": "钱七", "house": "1-1-101", "relation": "owner"},
    )
    assert with_house.status_code == 303

    houseless = text_of(await web.get("/console/residents", params={"without_house": "1"}))
    assert "赵六" in houseless and "钱七" not in houseless
    tagged = text_of(await web.get("/console/residents", params={"tag": "亲属"}))
    assert "赵六" in tagged and "钱七" not in tagged
    everyone = text_of(await web.get("/console/residents"))
    assert "赵六" in everyone and "钱七" in everyone

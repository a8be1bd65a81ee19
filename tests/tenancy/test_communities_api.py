from __future__ import annotations

from linli.auth.permissions import Role
from tests.factories import bearer, make_company, staff_token


async def test_company_b_cannot_see_company_a_community(client) -> None:
    a = await make_company()
    b = await make_company()
    token_b = staff_token(b)
    response = await client.get(f"/api/v1/communities/{a.communities[0]}", headers=bearer(token_b))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = await client.get("/api/v1/communities", headers=bearer(token_b))
    ids = {item["id"] for item in listed.json()["items"]}
    assert ids == {str(c) for c in b.communities}


async def test_list_is_cursor_paginated(client) -> None:
    company = await make_company(communities=5)
    token = staff_token(company)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (
            await client.get("/api/v1/communities", headers=bearer(token), params=params)
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(c) for c in company.communities]


async def test_create_is_idempotent_and_rejects_a_changed_body(client) -> None:
    company = await make_company(communities=0)
    headers = bearer(staff_token(company)) | {"Idempotency-Key": "create-community-0001"}
    body = {"code": "HY01", "name": "海月花园"}
    first = await client.post("/api/v1/communities", headers=headers, json=body)
    second = await client.post("/api/v1/communities", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    changed = await client.post(
        "/api/v1/communities", headers=headers, json=body | {"name": "别的"}
    )
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    listed = await client.get("/api/v1/communities", headers=bearer(staff_token(company)))
    assert len(listed.json()["items"]) == 1


async def test_unknown_fields_and_wrong_types_name_the_field(client) -> None:
    company = await make_company(communities=0)
    headers = bearer(staff_token(company))
    response = await client.post(
        "/api/v1/communities", headers=headers, json={"code": "X1", "name": 5, "colour": "red"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"name", "colour"} <= fields


async def test_the_list_answers_exactly_the_documented_item_schema(client) -> None:
    """The list skips the schema pass (read path); its JSON must still be what OpenAPI says."""
    from linli.core.pagination import Page
    from linli.tenancy.schemas import CommunityRead

    company = await make_company(communities=3)
    response = await client.get("/api/v1/communities", headers=bearer(staff_token(company)))
    assert response.status_code == 200
    body = response.json()
    page = Page[CommunityRead].model_validate(body)
    assert page.model_dump(mode="json") == body
    assert all(set(item) == set(CommunityRead.model_fields) for item in body["items"])


async def test_a_manager_lists_only_granted_communities_on_every_page(client) -> None:
    company = await make_company(communities=5)
    granted = company.communities[1:4]
    token = staff_token(
        company, roles=(Role.COMMUNITY_MANAGER,), all_communities=False, community_ids=granted
    )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/communities", headers=bearer(token), params=params)
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(c) for c in granted]

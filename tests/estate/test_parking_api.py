"""Parking through the API: a range of spaces in one call, binding a space to a house."""

from __future__ import annotations

from tests.estate.factories import make_houses
from tests.factories import bearer, make_company, staff_token


async def test_a_range_of_spaces_then_bind_and_release(client) -> None:
    company = await make_company(communities=2)
    admin = bearer(staff_token(company))
    area = await client.post(
        "/api/v1/estate/parking-areas",
        headers=admin,
        json={"community_id": str(company.communities[0]), "name": "地下车库B1"},
    )
    assert area.status_code == 201, area.text
    url = f"/api/v1/estate/parking-areas/{area.json()['id']}/spaces"
    added = await client.post(url, headers=admin, json={"numbers": "B1-001..B1-120, B1-200"})
    assert added.status_code == 200, added.text
    assert added.json() == {"created": 121, "existing": 0}
    again = await client.post(url, headers=admin, json={"numbers": "B1-100..B1-130"})
    assert again.json() == {"created": 10, "existing": 21}
    bad = await client.post(url, headers=admin, json={"numbers": "B1-010..B1-001"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"

    spaces = await client.get(
        "/api/v1/estate/parking-spaces",
        headers=admin,
        params={"area_id": area.json()["id"], "limit": 1},
    )
    space = spaces.json()["items"][0]
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    bound = await client.patch(
        f"/api/v1/estate/parking-spaces/{space['id']}",
        headers=admin,
        json={"house_id": str(house), "usage": "owned"},
    )
    assert bound.status_code == 200, bound.text
    assert bound.json()["house_id"] == str(house) and bound.json()["usage"] == "owned"
    released = await client.patch(
        f"/api/v1/estate/parking-spaces/{space['id']}", headers=admin, json={"house_id": None}
    )
    assert released.status_code == 200 and released.json()["house_id"] is None

    # A house of the other community cannot take this community's space.
    [elsewhere] = await make_houses(
        company, community=1, buildings=1, units=1, floors=1, per_floor=1
    )
    refused = await client.patch(
        f"/api/v1/estate/parking-spaces/{space['id']}",
        headers=admin,
        json={"house_id": str(elsewhere), "usage": "owned"},
    )
    assert refused.status_code in (404, 422), refused.text

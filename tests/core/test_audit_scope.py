"""A community manager reads the audit trail of their communities and their own actions only."""

from __future__ import annotations

from linli.auth.permissions import Role
from tests.factories import bearer, make_company, make_staff, staff_token


async def test_managers_read_their_communities_trail_admins_read_all(client) -> None:
    company = await make_company(communities=2)
    mine, other = company.communities
    admin = bearer(staff_token(company))
    for community, building_no in ((mine, "A1"), (other, "B1")):
        created = await client.post(
            "/api/v1/estate/buildings",
            headers=admin,
            json={"community_id": str(community), "building_no": building_no},
        )
        assert created.status_code == 201, created.text
    manager_id = await make_staff(company, community_ids=[mine], username="audit-manager")
    manager = bearer(
        staff_token(
            company,
            manager_id,
            roles=(Role.COMMUNITY_MANAGER,),
            all_communities=False,
            community_ids=[mine],
        )
    )
    own = await client.post(
        "/api/v1/estate/buildings",
        headers=manager,
        json={"community_id": str(mine), "building_no": "A2"},
    )
    assert own.status_code == 201, own.text

    def buildings(response) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
        assert response.status_code == 200, response.text
        return {
            e["target_id"]: e["community_id"]
            for e in response.json()["items"]
            if e["action"] == "building.create"
        }

    everything = buildings(await client.get("/api/v1/audit?limit=200", headers=admin))
    assert sorted(everything.values()) == sorted([str(mine), str(mine), str(other)])
    seen = buildings(await client.get("/api/v1/audit?limit=200", headers=manager))
    assert set(seen.values()) == {str(mine)} and len(seen) == 2
    # Company-wide rows (the company's creation, staff accounts) stay with the admins.
    manager_actions = {
        e["action"]
        for e in (await client.get("/api/v1/audit?limit=200", headers=manager)).json()["items"]
    }
    assert "staff.create" not in manager_actions

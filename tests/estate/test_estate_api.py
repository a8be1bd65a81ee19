from __future__ import annotations

from decimal import Decimal

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.core.errors import ValidationFailed
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.rows import HouseRow
from tests.estate.factories import make_houses, make_resident
from tests.factories import bearer, make_company, make_staff, staff_token


async def test_company_b_gets_404_for_company_a_ids_everywhere(client) -> None:
    a = await make_company()
    b = await make_company()
    houses = await make_houses(a)
    token_b = bearer(staff_token(b))
    async with unit_of_work(a.id) as session:
        house = await estate.get_house(session, Actor.system(a.id), house_id=houses[0])
        building_id = house.building_id
    for method, path in [
        ("GET", f"/api/v1/estate/houses/{houses[0]}"),
        ("PATCH", f"/api/v1/estate/houses/{houses[0]}"),
        ("DELETE", f"/api/v1/estate/houses/{houses[0]}"),
        ("POST", f"/api/v1/estate/houses/{houses[0]}/archive"),
        ("GET", f"/api/v1/estate/buildings/{building_id}"),
        ("GET", f"/api/v1/estate/buildings/{building_id}/tree"),
        ("GET", f"/api/v1/estate/buildings/{building_id}/units"),
        ("GET", f"/api/v1/estate/communities/{a.communities[0]}/tree"),
        ("GET", f"/api/v1/estate/communities/{a.communities[0]}/profile"),
        ("GET", f"/api/v1/houses/{houses[0]}/residents"),
    ]:
        kwargs = {"json": {"floor": 3}} if method == "PATCH" else {}
        response = await client.request(method, path, headers=token_b, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    created = await client.post(
        "/api/v1/estate/houses",
        headers=token_b,
        json={"building_id": str(building_id), "house_no": "999", "building_area": "80"},
    )
    assert created.status_code == 404
    listed = await client.get("/api/v1/estate/houses", headers=token_b)
    assert listed.json()["items"] == []


async def test_staff_of_community_1_cannot_see_community_2(client) -> None:
    company = await make_company(communities=2)
    first = await make_houses(company, community=0)
    second = await make_houses(company, community=1)
    staff = await make_staff(
        company, roles=[Role.COMMUNITY_MANAGER], community_ids=[company.communities[0]]
    )
    token = bearer(
        staff_token(
            company,
            staff,
            roles=[Role.COMMUNITY_MANAGER],
            all_communities=False,
            community_ids=[company.communities[0]],
        )
    )
    assert (await client.get(f"/api/v1/estate/houses/{first[0]}", headers=token)).status_code == 200
    assert (
        await client.get(f"/api/v1/estate/houses/{second[0]}", headers=token)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/estate/communities/{company.communities[1]}/tree", headers=token)
    ).status_code == 404
    listed = (
        await client.get("/api/v1/estate/houses", headers=token, params={"limit": 200})
    ).json()
    assert {i["id"] for i in listed["items"]} == {str(h) for h in first}
    stats = (await client.get("/api/v1/estate/stats", headers=token)).json()
    assert [s["community_id"] for s in stats] == [str(company.communities[0])]


async def test_upsert_houses_is_idempotent_and_updates_changed_rows() -> None:
    company = await make_company(communities=1)
    actor = Actor.system(company.id)
    rows = [
        HouseRow(
            "C01",
            "3",
            "2",
            "1201",
            12,
            Decimal("120.50"),
            Decimal("98.00"),
            "residence",
            "delivered",
        ),
        HouseRow("C01", "3", "2", "1202", 12, Decimal("88.00"), None, "residence", "unsold"),
        HouseRow("C01", "S1", None, "101", 1, Decimal("45.00"), None, "shop", "vacant"),
    ]
    async with unit_of_work(company.id) as session:
        first = await estate.upsert_houses(session, actor, rows=rows)
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    async with unit_of_work(company.id) as session:
        again = await estate.upsert_houses(session, actor, rows=rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = [
        *rows[:2],
        HouseRow("C01", "S1", None, "101", 1, Decimal("46.00"), None, "shop", "occupied"),
    ]
    async with unit_of_work(company.id) as session:
        third = await estate.upsert_houses(session, actor, rows=changed)
        tree = await estate.community_tree(session, actor, community_id=company.communities[0])
    assert (third.created, third.updated, third.unchanged) == (1 - 1, 1, 2)
    assert {b.building_no: b.houses for b in tree} == {"3": 2, "S1": 1}
    assert {b.building_no: b.occupied for b in tree} == {"3": 0, "S1": 1}


async def test_upsert_refuses_a_community_the_actor_cannot_see() -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=1)
    scoped = Actor.staff(
        id=a.admin_id,
        tenant_id=a.id,
        roles=frozenset({"community_manager"}),
        all_communities=False,
        community_ids=frozenset({a.communities[0]}),
    )
    rows = [
        HouseRow("C01", "1", "1", "101", 1, Decimal("80"), None, "residence", "delivered"),
        HouseRow("C02", "1", "1", "101", 1, Decimal("80"), None, "residence", "delivered"),
        HouseRow("ZZ9", "1", "1", "101", 1, Decimal("80"), None, "residence", "delivered"),
    ]
    async with unit_of_work(a.id) as session:
        try:
            await estate.upsert_houses(session, scoped, rows=rows)
        except ValidationFailed as exc:
            assert exc.instance_code == "unknown_community"
            assert [e.field for e in exc.errors] == [
                "rows[1].community_code",
                "rows[2].community_code",
            ]
        else:
            raise AssertionError("expected ValidationFailed")
    # Company B's own community code "C01" resolves inside B only, never into A.
    async with unit_of_work(b.id) as session:
        result = await estate.upsert_houses(session, Actor.system(b.id), rows=rows[:1])
        assert result.created == 1
    async with unit_of_work(a.id) as session:
        tree = await estate.community_tree(
            session, Actor.system(a.id), community_id=a.communities[0]
        )
        assert tree == []


async def test_delete_refused_while_residents_live_there_archive_works(client) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    await make_resident(company, house_id=houses[0])
    token = bearer(staff_token(company))
    refused = await client.delete(f"/api/v1/estate/houses/{houses[0]}", headers=token)
    assert refused.status_code == 409
    assert refused.json()["code"] == "house_in_use"
    archived = await client.post(f"/api/v1/estate/houses/{houses[0]}/archive", headers=token)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    free = await client.delete(f"/api/v1/estate/houses/{houses[1]}", headers=token)
    assert free.status_code == 204
    assert (
        await client.get(f"/api/v1/estate/houses/{houses[1]}", headers=token)
    ).status_code == 404


async def test_create_tree_and_pagination(client) -> None:
    company = await make_company(communities=1)
    token = bearer(staff_token(company))
    building = await client.post(
        "/api/v1/estate/buildings",
        headers=token | {"Idempotency-Key": "building-0001"},
        json={"community_id": str(company.communities[0]), "building_no": "7", "floors_above": 18},
    )
    assert building.status_code == 201
    building_id = building.json()["id"]
    unit = await client.post(
        f"/api/v1/estate/buildings/{building_id}/units", headers=token, json={"unit_no": "1"}
    )
    assert unit.status_code == 201
    for n in range(5):
        created = await client.post(
            "/api/v1/estate/houses",
            headers=token,
            json={
                "building_id": building_id,
                "unit_id": unit.json()["id"],
                "house_no": f"10{n}",
                "floor": 1,
                "building_area": "90.25",
                "inner_area": "75.10",
            },
        )
        assert created.status_code == 201, created.text
    duplicate = await client.post(
        "/api/v1/estate/houses",
        headers=token,
        json={
            "building_id": building_id,
            "unit_id": unit.json()["id"],
            "house_no": "100",
            "building_area": "90",
        },
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "house_no_taken"
    bad_area = await client.post(
        "/api/v1/estate/houses",
        headers=token,
        json={
            "building_id": building_id,
            "house_no": "1",
            "building_area": "50",
            "inner_area": "60",
        },
    )
    assert bad_area.status_code == 422 and bad_area.json()["errors"][0]["field"] == "inner_area"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "building_id": building_id} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/estate/houses", headers=token, params=params)).json()
        seen += [h["house_no"] for h in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["100", "101", "102", "103", "104"]
    tree = (
        await client.get(f"/api/v1/estate/communities/{company.communities[0]}/tree", headers=token)
    ).json()
    assert tree["buildings"][0]["houses"] == 5 and tree["buildings"][0]["units"][0]["houses"] == 5
    leaves = (
        await client.get(f"/api/v1/estate/buildings/{building_id}/tree", headers=token)
    ).json()
    assert [h["house_no"] for h in leaves["units"][0]["houses"]] == [
        "100",
        "101",
        "102",
        "103",
        "104",
    ]
    profile = await client.patch(
        f"/api/v1/estate/communities/{company.communities[0]}/profile",
        headers=token,
        json={
            "area_m2": "52000.50",
            "contact_phone": "0755-8888 1234",
            "fee_settings": {
                "rate_per_m2": {"residence": "2.80", "shop": "6.50"},
                "billing_day": 5,
            },
        },
    )
    assert profile.status_code == 200, profile.text
    assert profile.json()["fee_settings"]["rate_per_m2"]["residence"] == "2.80"
    assert Decimal(profile.json()["area_m2"]) == Decimal("52000.50")


async def test_technician_reads_but_cannot_write(client) -> None:
    company = await make_company(communities=1)
    token = bearer(staff_token(company, roles=[Role.TECHNICIAN]))
    assert (await client.get("/api/v1/estate/houses", headers=token)).status_code == 200
    denied = await client.post(
        "/api/v1/estate/buildings",
        headers=token,
        json={"community_id": str(company.communities[0]), "building_no": "1"},
    )
    assert denied.status_code == 403
    assert (await client.get("/api/v1/residents", headers=token)).status_code == 403


def test_parse_house_ref() -> None:
    assert estate.parse_house_ref("3-2-1201") == estate.HouseRef("3", "2", "1201")
    assert estate.parse_house_ref("３栋２单元１２０１") == estate.HouseRef("3", "2", "1201")
    assert estate.parse_house_ref("3号楼1201室") == estate.HouseRef("3", None, "1201")
    assert estate.parse_house_ref("S1-101") == estate.HouseRef("S1", None, "101")
    assert estate.parse_house_ref("hello world") is None

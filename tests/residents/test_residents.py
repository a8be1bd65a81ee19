from __future__ import annotations

import datetime as dt

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.core.errors import ValidationFailed
from linli.db.engine import unit_of_work
from linli.estate.rows import ResidentRow, VehicleRow
from linli.residents import service as residents
from linli.residents.models import Relation
from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import bearer, make_company, make_staff, staff_token


def _row(
    name: str, phone: str | None, house: str, relation: str = "owner", **extra: object
) -> ResidentRow:
    building, unit, number = house.split("-")
    return ResidentRow(
        name=name,
        phone=phone,
        id_card=extra.pop("id_card", None),
        gender=extra.pop("gender", None),  # type: ignore[arg-type]
        birth_date=None,
        community_code="C01",
        building_no=building,
        unit_no=unit,
        house_no=number,
        relation=relation,
        **extra,  # type: ignore[arg-type]
    )


async def test_upsert_residents_is_idempotent_by_phone_id_and_name() -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    actor = Actor.system(company.id)
    owner_phone = random_phone()
    rows = [
        _row("王建国", owner_phone, "1-1-101", id_card="11010519491231002X", gender="male"),
        _row("李秀英", random_phone(), "1-1-101", "family"),
        _row("王小明", None, "1-1-101", "family"),  # a child: no phone, no ID
        _row("王建国", owner_phone, "1-2-201"),  # same person owns a second house
        _row(
            "赵租客",
            random_phone(),
            "1-1-102",
            "tenant",
            lease_start=dt.date(2026, 1, 1),
            lease_end=dt.date(2026, 12, 31),
        ),
    ]
    async with unit_of_work(company.id) as session:
        first = await residents.upsert_residents(session, actor, rows=rows)
    assert (first.created, first.updated, first.unchanged) == (5, 0, 0)
    async with unit_of_work(company.id) as session:
        again = await residents.upsert_residents(session, actor, rows=rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    changed = [
        *rows[:4],
        _row(
            "赵租客",
            rows[4].phone,
            "1-1-102",
            "tenant",
            lease_start=dt.date(2026, 1, 1),
            lease_end=dt.date(2027, 6, 30),
        ),
    ]
    async with unit_of_work(company.id) as session:
        third = await residents.upsert_residents(session, actor, rows=changed)
        found, _ = await residents.search_residents(
            session,
            actor,
            search=residents.ResidentSearch(phone=owner_phone),
            page=residents.PageParams(),
        )
        links = await residents.houses_of_resident(session, actor, resident_id=found[0].id)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 4)
    assert len(found) == 1 and found[0].name == "王建国"
    assert sorted(x.house.house_no for x in links) == ["101", "201"]


async def test_upsert_residents_names_bad_rows() -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    rows = [
        _row("甲", "12345", "1-1-101"),
        _row("乙", None, "1-1-101", id_card="110105194912310021"),
        _row("丙", None, "9-9-999"),
    ]
    async with unit_of_work(company.id) as session:
        try:
            await residents.upsert_residents(session, Actor.system(company.id), rows=rows)
        except ValidationFailed as exc:
            assert {e.field for e in exc.errors} == {"rows[0].phone", "rows[1].id_card"}
        else:
            raise AssertionError("expected ValidationFailed")
    async with unit_of_work(company.id) as session:
        try:
            await residents.upsert_residents(session, Actor.system(company.id), rows=rows[2:])
        except ValidationFailed as exc:
            assert exc.instance_code == "house_not_found"
            assert [e.field for e in exc.errors] == ["rows[0].house_no"]
        else:
            raise AssertionError("expected ValidationFailed")


async def test_upsert_vehicles_normalizes_plates_and_is_idempotent() -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    phone = random_phone()
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        await residents.upsert_residents(session, actor, rows=[_row("车主", phone, "1-1-101")])
    rows = [
        VehicleRow("粤b·d12345", "C01", "1", "1", "101", phone, "比亚迪", "白"),
        VehicleRow("京Ａ１２３４５", "C01"),
    ]
    async with unit_of_work(company.id) as session:
        first = await residents.upsert_vehicles(session, actor, rows=rows)
        again = await residents.upsert_vehicles(session, actor, rows=rows)
        listed, _ = await residents.list_vehicles(session, actor, page=residents.PageParams())
    assert (first.created, again.unchanged) == (2, 2)
    assert {(v.plate, v.new_energy) for v in listed} == {("粤BD12345", True), ("京A12345", False)}
    async with unit_of_work(company.id) as session:
        try:
            await residents.upsert_vehicles(session, actor, rows=[VehicleRow("京I12345", "C01")])
        except ValidationFailed as exc:
            assert exc.errors[0].field == "rows[0].plate"
        else:
            raise AssertionError("expected ValidationFailed")


async def test_contact_masked_without_permission_and_search(client) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="欧阳娜娜", phone=phone)
    await make_resident(company, house_id=houses[1], name="欧阳锋", phone=random_phone())
    await make_resident(company, house_id=houses[2], name="欧_阳", phone=random_phone())
    admin = bearer(staff_token(company))
    cashier = bearer(staff_token(company, roles=[Role.CASHIER]))
    full = (await client.get("/api/v1/residents", headers=admin, params={"phone": phone})).json()[
        "items"
    ]
    assert full[0]["phone"] == phone and full[0]["contact_masked"] is False
    masked = (
        await client.get("/api/v1/residents", headers=cashier, params={"phone": phone})
    ).json()["items"]
    assert (
        masked[0]["phone"] == phone[:3] + "****" + phone[-4:]
        and masked[0]["contact_masked"] is True
    )
    names = (await client.get("/api/v1/residents", headers=admin, params={"name": "欧阳"})).json()[
        "items"
    ]
    assert [n["name"] for n in names] == ["欧阳娜娜", "欧阳锋"]  # "_" is not a wildcard
    page1 = (
        await client.get("/api/v1/residents", headers=admin, params={"name": "欧", "limit": 2})
    ).json()
    page2 = (
        await client.get(
            "/api/v1/residents",
            headers=admin,
            params={"name": "欧", "limit": 2, "cursor": page1["next_cursor"]},
        )
    ).json()
    assert len(page1["items"]) == 2 and len(page2["items"]) == 1 and page2["next_cursor"] is None
    by_house = (
        await client.get("/api/v1/residents", headers=admin, params={"house": "1栋1单元101"})
    ).json()
    assert [n["name"] for n in by_house["items"]] == ["欧阳娜娜"]
    bad = await client.get("/api/v1/residents", headers=admin, params={"phone": "123"})
    assert bad.status_code == 422


async def test_residents_isolated_between_companies_and_communities(client) -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=1)
    first = await make_houses(a, community=0)
    second = await make_houses(a, community=1)
    mine = await make_resident(a, house_id=first[0], name="一号", phone=random_phone())
    theirs = await make_resident(a, house_id=second[0], name="二号", phone=random_phone())
    token_b = bearer(staff_token(b))
    for path in (f"/api/v1/residents/{mine}", f"/api/v1/residents/{mine}/houses"):
        assert (await client.get(path, headers=token_b)).status_code == 404
    assert (
        await client.patch(f"/api/v1/residents/{mine}", headers=token_b, json={"name": "x"})
    ).status_code == 404
    moved = await client.post(
        f"/api/v1/residents/{mine}/move-in",
        headers=token_b,
        json={"house_id": str(first[1]), "relation": "family"},
    )
    assert moved.status_code == 404
    assert (await client.get("/api/v1/residents", headers=token_b)).json()["items"] == []
    staff = await make_staff(a, roles=[Role.FRONT_DESK], community_ids=[a.communities[0]])
    scoped = bearer(
        staff_token(
            a,
            staff,
            roles=[Role.FRONT_DESK],
            all_communities=False,
            community_ids=[a.communities[0]],
        )
    )
    assert (await client.get(f"/api/v1/residents/{mine}", headers=scoped)).status_code == 200
    assert (await client.get(f"/api/v1/residents/{theirs}", headers=scoped)).status_code == 404
    listed = (await client.get("/api/v1/residents", headers=scoped)).json()["items"]
    assert [r["name"] for r in listed] == ["一号"]


async def test_move_out_keeps_history(client) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    resident = await make_resident(company, house_id=houses[0], phone=random_phone())
    token = bearer(staff_token(company))
    members = (await client.get(f"/api/v1/houses/{houses[0]}/residents", headers=token)).json()
    link_id = members[0]["link"]["id"]
    out = await client.post(f"/api/v1/resident-links/{link_id}/move-out", headers=token, json={})
    assert out.status_code == 200 and out.json()["moved_out_on"]
    assert (await client.get(f"/api/v1/houses/{houses[0]}/residents", headers=token)).json() == []
    history = (
        await client.get(
            f"/api/v1/houses/{houses[0]}/residents",
            headers=token,
            params={"include_history": "true"},
        )
    ).json()
    assert [h["resident"]["id"] for h in history] == [str(resident)]
    again = await client.post(
        f"/api/v1/residents/{resident}/move-in",
        headers=token,
        json={"house_id": str(houses[0]), "relation": "owner"},
    )
    assert again.status_code == 201
    # Still refused: the house has history.
    assert (await client.delete(f"/api/v1/estate/houses/{houses[0]}", headers=token)).json()[
        "code"
    ] == "house_in_use"


async def test_claim_approve_then_owner_adds_tenant_who_sees_the_house(client) -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    owner_phone, tenant_phone, stranger_phone = random_phone(), random_phone(), random_phone()
    _, owner_token = await make_resident_account(owner_phone, "业主")
    _, tenant_token = await make_resident_account(tenant_phone, "租客")
    _, stranger_token = await make_resident_account(stranger_phone, "路人")
    owner = bearer(owner_token)
    assert (await client.get("/api/v1/resident/homes", headers=owner)).json() == {
        "homes": [],
        "claims": [],
    }

    claim = await client.post(
        "/api/v1/resident/claims",
        headers=owner,
        json={
            "company": company.slug,
            "community_code": "C01",
            "house": "1栋1单元101",
            "name": "业主本人",
        },
    )
    assert claim.status_code == 201, claim.text
    duplicate = await client.post(
        "/api/v1/resident/claims",
        headers=owner,
        json={
            "company": company.slug,
            "community_code": "C01",
            "house": "1-1-101",
            "name": "业主本人",
        },
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "claim_pending"
    pending = (await client.get("/api/v1/resident/homes", headers=owner)).json()
    assert pending["homes"] == [] and pending["claims"][0]["status"] == "pending"
    missing = await client.post(
        "/api/v1/resident/claims",
        headers=owner,
        json={"company": company.slug, "community_code": "C01", "house": "1-1-999", "name": "x"},
    )
    assert missing.status_code == 404

    desk = bearer(staff_token(company, roles=[Role.FRONT_DESK]))
    queue = (await client.get("/api/v1/claims", headers=desk, params={"status": "pending"})).json()[
        "items"
    ]
    assert [c["id"] for c in queue] == [claim.json()["id"]]
    other = await make_company(communities=1)
    assert (
        await client.post(
            f"/api/v1/claims/{claim.json()['id']}/approve", headers=bearer(staff_token(other))
        )
    ).status_code == 404
    approved = await client.post(f"/api/v1/claims/{claim.json()['id']}/approve", headers=desk)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = await client.post(f"/api/v1/claims/{claim.json()['id']}/approve", headers=desk)
    assert again.status_code == 409

    homes = (await client.get("/api/v1/resident/homes", headers=owner)).json()["homes"]
    assert [(h["building_no"], h["unit_no"], h["house_no"], h["my_relation"]) for h in homes] == [
        ("1", "1", "101", "owner")
    ]
    home = homes[0]
    assert home["company_id"] == str(company.id)

    tenant = bearer(tenant_token)
    assert (await client.get("/api/v1/resident/homes", headers=tenant)).json()["homes"] == []
    added = await client.post(
        f"/api/v1/resident/homes/{home['house_id']}/members",
        headers=owner,
        json={
            "company_id": home["company_id"],
            "name": "租客小李",
            "phone": tenant_phone,
            "relation": "tenant",
            "lease_start": "2026-01-01",
            "lease_end": "2026-12-31",
        },
    )
    assert added.status_code == 201, added.text
    seen = (await client.get("/api/v1/resident/homes", headers=tenant)).json()["homes"]
    assert [h["house_id"] for h in seen] == [home["house_id"]]
    assert seen[0]["my_relation"] == "tenant"
    assert {m["name"] for m in seen[0]["members"]} == {"业主本人", "租客小李"}
    assert all(m["phone_masked"] is None or "****" in m["phone_masked"] for m in seen[0]["members"])

    # A tenant may not add people; a stranger sees nothing and cannot add to the house.
    refused = await client.post(
        f"/api/v1/resident/homes/{home['house_id']}/members",
        headers=tenant,
        json={"company_id": home["company_id"], "name": "x", "relation": "family"},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "owner_only"
    stranger = bearer(stranger_token)
    assert (await client.get("/api/v1/resident/homes", headers=stranger)).json()["homes"] == []
    sneaky = await client.post(
        f"/api/v1/resident/homes/{home['house_id']}/members",
        headers=stranger,
        json={"company_id": home["company_id"], "name": "x", "relation": "family"},
    )
    assert sneaky.status_code == 404
    # Staff tokens cannot use the portal endpoints, and resident tokens cannot use staff ones.
    assert (await client.get("/api/v1/resident/homes", headers=desk)).status_code == 403
    assert (await client.get("/api/v1/residents", headers=owner)).status_code == 403


async def test_reject_needs_a_reason(client) -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    _, token = await make_resident_account(random_phone())
    claim = (
        await client.post(
            "/api/v1/resident/claims",
            headers=bearer(token),
            json={
                "company": company.slug,
                "community_code": "C01",
                "house": "1-2-201",
                "name": "某人",
            },
        )
    ).json()
    admin = bearer(staff_token(company))
    assert (
        await client.post(f"/api/v1/claims/{claim['id']}/reject", headers=admin, json={})
    ).status_code == 422
    rejected = await client.post(
        f"/api/v1/claims/{claim['id']}/reject", headers=admin, json={"reason": "产权证明不符"}
    )
    assert rejected.json()["status"] == "rejected"
    mine = (await client.get("/api/v1/resident/homes", headers=bearer(token))).json()
    assert (
        mine["claims"][0]["status"] == "rejected" and mine["claims"][0]["reason"] == "产权证明不符"
    )


async def test_create_resident_requires_house_for_scoped_staff(client) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    staff = await make_staff(
        company, roles=[Role.FRONT_DESK], community_ids=[company.communities[0]]
    )
    token = bearer(
        staff_token(
            company,
            staff,
            roles=[Role.FRONT_DESK],
            all_communities=False,
            community_ids=[company.communities[0]],
        )
    )
    no_house = await client.post("/api/v1/residents", headers=token, json={"name": "甲"})
    assert no_house.status_code == 422
    created = await client.post(
        "/api/v1/residents",
        headers=token | {"Idempotency-Key": "resident-create-1"},
        json={
            "name": "甲",
            "phone": "+86 139-0000-1111",
            "id_card": "11010519491231002x",
            "house_id": str(houses[0]),
            "relation": Relation.OWNER.value,
        },
    )
    assert created.status_code == 201, created.text
    assert (
        created.json()["phone"] == "13900001111"
        and created.json()["id_card"] == "11010519491231002X"
    )
    bad = await client.post(
        "/api/v1/residents",
        headers=token,
        json={
            "name": "乙",
            "id_card": "110105194912310021",
            "house_id": str(houses[0]),
            "relation": "owner",
        },
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "id_card"

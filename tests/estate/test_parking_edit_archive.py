"""Editing, archiving and deleting parking areas, spaces, facilities and vehicles (API).

Deleting something other records use is refused with the reason and archive is offered;
archived things leave the lists (and the gates) but keep their history.
"""

from __future__ import annotations

import datetime as dt
import uuid

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from tests.estate.factories import make_houses, make_resident
from tests.factories import bearer, make_company, staff_token

API = "/api/v1/estate"


async def _area_with_spaces(client, admin, community: uuid.UUID, numbers: str) -> str:
    area = await client.post(
        f"{API}/parking-areas", headers=admin, json={"community_id": str(community), "name": "B1"}
    )
    assert area.status_code == 201, area.text
    added = await client.post(
        f"{API}/parking-areas/{area.json()['id']}/spaces",
        headers=admin,
        json={"numbers": numbers, "usage": "rented"},
    )
    assert added.status_code == 200, added.text
    return str(area.json()["id"])


async def _spaces(client, admin, area_id: str, **params: object) -> list[dict[str, object]]:
    listed = await client.get(
        f"{API}/parking-spaces", headers=admin, params={"area_id": area_id, **params}
    )
    assert listed.status_code == 200, listed.text
    return sorted(listed.json()["items"], key=lambda s: str(s["space_no"]))


async def test_edit_a_space_holder_lease_and_number(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    tenant = await make_resident(company, house_id=house, name="租户甲", phone="13700001111")
    area_id = await _area_with_spaces(client, admin, company.communities[0], "B1-001..B1-003")
    first, second, _ = await _spaces(client, admin, area_id)

    leased = await client.patch(
        f"{API}/parking-spaces/{first['id']}",
        headers=admin,
        json={
            "resident_id": str(tenant),
            "house_id": str(house),
            "lease_start": "2026-01-01",
            "lease_end": "2027-12-31",
            "space_no": "B1-101",
            "area_m2": "12.50",
        },
    )
    assert leased.status_code == 200, leased.text
    body = leased.json()
    assert body["resident_id"] == str(tenant) and body["house_id"] == str(house)
    assert (body["lease_start"], body["lease_end"]) == ("2026-01-01", "2027-12-31")
    assert body["space_no"] == "B1-101" and body["usage"] == "rented"

    # An owned space has no lease; a lease cannot end before it starts; numbers stay unique.
    for change, code in (
        ({"usage": "owned"}, "lease_not_allowed"),
        ({"lease_end": "2025-01-01"}, "invalid_range"),
        ({"usage": "temporary"}, "temporary_space_bound"),
        ({"space_no": second["space_no"]}, "parking_space_taken"),
        ({"resident_id": str(uuid.uuid4())}, "resident_not_found"),
    ):
        refused = await client.patch(
            f"{API}/parking-spaces/{first['id']}", headers=admin, json=change
        )
        assert refused.status_code in (404, 409, 422), (change, refused.text)
        assert refused.json()["code"] == code or any(
            e["code"] == code for e in refused.json().get("errors", [])
        ), (change, refused.json())

    # Releasing the holder also ends the lease.
    released = await client.patch(
        f"{API}/parking-spaces/{first['id']}",
        headers=admin,
        json={"resident_id": None, "house_id": None},
    )
    assert released.status_code == 200, released.text
    assert released.json()["lease_end"] is None and released.json()["house_id"] is None


async def test_delete_a_held_space_is_refused_archive_instead(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    area_id = await _area_with_spaces(client, admin, company.communities[0], "B1-001..B1-002")
    held, free = await _spaces(client, admin, area_id)
    lease_end = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    await client.patch(
        f"{API}/parking-spaces/{held['id']}",
        headers=admin,
        json={"house_id": str(house), "lease_end": lease_end},
    )

    refused = await client.delete(f"{API}/parking-spaces/{held['id']}", headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "parking_space_in_use"
    assert "active_lease" in refused.json()["detail"]
    # The house with a space bound to it cannot be deleted either.
    house_refused = await client.delete(f"{API}/houses/{house}", headers=admin)
    assert house_refused.status_code == 409 and "parking_spaces" in house_refused.json()["detail"]
    # Nor can the area that holds it.
    area_refused = await client.delete(f"{API}/parking-areas/{area_id}", headers=admin)
    assert area_refused.status_code == 409
    assert area_refused.json()["code"] == "parking_area_in_use"

    archived = await client.post(f"{API}/parking-spaces/{held['id']}/archive", headers=admin)
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert [s["id"] for s in await _spaces(client, admin, area_id)] == [free["id"]]
    everything = await _spaces(client, admin, area_id, include_archived="true")
    assert {s["id"] for s in everything} == {held["id"], free["id"]}
    restored = await client.post(f"{API}/parking-spaces/{held['id']}/restore", headers=admin)
    assert restored.json()["archived_at"] is None

    gone = await client.delete(f"{API}/parking-spaces/{free['id']}", headers=admin)
    assert gone.status_code == 204, gone.text
    assert [s["id"] for s in await _spaces(client, admin, area_id)] == [held["id"]]


async def test_other_domains_refusals_are_reported(client) -> None:
    """A domain's registered check (billing: parking bills) refuses the delete by name."""
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    area_id = await _area_with_spaces(client, admin, company.communities[0], "B1-001")
    [space] = await _spaces(client, admin, area_id)
    billed = {uuid.UUID(str(space["id"]))}

    @estate.usage_check("parking_space", "test_bills")
    async def _bills(session: object, tenant_id: uuid.UUID, space_id: uuid.UUID) -> str | None:
        return "bills" if space_id in billed else None

    try:
        refused = await client.delete(f"{API}/parking-spaces/{space['id']}", headers=admin)
        assert refused.status_code == 409 and "bills" in refused.json()["detail"]
        area_refused = await client.delete(f"{API}/parking-areas/{area_id}", headers=admin)
        assert area_refused.status_code == 409 and "bills" in area_refused.json()["detail"]
    finally:
        del estate._checks["parking_space"]["test_bills"]
    assert (await client.delete(f"{API}/parking-areas/{area_id}", headers=admin)).status_code == 204
    assert await _spaces(client, admin, area_id, include_archived="true") == []


async def test_archive_an_area_archives_its_spaces_and_rename(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    area_id = await _area_with_spaces(client, admin, company.communities[0], "B1-001..B1-005")
    renamed = await client.patch(
        f"{API}/parking-areas/{area_id}", headers=admin, json={"name": "地下车库B1"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "地下车库B1"
    archived = await client.post(f"{API}/parking-areas/{area_id}/archive", headers=admin)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    areas = await client.get(
        f"{API}/parking-areas", headers=admin, params={"community_id": str(company.communities[0])}
    )
    assert areas.json()["items"] == []
    assert await _spaces(client, admin, area_id) == []
    assert len(await _spaces(client, admin, area_id, include_archived="true")) == 5
    async with unit_of_work(company.id) as session:
        summary = await estate.parking_summary(
            session, Actor.system(company.id), community_id=company.communities[0]
        )
    assert summary == []


async def test_facility_edit_archive_delete(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    created = await client.post(
        f"{API}/facilities",
        headers=admin,
        json={"community_id": str(company.communities[0]), "name": "1号电梯", "kind": "lift"},
    )
    facility = created.json()["id"]
    edited = await client.patch(
        f"{API}/facilities/{facility}", headers=admin, json={"location": "3栋大堂"}
    )
    assert edited.status_code == 200 and edited.json()["location"] == "3栋大堂"
    assert edited.json()["name"] == "1号电梯"
    bad = await client.patch(f"{API}/facilities/{facility}", headers=admin, json={"kind": "电梯"})
    assert bad.status_code == 422
    archived = await client.post(f"{API}/facilities/{facility}/archive", headers=admin)
    assert archived.status_code == 200
    listed = await client.get(f"{API}/facilities", headers=admin)
    assert listed.json()["items"] == []
    assert (await client.delete(f"{API}/facilities/{facility}", headers=admin)).status_code == 204


async def test_vehicle_edit_archive_delete_and_gates_forget_it(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    community = str(company.communities[0])
    made = await client.post(
        "/api/v1/vehicles", headers=admin, json={"community_id": community, "plate": "粤B12345"}
    )
    assert made.status_code == 201, made.text
    vehicle = made.json()["id"]
    fixed = await client.patch(
        f"/api/v1/vehicles/{vehicle}", headers=admin, json={"plate": "粤b·d12345", "color": "白"}
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["plate"] == "粤BD12345" and fixed.json()["new_energy"] is True
    bad = await client.patch(f"/api/v1/vehicles/{vehicle}", headers=admin, json={"plate": "X1"})
    assert bad.status_code == 422

    archived = await client.post(f"/api/v1/vehicles/{vehicle}/archive", headers=admin)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    listed = await client.get("/api/v1/vehicles", headers=admin, params={"plate": "粤BD12345"})
    assert listed.json()["items"] == []  # what the barrier asks: an archived car is a stranger
    # Registering the plate again brings the same vehicle back.
    again = await client.post(
        "/api/v1/vehicles", headers=admin, json={"community_id": community, "plate": "粤BD12345"}
    )
    assert again.status_code == 201 and again.json()["id"] == vehicle
    assert again.json()["archived_at"] is None

    @estate.usage_check("vehicle", "test_gate")
    async def _gate(session: object, tenant_id: uuid.UUID, vehicle_id: uuid.UUID) -> str | None:
        return "gate_records"

    try:
        refused = await client.delete(f"/api/v1/vehicles/{vehicle}", headers=admin)
        assert refused.status_code == 409 and refused.json()["code"] == "vehicle_in_use"
    finally:
        del estate._checks["vehicle"]["test_gate"]
    assert (await client.delete(f"/api/v1/vehicles/{vehicle}", headers=admin)).status_code == 204


async def test_company_b_cannot_touch_company_a_parking(client) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    admin_a, admin_b = bearer(staff_token(a)), bearer(staff_token(b))
    area_id = await _area_with_spaces(client, admin_a, a.communities[0], "B1-001")
    [space] = await _spaces(client, admin_a, area_id)
    for method, url, body in (
        ("PATCH", f"{API}/parking-spaces/{space['id']}", {"space_no": "X1"}),
        ("DELETE", f"{API}/parking-spaces/{space['id']}", None),
        ("POST", f"{API}/parking-spaces/{space['id']}/archive", None),
        ("PATCH", f"{API}/parking-areas/{area_id}", {"name": "x"}),
        ("DELETE", f"{API}/parking-areas/{area_id}", None),
        ("POST", f"{API}/parking-areas/{area_id}/archive", None),
    ):
        answer = await client.request(method, url, headers=admin_b, json=body)
        assert answer.status_code == 404, (method, url, answer.text)
    # Staff without estate.write may read but not change.
    reader = bearer(staff_token(a, roles=(Role.TECHNICIAN,)))
    denied = await client.delete(f"{API}/parking-spaces/{space['id']}", headers=reader)
    assert denied.status_code == 403
    assert len(await _spaces(client, admin_a, area_id)) == 1

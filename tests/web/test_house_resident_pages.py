"""House management in the console (status, move in / out, archive, delete); a resident page."""

from __future__ import annotations

import httpx

from linli.auth.permissions import Role
from tests.estate.factories import make_houses, make_resident, random_phone
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, staff_sign_in, text_of


async def test_move_in_move_out_history_and_refused_delete(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    path = f"/console/estate/houses/{houses[0]}"
    page = await web.get(path)
    token = csrf_of(page)

    status = await web.post(path + "/status", data={"csrf_token": token, "status": "occupied"})
    assert status.status_code == 303
    assert "已入住" in (await web.get(path)).text.split('data-testid="house-status"', 1)[1][:40]

    phone = random_phone()
    bad_lease = await web.post(
        path + "/residents",
        data={
            "csrf_token": token,
            "name": "孙租户",
            "phone": phone,
            "relation": "tenant",
            "lease_start": "2026-05-01",
            "lease_end": "2026-01-01",
        },
    )
    assert bad_lease.status_code == 422
    assert 'id="lease_end-error"' in bad_lease.text and 'value="孙租户"' in bad_lease.text
    moved_in = await web.post(
        path + "/residents",
        data={
            "csrf_token": token,
            "name": "孙租户",
            "phone": phone,
            "relation": "tenant",
            "lease_start": "2026-01-01",
            "lease_end": "2026-12-31",
        },
    )
    assert moved_in.status_code == 303, moved_in.text
    house = await web.get(path)
    members = house.text.split('data-testid="members"', 1)[1].split("</table>", 1)[0]
    assert "孙租户" in members and "租户" in text_of(house)

    refused = await web.post(path + "/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "归档" in text_of(refused)  # the reason says: archive instead

    link_action = members.split('action="/console/resident-links/', 1)[1].split('"', 1)[0]
    out = await web.post(
        f"/console/resident-links/{link_action}", data={"csrf_token": token, "back": "house"}
    )
    assert out.status_code == 303 and out.headers["location"] == path
    after = await web.get(path)
    assert 'data-testid="members"' not in after.text
    assert "孙租户" in after.text.split('data-testid="member-history"', 1)[1]

    empty = f"/console/estate/houses/{houses[1]}"
    archived = await web.post(empty + "/archive", data={"csrf_token": token})
    assert archived.status_code == 303
    assert (await web.get(empty)).status_code == 404


async def test_resident_page_shows_houses_and_registers_vehicles(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    phone = random_phone()
    resident = await make_resident(company, house_id=houses[1], name="钱业主", phone=phone)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    listing = await web.get("/console/residents", params={"q": phone})
    assert f'href="/console/residents/{resident}"' in listing.text
    page = await web.get(f"/console/residents/{resident}")
    assert page.status_code == 200
    homes = page.text.split('data-testid="resident-houses"', 1)[1]
    assert "1-1-102" in homes and "业主" in homes
    token = csrf_of(page)

    bad = await web.post(
        f"/console/residents/{resident}/vehicles",
        data={"csrf_token": token, "house_id": str(houses[1]), "plate": "京A1234"},
    )
    assert bad.status_code == 422 and 'id="plate-error"' in bad.text
    elsewhere = await web.post(
        f"/console/residents/{resident}/vehicles",
        data={"csrf_token": token, "house_id": "not-a-house", "plate": "京A12345"},
    )
    assert elsewhere.status_code == 422 and 'id="house_id-error"' in elsewhere.text
    made = await web.post(
        f"/console/residents/{resident}/vehicles",
        data={"csrf_token": token, "house_id": str(houses[1]), "plate": "京a·12345"},
    )
    assert made.status_code == 303
    again = await web.get(f"/console/residents/{resident}")
    assert "京A12345" in again.text.split('data-testid="resident-vehicles"', 1)[1]
    house_page = await web.get(f"/console/estate/houses/{houses[1]}")
    vehicles = house_page.text.split('data-testid="vehicles"', 1)[1]
    assert "京A12345" in vehicles and "钱业主" in vehicles


async def test_resident_page_is_scoped(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    phone = random_phone()
    resident = await make_resident(company, house_id=houses[0], name="李四", phone=phone)
    await make_staff(company, roles=[Role.FINANCE], username="fin", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="fin", password=PASSWORD)
    page = await web.get(f"/console/residents/{resident}")
    assert page.status_code == 200
    assert phone not in page.text and f"{phone[:3]}****{phone[-4:]}" in page.text
    assert "/vehicles" not in page.text and "move-out" not in page.text
    refused = await web.post(
        f"/console/residents/{resident}/vehicles",
        data={"csrf_token": csrf_of(page), "house_id": str(houses[0]), "plate": "京A12345"},
    )
    assert refused.status_code == 403

    stranger = await make_company(communities=1)
    await staff_sign_in(other_web, company=stranger.slug, login="admin", password=PASSWORD)
    assert (await other_web.get(f"/console/residents/{resident}")).status_code == 404
    assert (await other_web.get("/console/residents/nope")).status_code == 404


async def test_edit_a_resident_and_move_them_into_another_house(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    resident = await make_resident(company, house_id=houses[0], name="周某", phone=random_phone())
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    path = f"/console/residents/{resident}"
    page = await web.get(path)
    token = csrf_of(page)
    profile = {
        "csrf_token": token,
        "name": "周八",
        "gender": "male",
        "birth_date": "1980-02-30",
        "tags": "党员，独居老人",
        "id_card": "11010519491231002X",
    }
    bad = await web.post(path, data=profile)
    assert bad.status_code == 422 and 'id="birth_date-error"' in bad.text
    wrong_id = await web.post(path, data=profile | {"birth_date": "", "id_card": "123"})
    assert wrong_id.status_code == 422 and 'id="id_card-error"' in wrong_id.text
    saved = await web.post(path, data=profile | {"birth_date": "1949-12-31"})
    assert saved.status_code == 303, saved.text
    shown = text_of(await web.get(path))
    assert "周八" in shown and "党员, 独居老人" in shown and "11010519491231002X" in shown

    unknown = await web.post(
        path + "/move-in", data={"csrf_token": token, "house": "9-9-909", "relation": "owner"}
    )
    assert unknown.status_code == 422 and 'id="house-error"' in unknown.text
    # One unit only: "1-102" names one house without its unit.
    moved = await web.post(
        path + "/move-in", data={"csrf_token": token, "house": "1-102", "relation": "co_owner"}
    )
    assert moved.status_code == 303
    again = await web.post(
        path + "/move-in", data={"csrf_token": token, "house": "1-1-101", "relation": "owner"}
    )
    assert again.status_code == 409  # already lives there
    homes = (await web.get(path)).text.split('data-testid="resident-houses"', 1)[1]
    assert "1-1-101" in homes and "1-1-102" in homes


async def test_residents_found_by_house_reference(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=2, floors=1, per_floor=1)
    await make_resident(company, house_id=houses[1], name="吴二")
    await make_resident(company, house_id=houses[0], name="郑一")
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    found = await web.get("/console/residents", params={"q": "1栋2单元101"})
    table = found.text.split('data-testid="residents"', 1)[1]
    assert "吴二" in table and "郑一" not in table

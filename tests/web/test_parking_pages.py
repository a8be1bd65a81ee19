"""Console pages for parking and facilities, and vehicles on the house page."""

from __future__ import annotations

import httpx

from linli.auth.permissions import Role
from tests.estate.factories import make_houses, make_resident
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, staff_sign_in, text_of


async def test_areas_ranges_binding_and_facilities(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=2, units=2, floors=1, per_floor=1)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    page = await web.get("/console/parking")
    assert page.status_code == 200, page.text
    assert 'href="/console/parking"' in page.text and 'aria-current="page"' in page.text
    token = csrf_of(page)

    no_csrf = await web.post("/console/parking/areas", data={"name": "地下车库B1"})
    assert no_csrf.status_code == 403
    blank = await web.post("/console/parking/areas", data={"csrf_token": token, "name": " "})
    assert blank.status_code == 422
    made = await web.post(
        "/console/parking/areas",
        data={"csrf_token": token, "name": "地下车库B1", "underground": "1"},
    )
    assert made.status_code == 303
    area_page = made.headers["location"]
    area_id = area_page.split("area=", 1)[1]
    twice = await web.post(
        "/console/parking/areas", data={"csrf_token": token, "name": "地下车库B1"}
    )
    assert twice.status_code == 409

    bad_range = await web.post(
        "/console/parking/spaces",
        data={"csrf_token": token, "area_id": area_id, "space_no": "B1-120..B1-001"},
    )
    assert bad_range.status_code == 422
    assert 'value="B1-120..B1-001"' in bad_range.text  # what was typed comes back
    added = await web.post(
        "/console/parking/spaces",
        data={
            "csrf_token": token,
            "area_id": area_id,
            "space_no": "B1-001..B1-120",
            "usage": "owned",
        },
    )
    assert added.status_code == 303
    await web.post(
        "/console/parking/spaces",
        data={
            "csrf_token": token,
            "area_id": area_id,
            "space_no": "T-1, T-2",
            "usage": "temporary",
        },
    )

    listing = await web.get(area_page)
    assert listing.status_code == 200
    spaces = listing.text.split('data-testid="parking-spaces"', 1)[1]
    assert spaces.count("<tr id=") == 122
    row = listing.text.split('data-testid="parking-areas"', 1)[1].split("</tr>", 2)[1]
    cells = [c.split("<", 1)[0].strip() for c in row.split("<td>")[1:]]
    assert cells[:3] == ["120", "0", "2"]  # owned, rented, temporary
    assert cells[3] == "0"  # none bound yet

    space_id = spaces.split('<tr id="space-', 1)[1].split('"', 1)[0]
    wrong = await web.post(
        f"/console/parking/spaces/{space_id}",
        data={"csrf_token": token, "house": "1-101", "usage": "owned"},
    )
    assert wrong.status_code == 422
    assert "单元" in text_of(wrong)  # several houses match: write the unit too
    bound = await web.post(
        f"/console/parking/spaces/{space_id}",
        data={"csrf_token": token, "house": "2栋1单元101", "usage": "owned"},
    )
    assert bound.status_code == 303
    after = await web.get(area_page)
    assert f'href="/console/estate/houses/{houses[2]}"' in after.text
    assert ">2-1-101<" in after.text

    house = await web.get(f"/console/estate/houses/{houses[2]}")
    assert "B1-001" in house.text.split('data-testid="house-spaces"', 1)[1]

    facility = await web.post(
        "/console/parking/facilities",
        data={"csrf_token": token, "name": "1号电梯", "kind": "lift", "location": "1栋大堂"},
    )
    assert facility.status_code == 303
    with_facility = await web.get("/console/parking")
    table = text_of(with_facility).split("1号电梯", 1)[1]
    assert "电梯" in table and "1栋大堂" in table


async def test_readers_see_counts_but_no_forms(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    await make_staff(company, roles=[Role.TECHNICIAN], username="tech", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="tech", password=PASSWORD)
    page = await web.get("/console/parking")
    assert page.status_code == 200
    assert 'action="/console/parking/areas"' not in page.text
    refused = await web.post(
        "/console/parking/areas", data={"csrf_token": csrf_of(page), "name": "P"}
    )
    assert refused.status_code == 403


async def test_another_company_cannot_touch_a_space(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    await staff_sign_in(web, company=a.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/parking")
    made = await web.post(
        "/console/parking/areas", data={"csrf_token": csrf_of(page), "name": "P1"}
    )
    area_id = made.headers["location"].split("area=", 1)[1]
    await web.post(
        "/console/parking/spaces",
        data={"csrf_token": csrf_of(page), "area_id": area_id, "space_no": "1"},
    )
    listing = await web.get(made.headers["location"])
    space_id = listing.text.split('<tr id="space-', 1)[1].split('"', 1)[0]

    await staff_sign_in(other_web, company=b.slug, login="admin", password=PASSWORD)
    theirs = await other_web.get("/console/parking")
    token = csrf_of(theirs)
    assert "P1" not in text_of(theirs)
    foreign_space = await other_web.post(
        f"/console/parking/spaces/{space_id}", data={"csrf_token": token, "house": ""}
    )
    assert foreign_space.status_code == 404
    foreign_area = await other_web.post(
        "/console/parking/spaces",
        data={"csrf_token": token, "area_id": area_id, "space_no": "2"},
    )
    assert foreign_area.status_code == 404


async def test_house_page_lists_and_registers_vehicles(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    resident = await make_resident(company, house_id=houses[0], name="王车主")
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    path = f"/console/estate/houses/{houses[0]}"
    page = await web.get(path)
    assert page.status_code == 200
    token = csrf_of(page)

    bad = await web.post(
        path + "/vehicles", data={"csrf_token": token, "plate": "粤B1234", "resident_id": ""}
    )
    assert bad.status_code == 422
    assert 'id="plate-error"' in bad.text
    for plate in ("粤B·12345", "粤bd12345"):  # a petrol and a new-energy plate, as people type them
        made = await web.post(
            path + "/vehicles",
            data={"csrf_token": token, "plate": plate, "resident_id": str(resident)},
        )
        assert made.status_code == 303, made.text
    again = await web.post(path + "/vehicles", data={"csrf_token": token, "plate": "粤B12345"})
    assert again.status_code == 409

    listed = await web.get(path)
    vehicles = text_of(listed).split("车辆", 1)[1]
    assert "粤B12345" in vehicles and "粤BD12345" in vehicles and "王车主" in vehicles
    assert listed.text.count("pill pill-brand") >= 1  # the new-energy one is marked


async def test_vehicle_form_needs_the_residents_write_permission(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    await make_staff(company, roles=[Role.FINANCE], username="fin", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="fin", password=PASSWORD)
    page = await web.get(f"/console/estate/houses/{houses[0]}")
    assert page.status_code == 200
    assert "/vehicles" not in page.text
    refused = await web.post(
        f"/console/estate/houses/{houses[0]}/vehicles",
        data={"csrf_token": csrf_of(page), "plate": "粤B12345"},
    )
    assert refused.status_code == 403

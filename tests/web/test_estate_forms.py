"""Console forms of the registry: community profile with fee settings, buildings, units, houses."""

from __future__ import annotations

import httpx

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, staff_sign_in, text_of

PROFILE = {
    "name": "阳光花园",
    "address": "深圳市南山区科技园路 1 号",
    "timezone": "Asia/Shanghai",
    "area_m2": "120000.50",
    "contact_phone": "0755-8888 6666",
    "billing_day": "5",
    "due_days": "20",
    "rate_residence": "2.80",
    "rate_shop": "6.5",
    "rate_office": "",
    "rate_storage": "",
}


async def test_profile_with_fee_settings(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/estate/profile")
    assert page.status_code == 200
    token = csrf_of(page)

    bad = await web.post(
        "/console/estate/profile",
        data=PROFILE | {"csrf_token": token, "timezone": "Mars/Base", "rate_shop": "-1"},
    )
    assert bad.status_code == 422
    assert 'id="timezone-error"' in bad.text and 'id="rates-error"' in bad.text
    assert 'value="深圳市南山区科技园路 1 号"' in bad.text
    saved = await web.post("/console/estate/profile", data=PROFILE | {"csrf_token": token})
    assert saved.status_code == 303, saved.text

    async with unit_of_work(company.id) as session:
        community = await estate.get_community(
            session, Actor.system(company.id), community_id=company.communities[0]
        )
        assert community.name == "阳光花园" and str(community.area_m2) == "120000.50"
        assert community.fee_settings == {
            "rate_per_m2": {"residence": "2.80", "shop": "6.5"},
            "billing_day": 5,
            "due_days": 20,
        }
    shown = await web.get("/console/estate/profile?saved=1")
    assert 'value="2.80"' in shown.text and "已保存" in text_of(shown)


async def test_building_unit_and_house_from_the_console(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/estate")
    token = csrf_of(page)

    bad = await web.post(
        "/console/estate/buildings", data={"csrf_token": token, "building_no": "3 栋"}
    )
    assert bad.status_code == 422 and 'id="building_no-error"' in bad.text
    made = await web.post(
        "/console/estate/buildings",
        data={"csrf_token": token, "building_no": "3", "floors_above": "18"},
    )
    assert made.status_code == 303
    building_page = made.headers["location"]
    building_id = building_page.split("building=", 1)[1]
    twice = await web.post(
        "/console/estate/buildings", data={"csrf_token": token, "building_no": "3"}
    )
    assert twice.status_code == 409

    unit = await web.post(
        f"/console/estate/buildings/{building_id}/units",
        data={"csrf_token": token, "unit_no": "2"},
    )
    assert unit.status_code == 303
    opened = await web.get(building_page)
    unit_id = opened.text.split('<select id="house-unit" name="unit_id">', 1)[1]
    unit_id = unit_id.split('value="', 1)[1].split('"', 1)[0]

    house_form = {
        "csrf_token": token,
        "unit_id": unit_id,
        "house_no": "1201",
        "floor": "12",
        "building_area": "98.50",
        "inner_area": "120",
        "house_type": "residence",
        "status": "delivered",
    }
    too_big = await web.post(f"/console/estate/buildings/{building_id}/houses", data=house_form)
    assert too_big.status_code == 422 and 'id="inner_area-error"' in too_big.text
    house = await web.post(
        f"/console/estate/buildings/{building_id}/houses",
        data=house_form | {"inner_area": "80.20"},
    )
    assert house.status_code == 303
    shown = await web.get(house.headers["location"])
    assert "3-2-1201" in text_of(shown)
    found = await web.get("/console/estate", params={"house": "3栋2单元1201"})
    assert house.headers["location"] in found.text


async def test_readers_get_no_forms(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    await make_staff(company, roles=[Role.TECHNICIAN], username="tech", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="tech", password=PASSWORD)
    page = await web.get("/console/estate/profile")
    assert page.status_code == 200 and "disabled" in page.text
    estate_page = await web.get("/console/estate")
    assert 'action="/console/estate/buildings"' not in estate_page.text
    refused = await web.post(
        "/console/estate/profile", data=PROFILE | {"csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 403

"""Estate registry pages: tree, house search, residents, claims review, and the portal's homes."""

from __future__ import annotations

import httpx

from linli.auth.permissions import Role
from tests.estate.factories import make_houses, make_resident, random_phone
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, resident_sign_in, staff_sign_in, text_of


async def test_admin_sees_tree_counts_search_and_house(web: httpx.AsyncClient) -> None:
    company = await make_company()
    houses = await make_houses(company, buildings=2, units=2, floors=2, per_floor=2)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="王小明", phone=phone)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    page = await web.get("/console/estate")
    assert page.status_code == 200, page.text
    text = text_of(page)
    assert "小区1号" in text
    assert 'href="/console/estate"' in page.text  # the nav item is the real page now
    assert "/console/soon/estate" not in page.text
    assert text.count("16") >= 1  # 2 buildings x 2 units x 2 floors x 2 houses
    assert page.text.count('<meter min="0" max="8" value="0">') == 2  # per building

    found = await web.get("/console/estate", params={"house": "1-1-101"})
    assert f'href="/console/estate/houses/{houses[0]}"' in found.text
    bad = await web.get("/console/estate", params={"house": "??"})
    assert bad.status_code == 200
    assert "3-2-1201" in text_of(bad)  # the hint says how to write it

    house = await web.get(f"/console/estate/houses/{houses[0]}")
    assert house.status_code == 200
    assert "王小明" in text_of(house)
    assert phone in text_of(house)  # the admin may see contact details

    by_phone = await web.get("/console/residents", params={"q": phone})
    assert by_phone.status_code == 200
    assert "王小明" in text_of(by_phone) and phone in text_of(by_phone)
    by_name = await web.get("/console/residents", params={"q": "王小"})
    assert "王小明" in text_of(by_name)
    nobody = await web.get("/console/residents", params={"q": "李"})
    assert "王小明" not in text_of(nobody)


async def test_phones_are_masked_without_the_contact_permission(web: httpx.AsyncClient) -> None:
    company = await make_company()
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="赵六", phone=phone)
    await make_staff(company, roles=[Role.FINANCE], username="fin", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="fin", password=PASSWORD)

    page = await web.get("/console/residents", params={"q": phone})
    assert page.status_code == 200
    assert "赵六" in text_of(page)
    table = page.text.split('data-testid="residents"', 1)[1]
    assert phone not in table  # only the search box echoes what was typed
    assert f"{phone[:3]}****{phone[-4:]}" in table


async def test_staff_without_the_permission_are_refused(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(company, roles=[Role.TECHNICIAN], username="tech", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="tech", password=PASSWORD)
    assert (await web.get("/console/estate")).status_code == 200  # technicians read the estate
    for path in ("/console/residents", "/console/claims"):
        refused = await web.get(path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
    dashboard = await web.get("/console")
    assert 'href="/console/residents"' not in dashboard.text
    assert 'href="/console/estate"' in dashboard.text


async def test_another_company_cannot_open_a_house(web: httpx.AsyncClient) -> None:
    a = await make_company()
    b = await make_company()
    houses = await make_houses(a, buildings=1, units=1, floors=1, per_floor=1)
    await staff_sign_in(web, company=b.slug, login="admin", password=PASSWORD)
    assert (await web.get(f"/console/estate/houses/{houses[0]}")).status_code == 404
    assert (await web.get("/console/estate/houses/not-a-uuid")).status_code == 404


async def test_claim_submitted_in_the_portal_is_approved_in_the_console(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company()
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    phone = random_phone()
    assert (await resident_sign_in(other_web, phone)).status_code == 303

    homes = await other_web.get("/portal/homes")
    assert homes.status_code == 200
    form = {
        "company": company.slug,
        "community_code": "C01",
        "house": "1-1-102",
        "name": "李四",
        "relation": "owner",
    }
    no_csrf = await other_web.post("/portal/homes/claim", data=form)
    assert no_csrf.status_code == 403
    unknown = await other_web.post(
        "/portal/homes/claim", data=form | {"csrf_token": csrf_of(homes), "house": "9-9-909"}
    )
    assert unknown.status_code == 404
    sent = await other_web.post("/portal/homes/claim", data=form | {"csrf_token": csrf_of(homes)})
    assert sent.status_code == 303, sent.text

    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    review = await web.get("/console/claims")
    assert review.status_code == 200
    assert "李四" in text_of(review) and "1-1-102" in text_of(review)
    claim_action = review.text.split('action="/console/claims/', 1)[1].split('"', 1)[0]
    assert claim_action.endswith("/approve")
    forged = await web.post(f"/console/claims/{claim_action}", data={})
    assert forged.status_code == 403
    approved = await web.post(
        f"/console/claims/{claim_action}", data={"csrf_token": csrf_of(review)}
    )
    assert approved.status_code == 303, approved.text
    assert "李四" not in text_of(await web.get("/console/claims"))

    mine = await other_web.get("/portal/homes")
    assert mine.status_code == 200
    assert "1-1-102" in text_of(mine)
    assert 'action="/portal/homes/' + str(houses[1]) + '/members"' in mine.text

    # The owner adds a family member, who is listed with the house.
    added = await other_web.post(
        f"/portal/homes/{houses[1]}/members",
        data={
            "csrf_token": csrf_of(mine),
            "company_id": str(company.id),
            "name": "李小四",
            "phone": random_phone(),
            "relation": "family",
        },
    )
    assert added.status_code == 303, added.text
    assert "李小四" in text_of(await other_web.get("/portal/homes"))


async def test_rejecting_needs_a_reason(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company()
    await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    await resident_sign_in(other_web, random_phone())
    homes = await other_web.get("/portal/homes")
    form = {"company": company.slug, "community_code": "C01", "house": "1-1-101", "name": "钱七"}
    await other_web.post("/portal/homes/claim", data=form | {"csrf_token": csrf_of(homes)})

    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    review = await web.get("/console/claims")
    claim_id = review.text.split('action="/console/claims/', 1)[1].split("/", 1)[0]
    token = csrf_of(review)
    empty = await web.post(f"/console/claims/{claim_id}/reject", data={"csrf_token": token})
    assert empty.status_code == 422
    done = await web.post(
        f"/console/claims/{claim_id}/reject", data={"csrf_token": token, "reason": "不是业主"}
    )
    assert done.status_code == 303
    assert "不是业主" in text_of(await other_web.get("/portal/homes"))

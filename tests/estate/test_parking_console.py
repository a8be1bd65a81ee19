"""Console pages: edit, archive and delete a parking space, area, facility and vehicle."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from linli.auth.actor import Actor
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.models import ParkingUsage
from linli.residents import service as residents
from tests.estate.factories import make_houses, make_resident
from tests.factories import PASSWORD, make_company
from tests.web.pageutil import csrf_of, new_ip, staff_sign_in, text_of


@pytest.fixture
async def web(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _space(company: Any, numbers: str = "B1-001..B1-002") -> list[Any]:
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        area = await estate.create_parking_area(
            session, actor, community_id=company.communities[0], name="地下车库B1"
        )
        await estate.create_parking_spaces(
            session,
            actor,
            area_id=area.id,
            space_nos=estate.expand_space_numbers(numbers),
            usage=ParkingUsage.RENTED,
        )
        spaces, _ = await estate.list_parking_spaces(
            session, actor, community_id=None, area_id=area.id, page=PageParams(limit=10)
        )
    return sorted(spaces, key=lambda s: s.space_no)


async def test_edit_archive_and_delete_a_space(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    tenant = await make_resident(company, house_id=house, name="租户乙", phone="13700003333")
    first, second = await _space(company)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    listing = await web.get(f"/console/parking?area={first.area_id}")
    assert f'href="/console/parking/spaces/{first.id}"' in listing.text
    page = await web.get(f"/console/parking/spaces/{first.id}")
    assert page.status_code == 200, page.text
    token = csrf_of(page)
    lease_end = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    form = {
        "csrf_token": token,
        "space_no": "B1-101",
        "usage": "rented",
        "house": "1-1-101",
        "lease_start": "2026-01-01",
        "lease_end": lease_end,
        "area_m2": "13.2",
    }
    saved = await web.post(f"/console/parking/spaces/{first.id}/edit", data=form)
    assert saved.status_code == 303, saved.text
    # With the house bound, its people are offered as the holder.
    page = await web.get(f"/console/parking/spaces/{first.id}")
    assert "租户乙" in page.text and "B1-101" in page.text
    saved = await web.post(
        f"/console/parking/spaces/{first.id}/edit", data=form | {"resident_id": str(tenant)}
    )
    assert saved.status_code == 303

    bad = await web.post(f"/console/parking/spaces/{first.id}/edit", data=form | {"usage": "owned"})
    assert bad.status_code == 422, bad.text
    taken = await web.post(
        f"/console/parking/spaces/{first.id}/edit", data=form | {"space_no": second.space_no}
    )
    assert taken.status_code == 409

    refused = await web.post(
        f"/console/parking/spaces/{first.id}/delete", data={"csrf_token": token}
    )
    assert refused.status_code == 409
    assert "active_lease" in text_of(refused)
    archived = await web.post(
        f"/console/parking/spaces/{first.id}/archive", data={"csrf_token": token}
    )
    assert archived.status_code == 303
    listing = await web.get(f"/console/parking?area={first.area_id}")
    assert "B1-101" not in text_of(listing) and second.space_no in text_of(listing)
    gone = await web.post(f"/console/parking/spaces/{second.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    async with unit_of_work(company.id) as session:
        left, _ = await estate.list_parking_spaces(
            session,
            Actor.system(company.id),
            community_id=None,
            area_id=first.area_id,
            page=PageParams(limit=10),
            include_archived=True,
        )
    assert [(s.space_no, s.resident_id, s.archived_at is not None) for s in left] == [
        ("B1-101", tenant, True)
    ]


async def test_area_and_facility_lifecycle_and_vehicle_buttons(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    [house] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    [space, _] = await _space(company)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        await estate.bind_parking_space(session, actor, space_id=space.id, house_id=house)
        facility = await estate.create_facility(
            session, actor, community_id=company.communities[0], name="1号电梯", kind="lift"
        )
        vehicle = await residents.register_vehicle(
            session, actor, community_id=company.communities[0], plate="粤B54321", house_id=house
        )
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get(f"/console/parking?area={space.area_id}")
    token = csrf_of(page)

    renamed = await web.post(
        f"/console/parking/areas/{space.area_id}/edit",
        data={"csrf_token": token, "name": "B1车库", "underground": "1"},
    )
    assert renamed.status_code == 303
    assert "B1车库" in text_of(await web.get(f"/console/parking?area={space.area_id}"))
    stats = text_of(await web.get("/console/estate"))
    assert "2 (1)" in stats  # two spaces in the community, one held by a house
    refused = await web.post(
        f"/console/parking/areas/{space.area_id}/delete", data={"csrf_token": token}
    )
    assert refused.status_code == 409 and "held_spaces" in text_of(refused)
    archived = await web.post(
        f"/console/parking/areas/{space.area_id}/archive", data={"csrf_token": token}
    )
    assert archived.status_code == 303
    assert "B1车库" not in text_of(await web.get("/console/parking"))

    edited = await web.post(
        f"/console/parking/facilities/{facility.id}/edit",
        data={"csrf_token": token, "name": "1号客梯", "kind": "lift", "location": "大堂"},
    )
    assert edited.status_code == 303
    assert "1号客梯" in text_of(await web.get("/console/parking"))
    gone = await web.post(
        f"/console/parking/facilities/{facility.id}/delete", data={"csrf_token": token}
    )
    assert gone.status_code == 303
    assert "1号客梯" not in text_of(await web.get("/console/parking"))

    house_page = await web.get(f"/console/estate/houses/{house}")
    assert f'action="/console/vehicles/{vehicle.id}/archive"' in house_page.text
    mistyped = await web.post(
        f"/console/vehicles/{vehicle.id}/edit",
        data={"csrf_token": token, "plate": "粤B5432", "brand": "", "color": ""},
    )
    assert mistyped.status_code == 422 and 'aria-invalid="true"' in mistyped.text
    fixed = await web.post(
        f"/console/vehicles/{vehicle.id}/edit",
        data={"csrf_token": token, "plate": "粤 b·d54321", "brand": "比亚迪", "color": "白"},
    )
    assert fixed.status_code == 303
    house_text = text_of(await web.get(f"/console/estate/houses/{house}"))
    assert "粤BD54321" in house_text and "比亚迪" in house_text
    vehicle_plate = "粤BD54321"
    archived_vehicle = await web.post(
        f"/console/vehicles/{vehicle.id}/archive", data={"csrf_token": token}
    )
    assert archived_vehicle.status_code == 303
    assert vehicle_plate not in text_of(await web.get(f"/console/estate/houses/{house}"))


async def test_company_b_cannot_edit_company_a_spaces(web: httpx.AsyncClient) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    [space, _] = await _space(a)
    await staff_sign_in(web, company=b.slug, login="admin", password=PASSWORD)
    token = csrf_of(await web.get("/console/parking"))
    assert (await web.get(f"/console/parking/spaces/{space.id}")).status_code == 404
    for action in ("edit", "archive", "delete"):
        answer = await web.post(
            f"/console/parking/spaces/{space.id}/{action}",
            data={"csrf_token": token, "space_no": "X1"},
        )
        assert answer.status_code == 404, (action, answer.text)

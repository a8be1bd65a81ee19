"""The work-order pages as a browser uses them: portal report, console dispatch, technician."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from linli.auth.permissions import Role
from tests.factories import PASSWORD, make_staff
from tests.web.pageutil import csrf_of, new_ip, resident_sign_in, staff_sign_in, text_of
from tests.workorders.helpers import make_desk, png_bytes


def _browser(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [_browser(app) for _ in range(3)]
    yield clients
    for http in clients:
        await http.aclose()


async def test_repair_from_portal_to_technician_to_rating(browsers) -> None:
    resident, desk_staff, tech = browsers
    desk = await make_desk(routing=False)
    signed = await resident_sign_in(resident, desk.resident_phone)
    assert signed.status_code == 303
    form = await resident.get("/portal/repairs/new")
    assert form.status_code == 200, form.text
    assert "水电维修" in form.text
    bad = await resident.post(
        "/portal/repairs/new",
        data={
            "csrf_token": csrf_of(form),
            "house_id": str(desk.houses[0]),
            "category_id": str(desk.category_id),
            "description": "卫生间漏水",
        },
        files={"photos": ("x.png", b"not an image", "image/png")},
    )
    assert bad.status_code == 422 and "JPEG" in text_of(bad)
    sent = await resident.post(
        "/portal/repairs/new",
        data={
            "csrf_token": csrf_of(form),
            "house_id": str(desk.houses[0]),
            "category_id": str(desk.category_id),
            "description": "卫生间漏水",
        },
        files={"photos": ("leak.png", png_bytes(), "image/png")},
    )
    assert sent.status_code == 303, sent.text
    mine = await resident.get("/portal/repairs")
    assert "卫生间漏水" in mine.text and 'data-status="new"' in mine.text

    await make_staff(
        desk.company,
        roles=[Role.FRONT_DESK],
        community_ids=[desk.company.communities[0]],
        username="desk1",
    )
    assert (
        await staff_sign_in(desk_staff, company=desk.company.slug, login="desk1", password=PASSWORD)
    ).status_code == 303
    listed = await desk_staff.get("/console/workorders")
    assert listed.status_code == 200 and "卫生间漏水" not in listed.text  # list shows numbers
    order_id = listed.text.split('href="/console/workorders/')[1].split('"')[0]
    while order_id in ("new", "reports", "settings"):
        order_id = listed.text.split(f'href="/console/workorders/{order_id}')[1]
        order_id = order_id.split('href="/console/workorders/')[1].split('"')[0]
    page = await desk_staff.get(f"/console/workorders/{order_id}")
    assert page.status_code == 200 and "卫生间漏水" in page.text
    dispatched = await desk_staff.post(
        f"/console/workorders/{order_id}/assign",
        data={"csrf_token": csrf_of(page), "technician_id": str(desk.technician_id)},
    )
    assert dispatched.status_code == 303

    await make_staff(desk.company, roles=[Role.TECHNICIAN], username="tech-x")
    # The dispatched technician signs in with their own login.
    from linli.auth import service as auth_service
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work

    async with unit_of_work(desk.company.id) as session:
        member = await auth_service.get_staff(
            session, Actor.system(desk.company.id), staff_user_id=desk.technician_id
        )
        login = member.user.username
    assert (
        await staff_sign_in(tech, company=desk.company.slug, login=login, password=PASSWORD)
    ).status_code == 303
    queue = await tech.get("/console/tech")
    assert queue.status_code == 200 and f"/console/tech/{order_id}" in queue.text
    accepted = await tech.post(
        f"/console/tech/{order_id}/accept", data={"csrf_token": csrf_of(queue)}
    )
    assert accepted.status_code == 303
    detail = await tech.get(f"/console/tech/{order_id}")
    token = csrf_of(detail)
    bad_price = await tech.post(
        f"/console/tech/{order_id}/charge",
        data={"csrf_token": token, "kind": "part", "description": "阀门", "unit_price": "1.234"},
    )
    assert bad_price.status_code == 422
    charged = await tech.post(
        f"/console/tech/{order_id}/charge",
        data={"csrf_token": token, "kind": "part", "description": "阀门", "unit_price": "35.50"},
    )
    assert charged.status_code == 303
    photo = await tech.post(
        f"/console/tech/{order_id}/photo",
        data={"csrf_token": token},
        files={"photos": ("done.png", png_bytes(), "image/png")},
    )
    assert photo.status_code == 303
    finished = await tech.post(
        f"/console/tech/{order_id}/finish", data={"csrf_token": token, "note": "已更换阀门"}
    )
    assert finished.status_code == 303

    mine = await resident.get("/portal/repairs")
    assert 'data-status="finished"' in mine.text
    rated = await resident.post(
        f"/portal/repairs/{order_id}/rate",
        data={"csrf_token": csrf_of(mine), "rating": "4", "comment": "很快"},
    )
    assert rated.status_code == 303
    assert 'data-status="closed"' in (await resident.get("/portal/repairs")).text

    page = await desk_staff.get(f"/console/workorders/{order_id}")
    assert "¥35.50" in page.text and "很快" in page.text
    image = await desk_staff.get(page.text.split('<img src="')[1].split('"')[0])
    assert image.headers["content-type"] == "image/png"
    report = await desk_staff.get("/console/workorders/reports")
    assert report.status_code == 200 and "<svg" in report.text


async def test_settings_pages_configure_categories_hours_and_rules(browsers) -> None:
    admin = browsers[0]
    desk = await make_desk(routing=False)
    assert (
        await staff_sign_in(admin, company=desk.company.slug, login="admin", password=PASSWORD)
    ).status_code == 303
    page = await admin.get("/console/workorders/settings")
    assert page.status_code == 200, page.text
    token = csrf_of(page)
    added = await admin.post(
        "/console/workorders/settings/categories",
        data={
            "csrf_token": token,
            "name": "门禁故障",
            "kind": "repair",
            "urgent_response": "15",
            "urgent_completion": "120",
        },
    )
    assert added.status_code == 303
    hours = await admin.post(
        "/console/workorders/settings/calendar",
        data={
            "csrf_token": token,
            **{f"day{d}": "09:00-12:00, 13:00-18:00" for d in range(1, 6)},
            "holidays": "2026-10-01 holiday 国庆\n2026-10-10 workday 调休",
        },
    )
    assert hours.status_code == 303
    broken = await admin.post(
        "/console/workorders/settings/calendar",
        data={"csrf_token": token, "day1": "18:00-09:00", "holidays": ""},
    )
    assert broken.status_code == 422
    rule = await admin.post(
        "/console/workorders/settings/rules",
        data={"csrf_token": token, "technician_id": str(desk.technician_id)},
    )
    assert rule.status_code == 303
    page = await admin.get("/console/workorders/settings")
    assert "门禁故障" in page.text and "2026-10-10 workday 调休" in page.text
    assert "13:00-18:00" in page.text

"""Work orders end to end through the API: report, dispatch, work, finish, rate, escalate."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.core.models import OutboxEvent
from linli.db.engine import unit_of_work
from linli.workorders import service
from linli.workorders.models import OrderSource, Priority, WorkOrder
from tests.factories import bearer, make_company, make_staff, staff_token
from tests.workorders.helpers import (
    jpeg_bytes,
    make_category,
    make_desk,
    make_technician,
    png_bytes,
    technician_token,
)

WO = "/api/v1/workorders"


async def events_of(company_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    async with unit_of_work(company_id) as session:
        rows = await session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.event_type == event_type)
            .order_by(OutboxEvent.id)
        )
        return list(rows.all())


async def report_order(client, desk, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = {
        "house_id": str(desk.houses[0]),
        "category_id": str(desk.category_id),
        "description": "厨房水龙头漏水",
        **extra,
    }
    response = await client.post(f"{WO}/resident/orders", headers=desk.resident, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_resident_repair_dispatch_work_finish_rate(client) -> None:
    desk = await make_desk()
    categories = await client.get(
        f"{WO}/resident/categories", params={"house_id": str(desk.houses[0])}, headers=desk.resident
    )
    assert [c["id"] for c in categories.json()] == [str(desk.category_id)]
    order = await report_order(client, desk, preferred_from="2026-12-01T09:00:00+08:00")
    # The routing rule dispatched it at once, and told the technician.
    assert order["status"] == "assigned" and order["assignee_id"] == str(desk.technician_id)
    assigned = await events_of(desk.company.id, "workorder.assigned")
    assert assigned[-1]["technician_ids"] == [str(desk.technician_id)]
    oid = order["id"]
    photo = await client.post(
        f"{WO}/resident/orders/{oid}/photos",
        headers=desk.resident,
        files={"photo": ("leak.jpg", jpeg_bytes(), "image/jpeg")},
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["content_type"] == "image/jpeg"

    queue = await client.get(f"{WO}/queue", headers=desk.technician)
    assert [o["id"] for o in queue.json()] == [oid]
    accepted = await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "in_progress"
    assert accepted.json()["response_minutes"] is not None
    work = await client.post(
        f"{WO}/orders/{oid}/work", headers=desk.technician, json={"note": "更换阀芯"}
    )
    assert work.status_code == 200
    charge = await client.post(
        f"{WO}/orders/{oid}/charges",
        headers={**desk.technician, "Idempotency-Key": "charge-1"},
        json={"kind": "part", "description": "阀芯", "quantity": "2", "unit_price": "12.345"},
    )
    assert charge.status_code == 422  # more than two decimals of a yuan
    charge = await client.post(
        f"{WO}/orders/{oid}/charges",
        headers={**desk.technician, "Idempotency-Key": "charge-1"},
        json={"kind": "part", "description": "阀芯", "quantity": "2", "unit_price": "12.35"},
    )
    assert charge.status_code == 201, charge.text
    assert charge.json()["amount"] == "24.70"
    again = await client.post(
        f"{WO}/orders/{oid}/charges",
        headers={**desk.technician, "Idempotency-Key": "charge-1"},
        json={"kind": "part", "description": "阀芯", "quantity": "2", "unit_price": "12.35"},
    )
    assert again.json()["id"] == charge.json()["id"]  # replayed, not a second line
    billed = await events_of(desk.company.id, "workorder.charge_recorded")
    assert len(billed) == 1 and billed[0]["amount"] == "24.70"
    assert billed[0]["house_id"] == str(desk.houses[0])
    work_photo = await client.post(
        f"{WO}/orders/{oid}/work-photos",
        headers=desk.technician,
        files={"photo": ("done.png", png_bytes(), "image/png")},
    )
    assert work_photo.status_code == 201
    finished = await client.post(
        f"{WO}/orders/{oid}/finish", headers=desk.technician, json={"note": "已修好"}
    )
    assert finished.json()["status"] == "finished"
    assert finished.json()["completion_met"] is True
    told = await events_of(desk.company.id, "workorder.finished")
    assert told[-1]["resident_account_ids"] == [str(desk.resident_account)]

    rated = await client.post(
        f"{WO}/resident/orders/{oid}/rate", headers=desk.resident, json={"rating": 5}
    )
    assert rated.json()["status"] == "closed" and rated.json()["rating"] == 5
    mine = await client.get(f"{WO}/resident/orders", headers=desk.resident)
    assert [o["status"] for o in mine.json()] == ["closed"]

    timeline = await client.get(f"{WO}/orders/{oid}/timeline", headers=desk.front_desk)
    assert [e["kind"] for e in timeline.json()] == [
        "created",
        "assigned",
        "photo_added",
        "accepted",
        "work_recorded",
        "charge_added",
        "photo_added",
        "finished",
        "rated",
    ]
    photos = await client.get(f"{WO}/orders/{oid}/photos", headers=desk.front_desk)
    assert [p["stage"] for p in photos.json()] == ["report", "work"]
    image = await client.get(
        f"{WO}/orders/{oid}/photos/{photos.json()[1]['id']}", headers=desk.front_desk
    )
    assert image.headers["content-type"] == "image/png" and image.content == png_bytes()

    now = dt.datetime.now(dt.UTC)
    report = await client.get(
        f"{WO}/reports",
        headers=desk.front_desk,
        params={
            "since": (now - dt.timedelta(days=1)).isoformat(),
            "until": (now + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert report.status_code == 200, report.text
    total = report.json()["total"]
    assert total["orders"] == 1 and total["rated"] == 1 and total["avg_rating"] == "5.0"
    assert total["completion_rate"] == "100.0"
    assert report.json()["by_technician"][0]["key"] == str(desk.technician_id)


async def test_a_bad_rating_reopens_the_order_to_its_technician(client) -> None:
    desk = await make_desk()
    oid = (await report_order(client, desk))["id"]
    too_early = await client.post(
        f"{WO}/resident/orders/{oid}/rate", headers=desk.resident, json={"rating": 5}
    )
    assert too_early.status_code == 409
    await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
    await client.post(f"{WO}/orders/{oid}/finish", headers=desk.technician, json={})
    rated = await client.post(
        f"{WO}/resident/orders/{oid}/rate",
        headers=desk.resident,
        json={"rating": 2, "comment": "还在漏"},
    )
    body = rated.json()
    assert body["status"] == "assigned" and body["reopen_count"] == 1
    assert body["assignee_id"] == str(desk.technician_id)
    reopened = await events_of(desk.company.id, "workorder.reopened")
    assert set(reopened[-1]["recipient_staff_ids"]) == {
        str(desk.technician_id),
        str(desk.manager_id),
    }
    out_of_range = await client.post(
        f"{WO}/resident/orders/{oid}/rate", headers=desk.resident, json={"rating": 6}
    )
    assert out_of_range.status_code == 422


async def test_a_technician_cannot_work_another_technicians_order(client) -> None:
    desk = await make_desk()
    oid = (await report_order(client, desk))["id"]
    other_id = await make_technician(desk.company, rule=False)
    other = technician_token(desk.company, other_id, desk.company.communities[0])
    for action, body in (("accept", None), ("finish", {}), ("work", {"note": "x"})):
        refused = await client.post(f"{WO}/orders/{oid}/{action}", headers=other, json=body)
        assert refused.status_code == 404, refused.text  # not theirs: not even visible
    await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
    # A manager sees the order but is not its technician: refused by name.
    manager = bearer(
        staff_token(
            desk.company,
            desk.manager_id,
            roles=[Role.COMMUNITY_MANAGER, Role.TECHNICIAN],
            all_communities=False,
            community_ids=[desk.company.communities[0]],
        )
    )
    refused = await client.post(f"{WO}/orders/{oid}/finish", headers=manager, json={})
    assert refused.status_code == 403 and refused.json()["code"] == "not_assigned_to_you"
    queue = await client.get(f"{WO}/queue", headers=other)
    assert queue.json() == []
    # The technician's own order: reading the desk list needs the desk's permission.
    assert (await client.get(f"{WO}/orders", headers=desk.technician)).status_code == 403


async def test_photos_must_be_real_images_within_the_size_limit(client) -> None:
    desk = await make_desk()
    oid = (await report_order(client, desk))["id"]
    url = f"{WO}/resident/orders/{oid}/photos"
    text = await client.post(
        url, headers=desk.resident, files={"photo": ("x.jpg", b"not a picture", "image/jpeg")}
    )
    assert text.status_code == 422 and text.json()["code"] == "not_an_image"
    truncated = await client.post(
        url, headers=desk.resident, files={"photo": ("x.png", png_bytes()[:40], "image/png")}
    )
    assert truncated.status_code == 422
    gif = await client.post(
        url, headers=desk.resident, files={"photo": ("x.gif", b"GIF89a" + b"\0" * 20, "image/gif")}
    )
    assert gif.status_code == 422
    big = b"\x89PNG" + b"\0" * service.MAX_PHOTO_BYTES
    too_large = await client.post(
        url, headers=desk.resident, files={"photo": ("x.png", big, "image/png")}
    )
    assert too_large.status_code == 413
    try:
        service.check_image(big)
    except service.PayloadTooLarge as exc:
        assert exc.instance_code == "photo_too_large"
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a photo over the limit passed")


async def test_front_desk_takes_a_call_and_dispatches_by_hand(client) -> None:
    desk = await make_desk(routing=False)
    created = await client.post(
        f"{WO}/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[0]),
            "category_id": str(desk.category_id),
            "description": "2栋电梯异响",
            "location": "2栋电梯",
            "priority": "urgent",
            "reporter_name": "李先生",
            "contact_phone": "13800138000",
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "new" and order["source"] == "phone"
    assert "13800138000" not in created.text
    oid = order["id"]
    auto = await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
    assert auto.status_code == 409 and auto.json()["code"] == "no_technician"
    not_tech = await client.post(
        f"{WO}/orders/{oid}/assign",
        headers=desk.front_desk,
        json={"technician_id": str(desk.front_desk_id)},
    )
    assert not_tech.status_code == 422 and not_tech.json()["code"] == "not_a_technician"
    manual = await client.post(
        f"{WO}/orders/{oid}/assign",
        headers=desk.front_desk,
        json={"technician_id": str(desk.technician_id)},
    )
    assert manual.json()["status"] == "assigned"
    missing = await client.post(
        f"{WO}/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[0]),
            "category_id": str(desk.category_id),
            "description": "无地点",
        },
    )
    assert missing.status_code == 422
    # The other community is not granted to this front desk.
    other = await client.post(
        f"{WO}/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[1]),
            "category_id": str(desk.category_id),
            "description": "x",
            "location": "y",
        },
    )
    assert other.status_code == 404


async def test_auto_dispatch_prefers_specific_rules_then_lighter_load(client) -> None:
    company = await make_company()
    community = company.communities[0]
    plumbing = await make_category(company, name="水暖")
    general = await make_technician(company)  # community-wide rule
    plumber_a = await make_technician(company, rule=False)
    plumber_b = await make_technician(company, rule=False)
    async with unit_of_work(company.id) as session:
        for plumber in (plumber_a, plumber_b):
            await service.add_coverage(
                session,
                Actor.system(company.id),
                technician_id=plumber,
                community_id=community,
                category_id=plumbing,
            )
    picks = []
    for n in range(3):
        async with unit_of_work(company.id) as session:
            order = await service.create_order(
                session,
                Actor.system(company.id),
                new=service.NewOrder(
                    community_id=community,
                    category_id=plumbing,
                    description=f"漏水{n}",
                    location="x",
                ),
                source=OrderSource.STAFF,
            )
            picks.append(order.assignee_id)
    assert general not in picks
    assert sorted(picks[:2], key=str) == sorted([plumber_a, plumber_b], key=str)  # load spreads


async def test_sla_deadlines_skip_holidays_in_the_communitys_time_zone(client) -> None:
    desk = await make_desk()
    community = desk.company.communities[0]
    tz = ZoneInfo("Asia/Shanghai")
    today = dt.datetime.now(tz).date()
    off = [today + dt.timedelta(days=d) for d in range(3)]
    response = await client.put(
        f"{WO}/communities/{community}/calendar",
        headers=desk.admin,
        json={
            "weekly": {str(d): [["09:00", "18:00"]] for d in range(1, 8)},
            "holidays": [{"day": d.isoformat(), "kind": "holiday", "name": "假期"} for d in off],
        },
    )
    assert response.status_code == 200, response.text
    order = await report_order(client, desk)
    first_working_morning = dt.datetime.combine(today + dt.timedelta(days=3), dt.time(9), tz)
    response_due = dt.datetime.fromisoformat(order["response_due_at"])
    # Normal priority: 120 working minutes, all of them after the holidays.
    assert response_due == first_working_morning + dt.timedelta(minutes=120)
    bad = await client.put(
        f"{WO}/communities/{community}/calendar",
        headers=desk.admin,
        json={"weekly": {"1": [["18:00", "09:00"]]}, "holidays": []},
    )
    assert bad.status_code == 422
    shown = await client.get(f"{WO}/communities/{community}/calendar", headers=desk.front_desk)
    assert len(shown.json()["holidays"]) == 3


async def test_escalation_warns_managers_once_and_overdue_list(client) -> None:
    desk = await make_desk(routing=False)
    oid = (await report_order(client, desk))["id"]
    async with unit_of_work(desk.company.id) as session:
        future = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        warned = await service.escalate_due(session, Actor.system(desk.company.id), now=future)
        again = await service.escalate_due(session, Actor.system(desk.company.id), now=future)
    assert (warned, again) == (1, 0)
    warning = (await events_of(desk.company.id, "workorder.sla_warning"))[-1]
    assert warning["order_id"] == oid
    assert warning["manager_ids"] == [str(desk.manager_id)]
    assert set(warning["clocks"]) == {"response", "completion"}
    listed = await client.get(f"{WO}/orders", headers=desk.front_desk, params={"overdue": "true"})
    assert listed.json()["items"] == []
    async with unit_of_work(desk.company.id) as session:  # let the response deadline pass
        await session.execute(
            update(WorkOrder)
            .where(WorkOrder.id == uuid.UUID(oid))
            .values(response_due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    listed = await client.get(f"{WO}/orders", headers=desk.front_desk, params={"overdue": "true"})
    assert [o["id"] for o in listed.json()["items"]] == [oid]
    timeline = await client.get(f"{WO}/orders/{oid}/timeline", headers=desk.front_desk)
    assert "sla_warning" in [e["kind"] for e in timeline.json()]


async def test_residents_reach_only_their_own_houses_and_orders(client) -> None:
    desk = await make_desk()
    other = await make_desk()
    oid = (await report_order(client, desk))["id"]
    foreign = await client.post(
        f"{WO}/resident/orders",
        headers=other.resident,
        json={
            "house_id": str(desk.houses[0]),
            "category_id": str(desk.category_id),
            "description": "不是我家",
        },
    )
    assert foreign.status_code == 404
    rate = await client.post(
        f"{WO}/resident/orders/{oid}/rate", headers=other.resident, json={"rating": 1}
    )
    assert rate.status_code == 404
    photo = await client.post(
        f"{WO}/resident/orders/{oid}/photos",
        headers=other.resident,
        files={"photo": ("x.png", png_bytes(), "image/png")},
    )
    assert photo.status_code == 404
    assert (await client.get(f"{WO}/resident/orders", headers=other.resident)).json() == []
    # Staff tokens are not resident tokens and the other way round.
    assert (await client.get(f"{WO}/resident/orders", headers=desk.admin)).status_code == 403
    assert (await client.get(f"{WO}/orders", headers=desk.resident)).status_code == 403
    # Company B's staff see nothing of A.
    assert (await client.get(f"{WO}/orders/{oid}", headers=other.admin)).status_code == 404
    assert (await client.get(f"{WO}/orders", headers=other.admin)).json()["items"] == []


async def test_categories_and_sla_settings(client) -> None:
    desk = await make_desk()
    community = str(desk.company.communities[0])
    created = await client.post(
        f"{WO}/categories",
        headers=desk.admin,
        json={
            "community_id": community,
            "name": "噪音投诉",
            "kind": "complaint",
            "sla": {"urgent": {"response_minutes": 10, "completion_minutes": 60}},
        },
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    dup = await client.post(
        f"{WO}/categories",
        headers=desk.admin,
        json={"community_id": community, "name": "噪音投诉", "kind": "complaint"},
    )
    assert dup.status_code == 409
    bad = await client.patch(
        f"{WO}/categories/{cid}",
        headers=desk.admin,
        json={"sla": {"low": {"response_minutes": 90, "completion_minutes": 60}}},
    )
    assert bad.status_code == 422
    front = await client.post(
        f"{WO}/categories",
        headers=desk.front_desk,
        json={"community_id": community, "name": "x", "kind": "inquiry"},
    )
    assert front.status_code == 403  # settings need desk.configure
    async with unit_of_work(desk.company.id) as session:
        category = await service.get_category(
            session, Actor.system(desk.company.id), category_id=uuid.UUID(cid)
        )
        assert service.sla_of(category, Priority.URGENT) == service.SlaTarget(10, 60)
        assert service.sla_of(category, Priority.LOW) == service.SlaTarget(
            *service.DEFAULT_SLA[Priority.LOW]
        )
    staff_id = await make_staff(desk.company, roles=[Role.FRONT_DESK])
    rule = await client.post(
        f"{WO}/coverage",
        headers=desk.admin,
        json={"technician_id": str(staff_id), "community_id": community},
    )
    assert rule.status_code == 422


async def test_a_building_rule_takes_that_buildings_orders() -> None:
    from linli.estate import service as estate
    from tests.estate.factories import make_houses

    company = await make_company()
    community = company.communities[0]
    houses = await make_houses(company, buildings=2, units=1, floors=1, per_floor=1)
    category = await make_category(company)
    everywhere = await make_technician(company)
    building_two = await make_technician(company, rule=False)
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        second = await estate.get_house(session, system, house_id=houses[1])
        await service.add_coverage(
            session,
            system,
            technician_id=building_two,
            community_id=community,
            building_id=second.building_id,
        )
        picked = []
        for house in houses:
            order = await service.create_order(
                session,
                system,
                new=service.NewOrder(
                    community_id=community, category_id=category, description="x", house_id=house
                ),
                source=OrderSource.STAFF,
            )
            picked.append(order.assignee_id)
    assert picked == [everywhere, building_two]

"""Announcements through the API: drafts, approval (four eyes), publishing, audience, receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from sqlalchemy import func, select, update

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.notices import service as notices
from linli.notices.models import Announcement
from linli.notifications.models import Notification, NotificationDelivery
from linli.residents.models import Relation
from tests.estate.factories import make_houses, make_resident, make_resident_account
from tests.factories import Company, bearer, make_company, make_staff, staff_token
from tests.notifications.helpers import a_phone

URL = "/api/v1/notices/announcements"


async def _people(company: Company) -> dict[str, Any]:
    """Two buildings × 1 unit × 1 floor × 2 houses; one owner holds two houses of building 1."""
    houses = await make_houses(company, buildings=2, units=1, floors=1, per_floor=2)
    phone = a_phone()
    owner = await make_resident(company, house_id=houses[0], name="王一", phone=phone)
    async with unit_of_work(company.id) as session:
        from linli.residents import service as residents

        await residents.move_in(
            session,
            Actor.system(company.id),
            resident_id=owner,
            house_id=houses[1],
            relation=Relation.OWNER,
        )
    family = await make_resident(company, house_id=houses[0], name="王二", relation=Relation.FAMILY)
    b2 = await make_resident(company, house_id=houses[2], name="赵三", phone=a_phone())
    b2b = await make_resident(company, house_id=houses[3], name="赵四")
    async with unit_of_work(company.id) as session:
        house = await estate.get_house(session, Actor.system(company.id), house_id=houses[2])
    return {
        "houses": houses,
        "owner": owner,
        "owner_phone": phone,
        "family": family,
        "b2": b2,
        "b2b": b2b,
        "building2": house.building_id,
    }


async def _staff(company: Company, role: Role) -> tuple[uuid.UUID, dict[str, str]]:
    staff_id = await make_staff(company, roles=[role], all_communities=True)
    return staff_id, bearer(staff_token(company, staff_id, roles=[role]))


async def _count(company: Company, model: Any) -> int:
    async with unit_of_work(company.id) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_draft_approve_publish_once_per_resident_and_idempotent(client) -> None:
    company = await make_company(communities=1)
    people = await _people(company)
    desk_id, desk = await _staff(company, Role.FRONT_DESK)
    manager_id, manager = await _staff(company, Role.COMMUNITY_MANAGER)
    draft = await client.post(
        URL,
        headers=desk,
        json={
            "community_id": str(company.communities[0]),
            "title": "电梯检修",
            "body": "3 号楼电梯周三检修。",
            "pinned": True,
        },
    )
    assert draft.status_code == 201, draft.text
    aid = draft.json()["id"]
    assert draft.json()["status"] == "draft" and draft.json()["created_by"] == str(desk_id)

    # Front desk may draft and submit, not approve.
    assert (await client.post(f"{URL}/{aid}/approve", headers=desk)).status_code == 403
    assert (await client.post(f"{URL}/{aid}/approve", headers=manager)).status_code == 409
    submitted = await client.post(f"{URL}/{aid}/submit", headers=desk)
    assert submitted.json()["status"] == "pending"
    edited = await client.patch(f"{URL}/{aid}", headers=desk, json={"title": "改"})
    assert edited.status_code == 409 and edited.json()["code"] == "announcement_locked"

    published = await client.post(f"{URL}/{aid}/approve", headers=manager)
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["status"] == "published" and body["reviewed_by"] == str(manager_id)
    # Four residents live in the community; the owner of two houses is counted once.
    assert body["recipients"] == 4
    assert await _count(company, Notification) == 4

    again = await client.post(f"{URL}/{aid}/approve", headers=manager)
    assert again.status_code == 200 and again.json()["published_at"] == body["published_at"]
    forced = await client.post(f"{URL}/{aid}/publish", headers=manager)
    assert forced.status_code == 200 and forced.json()["recipients"] == 4
    assert await _count(company, Notification) == 4
    async with unit_of_work(company.id) as session:  # even the service path adds nothing
        announcement = await session.get(Announcement, (company.id, uuid.UUID(aid)))
        assert announcement is not None
        await notices._publish(session, Actor.system(company.id), announcement)
    assert await _count(company, Notification) == 4

    receipts = await client.get(f"{URL}/{aid}/receipts", headers=desk)
    assert receipts.json()["recipients"] == 4 and receipts.json()["read"] == 0
    assert {u["name"] for u in receipts.json()["unread"]} == {"王一", "王二", "赵三", "赵四"}

    # The resident reads it in the portal: the console sees the receipt.
    _, token = await make_resident_account(people["owner_phone"])
    mine = await client.get("/api/v1/notices/mine", headers=bearer(token))
    assert [n["title"] for n in mine.json()] == ["电梯检修"]
    assert mine.json()[0]["pinned"] and not mine.json()[0]["read"]
    read = await client.post(
        f"/api/v1/notices/mine/{aid}/read",
        headers=bearer(token),
        params={"company_id": str(company.id)},
    )
    assert read.status_code == 200 and read.json()["read"]
    after = (await client.get(f"{URL}/{aid}/receipts", headers=desk)).json()
    assert after["read"] == 1
    assert {u["name"] for u in after["unread"]} == {"王二", "赵三", "赵四"}
    inbox = (await client.get("/api/v1/notifications/inbox", headers=bearer(token))).json()
    assert inbox["unread"] == 0 and len(inbox["items"]) == 1


async def test_nobody_approves_their_own_draft(client) -> None:
    company = await make_company(communities=1)
    _, manager = await _staff(company, Role.COMMUNITY_MANAGER)
    aid = (
        await client.post(
            URL,
            headers=manager,
            json={"community_id": str(company.communities[0]), "title": "t", "body": "b"},
        )
    ).json()["id"]
    await client.post(f"{URL}/{aid}/submit", headers=manager)
    refused = await client.post(f"{URL}/{aid}/approve", headers=manager)
    assert refused.status_code == 403 and refused.json()["code"] == "approve_own_draft"
    rejected = await client.post(
        f"{URL}/{aid}/reject", headers=bearer(staff_token(company)), json={"note": "写清楚时间"}
    )
    assert (
        rejected.json()["status"] == "rejected" and rejected.json()["review_note"] == "写清楚时间"
    )
    fixed = await client.patch(f"{URL}/{aid}", headers=manager, json={"body": "周三 9 点"})
    assert fixed.status_code == 200 and fixed.json()["body"] == "周三 9 点"


async def test_buildings_and_houses_reach_only_their_residents(client) -> None:
    company = await make_company(communities=1)
    people = await _people(company)
    admin = bearer(staff_token(company))
    created = await client.post(
        URL,
        headers=admin,
        json={
            "community_id": str(company.communities[0]),
            "title": "2 号楼停电",
            "body": "b",
            "audience": "buildings",
            "building_ids": [str(people["building2"])],
            "channels": ["sms"],
        },
    )
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    await client.post(f"{URL}/{aid}/submit", headers=admin)
    async with unit_of_work(company.id) as session:  # the system actor approves (seeding, jobs)
        announcement = await notices.approve(
            session, Actor.system(company.id), announcement_id=uuid.UUID(aid)
        )
        assert announcement.recipients == 2
        got = set((await session.scalars(select(Notification.resident_id))).all())
        assert got == {people["b2"], people["b2b"]}
        # SMS deliveries for both; the one without a phone is skipped when its job runs.
        assert await session.scalar(select(func.count()).select_from(NotificationDelivery)) == 2

    house_notice = await client.post(
        URL,
        headers=admin,
        json={
            "community_id": str(company.communities[0]),
            "title": "漏水",
            "body": "b",
            "audience": "houses",
            "house_ids": [str(people["houses"][1])],
        },
    )
    hid = house_notice.json()["id"]
    await client.post(f"{URL}/{hid}/submit", headers=admin)
    async with unit_of_work(company.id) as session:
        announcement = await notices.approve(
            session, Actor.system(company.id), announcement_id=uuid.UUID(hid)
        )
        assert announcement.recipients == 1  # only the owner lives in house 2

    _, token = await make_resident_account(people["owner_phone"])
    titles = [
        n["title"] for n in (await client.get("/api/v1/notices/mine", headers=bearer(token))).json()
    ]
    assert titles == ["漏水"]  # not building 2's notice
    refused = await client.post(
        f"/api/v1/notices/mine/{aid}/read",
        headers=bearer(token),
        params={"company_id": str(company.id)},
    )
    assert refused.status_code == 404


async def test_bad_audiences_and_times_are_refused_by_field(client) -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=1)
    houses_b = await make_houses(b, units=1, floors=1, per_floor=1)
    houses_a2 = await make_houses(a, community=1, units=1, floors=1, per_floor=1)
    async with unit_of_work(b.id) as session:
        house_b = await estate.get_house(session, Actor.system(b.id), house_id=houses_b[0])
    admin = bearer(staff_token(a))
    base = {"community_id": str(a.communities[0]), "title": "t", "body": "b"}
    cases = [
        ({"audience": "buildings", "building_ids": [str(house_b.building_id)]}, "unknown_building"),
        ({"audience": "houses", "house_ids": [str(houses_b[0])]}, "unknown_house"),
        ({"audience": "houses", "house_ids": [str(houses_a2[0])]}, "unknown_house"),
        ({"audience": "buildings"}, "required"),
        ({"building_ids": [str(house_b.building_id)]}, "extra"),
        ({"channels": ["fax"]}, "unknown_channel"),
        (
            {
                "publish_at": "2030-01-02T00:00:00+08:00",
                "expires_at": "2030-01-01T00:00:00+08:00",
            },
            "expires_too_early",
        ),
        ({"publish_at": "2030-01-02T00:00:00"}, "naive_datetime"),
    ]
    for extra, code in cases:
        response = await client.post(URL, headers=admin, json=base | extra)
        assert response.status_code == 422, (extra, response.text)
        assert code in {e["code"] for e in response.json()["errors"]}, (extra, response.text)
        assert str(b.id) not in response.text
    other = await client.post(
        URL, headers=admin, json=base | {"community_id": str(b.communities[0])}
    )
    assert other.status_code == 404
    assert await _count(a, Announcement) == 0


async def test_scheduled_publish_runs_from_its_job_and_expiry_hides_it(
    client, owner_dsn: str
) -> None:
    company = await make_company(communities=1)
    people = await _people(company)
    admin = bearer(staff_token(company))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    aid = (
        await client.post(
            URL,
            headers=admin,
            json={"community_id": str(company.communities[0]), "title": "年检", "body": "b"},
        )
    ).json()["id"]
    await client.post(f"{URL}/{aid}/submit", headers=admin)
    async with unit_of_work(company.id) as session:
        scheduled = await notices.approve(
            session, Actor.system(company.id), announcement_id=uuid.UUID(aid), publish_at=later
        )
        assert scheduled.status == "scheduled"
    with psycopg.connect(owner_dsn) as conn:
        jobs = conn.execute(
            "SELECT queue_name, scheduled_at FROM procrastinate_jobs"
            " WHERE task_name = %s AND args->>'announcement_id' = %s",
            (notices.PUBLISH_TASK, aid),
        ).fetchall()
    assert len(jobs) == 1 and jobs[0][0] == "notices"
    assert abs((jobs[0][1] - later).total_seconds()) < 1
    assert await notices.publish_due(company.id, uuid.UUID(aid)) == "rescheduled"
    assert await _count(company, Notification) == 0

    async with unit_of_work(company.id) as session:  # time passes
        await session.execute(
            update(Announcement)
            .where(Announcement.id == uuid.UUID(aid))
            .values(publish_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert await notices.publish_due(company.id, uuid.UUID(aid)) == "published"
    assert await notices.publish_due(company.id, uuid.UUID(aid)) == "published"
    assert await _count(company, Notification) == 4

    _, token = await make_resident_account(people["owner_phone"])
    assert len((await client.get("/api/v1/notices/mine", headers=bearer(token))).json()) == 1
    async with unit_of_work(company.id) as session:
        await session.execute(
            update(Announcement)
            .where(Announcement.id == uuid.UUID(aid))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert (await client.get("/api/v1/notices/mine", headers=bearer(token))).json() == []

    withdrawn = await client.post(f"{URL}/{aid}/withdraw", headers=admin)
    assert withdrawn.json()["status"] == "withdrawn"


async def test_staff_see_only_announcements_of_their_communities(client) -> None:
    company = await make_company(communities=2)
    admin = bearer(staff_token(company))
    aid = (
        await client.post(
            URL,
            headers=admin,
            json={"community_id": str(company.communities[0]), "title": "t", "body": "b"},
        )
    ).json()["id"]
    other_id = await make_staff(
        company, roles=[Role.COMMUNITY_MANAGER], community_ids=[company.communities[1]]
    )
    other = bearer(
        staff_token(
            company,
            other_id,
            roles=[Role.COMMUNITY_MANAGER],
            all_communities=False,
            community_ids=[company.communities[1]],
        )
    )
    assert (await client.get(f"{URL}/{aid}", headers=other)).status_code == 404
    assert (await client.get(URL, headers=other)).json()["items"] == []
    assert (await client.post(f"{URL}/{aid}/submit", headers=other)).status_code == 404
    assert len((await client.get(URL, headers=admin)).json()["items"]) == 1


async def test_demo_seed_publishes_one_announcement_once() -> None:
    from linli.notices import seed

    company = await make_company(communities=2)
    await _people(company)
    first = await seed.seed_demo(tenant_id=company.id)
    again = await seed.seed_demo(tenant_id=company.id)
    assert first is not None and first == again
    async with unit_of_work(company.id) as session:
        announcement = await session.get(Announcement, (company.id, first))
        assert announcement is not None
        assert (announcement.status, announcement.pinned) == ("published", True)
        assert announcement.community_id == company.communities[0]
        assert announcement.recipients == 4


async def test_editing_a_draft_with_nulls_changes_nothing_but_the_times(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    created = await client.post(
        URL,
        headers=admin,
        json={
            "community_id": str(company.communities[0]),
            "title": "t",
            "body": "b",
            "pinned": True,
            "expires_at": "2031-01-01T00:00:00+08:00",
        },
    )
    aid = created.json()["id"]
    edited = await client.patch(
        f"{URL}/{aid}",
        headers=admin,
        json={"pinned": None, "title": None, "channels": None, "expires_at": None},
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["pinned"], body["title"], body["expires_at"]) == (True, "t", None)
    blank = await client.patch(f"{URL}/{aid}", headers=admin, json={"title": "  "})
    assert blank.status_code == 422


async def test_the_worker_publishes_a_scheduled_announcement_when_due(client) -> None:
    import asyncio

    from linli.notices import tasks
    from linli.worker import run_worker

    assert tasks.publish_scheduled.name == notices.PUBLISH_TASK
    company = await make_company(communities=1)
    await _people(company)
    async with unit_of_work(company.id) as session:
        draft = await notices.create_draft(
            session,
            Actor.system(company.id),
            community_id=company.communities[0],
            title="消防演练",
            body="b",
        )
        await notices.submit(session, Actor.system(company.id), announcement_id=draft.id)
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        await notices.approve(
            session, Actor.system(company.id), announcement_id=draft.id, publish_at=soon
        )
    await run_worker(queues=["notices"], wait=False, install_signal_handlers=False)
    async with unit_of_work(company.id) as session:
        assert (await session.get(Announcement, (company.id, draft.id))).status == "scheduled"  # type: ignore[union-attr]
    await asyncio.sleep(1.2)
    await run_worker(queues=["notices"], wait=False, install_signal_handlers=False)
    async with unit_of_work(company.id) as session:
        published = await session.get(Announcement, (company.id, draft.id))
        assert published is not None and published.status == "published"
        assert published.recipients == 4

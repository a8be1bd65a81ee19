"""The resident's side through the API: inbox, read, preferences (opt-outs; portal always on)."""

from __future__ import annotations

import uuid

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.notifications import service
from tests.estate.factories import make_resident, make_resident_account
from tests.factories import bearer, make_company, staff_token
from tests.notifications.helpers import a_phone, deliveries_of


async def _send(company_id: uuid.UUID, resident: uuid.UUID, number: str) -> None:
    async with unit_of_work(company_id) as session:
        await service.notify(
            session,
            Actor.system(company_id),
            recipients=[resident],
            template="workorder.finished",
            params={"number": number, "category": "水电"},
            channels=["sms"],
        )


async def test_inbox_lists_messages_of_every_company_and_reading_marks_them(client) -> None:
    phone = a_phone()
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    in_a = await make_resident(a, house_id=None, phone=phone)
    in_b = await make_resident(b, house_id=None, phone=phone)
    stranger = await make_resident(a, house_id=None, phone=a_phone())
    await _send(a.id, in_a, "A-1")
    await _send(b.id, in_b, "B-1")
    await _send(a.id, stranger, "A-2")
    _, token = await make_resident_account(phone)
    headers = bearer(token) | {"Accept-Language": "en"}

    inbox = await client.get("/api/v1/notifications/inbox", headers=headers)
    assert inbox.status_code == 200, inbox.text
    body = inbox.json()
    assert body["unread"] == 2
    assert sorted(i["title"] for i in body["items"]) == [
        "Repair A-1 is done",
        "Repair B-1 is done",
    ]
    first = next(i for i in body["items"] if i["title"] == "Repair A-1 is done")
    read = await client.post(
        f"/api/v1/notifications/inbox/{first['id']}/read",
        headers=headers,
        params={"company_id": first["company_id"]},
    )
    assert read.status_code == 200 and read.json()["read_at"]
    after = (await client.get("/api/v1/notifications/inbox", headers=headers)).json()
    assert after["unread"] == 1

    # Someone else's message, or the right message under the wrong company: 404.
    async with unit_of_work(a.id) as session:
        from sqlalchemy import select

        from linli.notifications.models import Notification

        theirs = await session.scalar(
            select(Notification.id).where(Notification.resident_id == stranger)
        )
    for nid, company in ((theirs, a.id), (first["id"], b.id)):
        refused = await client.post(
            f"/api/v1/notifications/inbox/{nid}/read",
            headers=headers,
            params={"company_id": str(company)},
        )
        assert refused.status_code == 404


async def test_opt_outs_stop_sms_but_never_the_inbox(client) -> None:
    phone = a_phone()
    company = await make_company(communities=1)
    resident = await make_resident(company, house_id=None, phone=phone)
    _, token = await make_resident_account(phone)
    headers = bearer(token)
    saved = await client.put(
        "/api/v1/notifications/preferences",
        headers=headers,
        json={"locale": "en", "opt_outs": ["workorder.finished:sms"]},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"locale": "en", "opt_outs": ["workorder.finished:sms"]}
    for bad in (["workorder.finished:portal"], ["nope:sms"], ["*:fax"]):
        refused = await client.put(
            "/api/v1/notifications/preferences", headers=headers, json={"opt_outs": bad}
        )
        assert refused.status_code == 422, bad
    await _send(company.id, resident, "WO-1")
    (delivery,) = await deliveries_of(company)
    assert (delivery.status, delivery.last_error) == ("skipped", "opted_out")
    inbox = (await client.get("/api/v1/notifications/inbox", headers=headers)).json()
    assert len(inbox["items"]) == 1
    got = (await client.get("/api/v1/notifications/preferences", headers=headers)).json()
    assert got["locale"] == "en"

    staff_token_refused = await client.get(
        "/api/v1/notifications/inbox",
        headers=bearer(staff_token(company)),
    )
    assert staff_token_refused.status_code == 403

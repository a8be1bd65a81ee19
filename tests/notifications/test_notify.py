"""notify(): inbox rows, deliveries through SMS and WeChat (local fakes), preferences, limits."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.core.consumers import DeliveredEvent
from linli.core.errors import ValidationFailed
from linli.db.engine import unit_of_work
from linli.notifications import service
from linli.notifications.channels import WechatTemplateClient
from linli.notifications.consumer import NotificationsConsumer
from linli.notifications.models import Notification
from linli.notifications.settings import get_notification_settings
from tests.estate.factories import make_houses, make_resident, make_resident_account
from tests.factories import make_company
from tests.notifications.helpers import (
    deliveries_of,
    delivery_jobs,
    fakes_wired,
    wechat_resident,
)


async def _notify(company_id: uuid.UUID, **kwargs: object) -> service.NotifyResult:
    async with unit_of_work(company_id) as session:
        return await service.notify(session, Actor.system(company_id), **kwargs)  # type: ignore[arg-type]


async def test_one_call_writes_the_inbox_and_sends_sms_and_wechat(
    monkeypatch: pytest.MonkeyPatch, owner_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, units=1, floors=1, per_floor=1)
    with fakes_wired(monkeypatch) as fakes:
        resident, phone, openid = await wechat_resident(company, houses[0], fakes)
        result = await _notify(
            company.id,
            recipients=[resident],
            template="workorder.assigned",
            params={"number": "WO-7", "technician": "赵师傅", "category": "水电", "due": "15:30"},
            channels=["sms", "wechat"],
            community_id=company.communities[0],
            link="/portal/messages",
        )
        assert (result.notifications, result.queued) == (1, 2)
        rows = await deliveries_of(company)
        assert sorted((d.channel, d.status) for d in rows) == [
            ("sms", "queued"),
            ("wechat", "queued"),
        ]
        # One job for the batch, written in the same transaction.
        assert delivery_jobs(owner_dsn, [d.id for d in rows]) == [("notifications", "todo")]
        for row in rows:
            outcome = await service.attempt_delivery(company.id, row.id)
            assert outcome.status == "sent", outcome
        assert [m["to"] for m in fakes.sms.messages] == [f"+86{phone}"]
        assert fakes.sms.messages[0]["template"] == "linli_workorder_assigned"
        assert fakes.sms.messages[0]["params"]["number"] == "WO-7"
        (sent,) = fakes.wechat.messages
        assert sent["touser"] == openid and sent["template_id"] == "TPL-ORDER"
        assert sent["data"]["keyword1"] == {"value": "WO-7"}
        assert sent["data"]["first"]["value"] == "新派工单:WO-7"
        assert sent["url"].endswith("/portal/messages")
        assert sent["client_msg_id"] == str(next(d.id for d in rows if d.channel == "wechat"))
        assert {d.status for d in await deliveries_of(company)} == {"sent"}
        # A retried job that finds its delivery sent does nothing.
        again = await service.attempt_delivery(company.id, rows[0].id)
        assert again.status == "sent" and len(fakes.sms.messages) == 1
    captured = capfd.readouterr()
    assert phone not in captured.err + captured.out
    assert "notify.delivery" in captured.err + captured.out  # the log was written, phoneless


async def test_the_same_dedupe_key_twice_makes_one_message_and_one_delivery() -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, units=1, floors=1, per_floor=1)
    resident = await make_resident(company, house_id=houses[0], phone="13600000001")
    for _ in range(2):
        await _notify(
            company.id,
            recipients=[resident, resident],
            template="billing.reminder",
            params={"house": "1-1-101", "amount": "100.00"},
            channels=["sms"],
            dedupe_key="bill:2026-11",
        )
    async with unit_of_work(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 1
    assert len(await deliveries_of(company)) == 1


async def test_over_the_templates_limit_is_logged_as_rate_limited() -> None:
    company = await make_company(communities=1)
    resident = await make_resident(company, house_id=None, phone="13600000002")
    for n in range(4):  # billing.reminder allows 3 a day per resident and channel
        await _notify(
            company.id,
            recipients=[resident],
            template="billing.reminder",
            params={"amount": str(n)},
            channels=["sms"],
        )
    statuses = [d.status for d in await deliveries_of(company)]
    assert statuses == ["queued", "queued", "queued", "rate_limited"]
    async with unit_of_work(company.id) as session:  # the inbox still has all four
        assert await session.scalar(select(func.count()).select_from(Notification)) == 4


async def test_unknown_template_and_channel_are_refused_and_other_companies_ids_ignored() -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    resident_of_b = await make_resident(b, house_id=None)
    with pytest.raises(ValidationFailed) as refused:
        await _notify(a.id, recipients=[resident_of_b], template="no.such")
    assert refused.value.instance_code == "unknown_template"
    with pytest.raises(ValidationFailed):
        await _notify(a.id, recipients=[resident_of_b], template="message", channels=["fax"])
    result = await _notify(
        a.id, recipients=[resident_of_b], template="message", params={"title": "hi"}
    )
    assert result.notifications == 0


async def test_wechat_refreshes_an_expired_token_once_and_caches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with fakes_wired(monkeypatch) as fakes:
        fakes.wechat.followers.add("o-follower")
        client = WechatTemplateClient()
        data = {"first": "t", "keyword1": "k"}
        await client.send(openid="o-follower", template_id="TPL-ORDER", data=data)
        await client.send(openid="o-follower", template_id="TPL-ORDER", data=data)
        assert fakes.wechat.token_requests == 1  # cached
        fakes.wechat.expire_tokens()
        await client.send(openid="o-follower", template_id="TPL-ORDER", data=data)
        assert fakes.wechat.token_requests == 2
        assert fakes.wechat.refused == [42001]
        assert len(fakes.wechat.messages) == 3


async def test_wechat_permanent_refusals_fail_at_once_and_missing_follower_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    company = await make_company(communities=1)
    with fakes_wired(monkeypatch) as fakes:
        unsubscribed, _, openid = await wechat_resident(company, None, fakes)
        fakes.wechat.followers.discard(openid)
        fakes.wechat.unsubscribed.add(openid)
        no_wechat = await make_resident(company, house_id=None, phone="13600000003")
        await _notify(
            company.id,
            recipients=[unsubscribed, no_wechat],
            template="workorder.finished",
            params={"number": "WO-9"},
            channels=["wechat"],
        )
        rows = {d.recipient_key: d for d in await deliveries_of(company)}
        # workorder.finished has no WeChat template id configured in the tests: skipped.
        for row in rows.values():
            outcome = await service.attempt_delivery(company.id, row.id)
            assert (outcome.status, outcome.retry_in) == ("skipped", None)
        monkeypatch.setitem(
            get_notification_settings().wechat_templates, "workorder.finished", "TPL-ORDER"
        )
        await _notify(
            company.id,
            recipients=[unsubscribed, no_wechat],
            template="workorder.finished",
            params={"number": "WO-10"},
            channels=["wechat"],
        )
        fresh = [d for d in await deliveries_of(company) if d.status == "queued"]
        outcomes = {}
        for row in fresh:
            outcomes[row.recipient_key] = await service.attempt_delivery(company.id, row.id)
        assert outcomes[f"r:{unsubscribed}"].status == "failed"
        assert outcomes[f"r:{unsubscribed}"].reason == "wechat_errcode:43004"
        assert outcomes[f"r:{no_wechat}"].status == "skipped"
        reasons = sorted((d.recipient_key, d.last_error) for d in await deliveries_of(company))
        assert reasons == sorted(
            [
                (f"r:{unsubscribed}", "no_wechat_template"),
                (f"r:{no_wechat}", "no_wechat_template"),
                (f"r:{unsubscribed}", "wechat_errcode:43004"),
                (f"r:{no_wechat}", "no_wechat_follower"),
            ]
        )
        assert fakes.wechat.messages == []


async def test_events_become_messages_once_per_recipient() -> None:
    company = await make_company(communities=1)
    resident = await make_resident(company, house_id=None)
    staff_id = company.admin_id
    event = DeliveredEvent(
        id=uuid.uuid4(),
        tenant_id=company.id,
        type="workorder.sla_warning",
        payload={
            "staff_ids": [str(staff_id)],
            "resident_id": str(resident),
            "number": "WO-3",
            "due": "17:00",
            "community_id": str(company.communities[0]),
        },
        created_at=dt.datetime.now(dt.UTC),
    )
    consumer = NotificationsConsumer()
    await consumer.handle(event)
    await consumer.handle(event)  # at-least-once: a second delivery adds nothing
    ignored = DeliveredEvent(
        id=uuid.uuid4(),
        tenant_id=company.id,
        type="house.created",
        payload={"resident_ids": [str(resident)]},
        created_at=event.created_at,
    )
    await consumer.handle(ignored)
    async with unit_of_work(company.id) as session:
        rows = (await session.scalars(select(Notification))).all()
    assert sorted((r.staff_id is not None, r.template) for r in rows) == [
        (False, "workorder.sla_warning"),
        (True, "workorder.sla_warning"),
    ]
    assert rows[0].params["number"] == "WO-3" and "staff_ids" not in rows[0].params
    assert rows[0].community_id == company.communities[0]


async def test_work_order_events_as_that_domain_emits_them() -> None:
    """Payload keys of linli.workorders.events: recipient_staff_ids, resident_account_ids."""
    company = await make_company(communities=1)
    phone = "13600000555"
    resident = await make_resident(company, house_id=None, phone=phone)
    account_id, _ = await make_resident_account(phone)
    created = dt.datetime.now(dt.UTC)
    consumer = NotificationsConsumer()
    await consumer.handle(
        DeliveredEvent(
            id=uuid.uuid4(),
            tenant_id=company.id,
            type="workorder.sla_warning",
            payload={
                "order_id": str(uuid.uuid4()),
                "number": "WO-77",
                "community_id": str(company.communities[0]),
                "status": "assigned",
                "clocks": ["completion"],
                "due": {"completion": "2026-11-25T16:00:00+08:00"},
                "manager_ids": [str(company.admin_id)],
                "recipient_staff_ids": [str(company.admin_id)],
                "assignee_id": None,
            },
            created_at=created,
        )
    )
    await consumer.handle(
        DeliveredEvent(
            id=uuid.uuid4(),
            tenant_id=company.id,
            type="workorder.finished",
            payload={"number": "WO-77", "resident_account_ids": [str(account_id)]},
            created_at=created,
        )
    )
    async with unit_of_work(company.id) as session:
        rows = {r.template: r for r in (await session.scalars(select(Notification))).all()}
    warning = rows["workorder.sla_warning"]
    assert warning.staff_id == company.admin_id
    assert warning.params["due"] == "2026-11-25T16:00:00+08:00"
    assert "manager_ids" not in warning.params and "order_id" not in warning.params
    from linli.notifications import templates

    title, body = templates.get("workorder.sla_warning").render(warning.params, "zh_CN")
    assert title == "工单即将超时:WO-77" and "2026-11-25T16:00:00+08:00" in body
    assert rows["workorder.finished"].resident_id == resident

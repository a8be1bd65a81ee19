"""Delivery jobs in a real worker: a provider that is down is retried, then failed, visibly."""

from __future__ import annotations

import psycopg
import pytest

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.notifications import (
    service,
    tasks,  # the worker knows the task (linli.jobs.TASK_MODULES)
)
from linli.notifications.settings import get_notification_settings
from linli.worker import run_worker
from tests.estate.factories import make_resident
from tests.factories import bearer, make_company, staff_token
from tests.notifications.helpers import (
    deliveries_of,
    delivery_jobs,
    drop_other_delivery_jobs,
    fakes_wired,
    wechat_resident,
)


def test_backoff_doubles_and_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_notification_settings(), "retry_base_seconds", 4)
    assert [service.retry_wait(n) for n in range(1, 6)] == [4, 8, 16, 32, 64]
    assert service.retry_wait(20) == 3600


async def test_a_failed_try_queues_its_retry_with_backoff(
    monkeypatch: pytest.MonkeyPatch, owner_dsn: str
) -> None:
    settings = get_notification_settings()
    monkeypatch.setattr(settings, "max_attempts", 3)
    monkeypatch.setattr(settings, "retry_base_seconds", 4)
    company = await make_company(communities=1)
    with fakes_wired(monkeypatch) as fakes:
        fakes.sms.fail_with = 500
        resident = await make_resident(company, house_id=None, phone="13600000077")
        async with unit_of_work(company.id) as session:
            await service.notify(
                session,
                Actor.system(company.id),
                recipients=[resident],
                template="parcel.arrived",
                params={"code": "1"},
                channels=["sms"],
            )
        (row,) = await deliveries_of(company)
        waits = [(await service.attempt_delivery(company.id, row.id)).retry_in for _ in range(3)]
        assert waits == [4, 8, None]  # the third try is the last one
        (failed,) = await deliveries_of(company)
        assert (failed.status, failed.attempts) == ("failed", 3)
        with psycopg.connect(owner_dsn) as conn:
            delays = conn.execute(
                "SELECT round(extract(epoch FROM scheduled_at - now()))::int"
                " FROM procrastinate_jobs"
                " WHERE task_name = %s AND args->'delivery_ids' ? %s AND scheduled_at IS NOT NULL"
                " ORDER BY scheduled_at",
                (service.DELIVERY_TASK, str(row.id)),
            ).fetchall()
        # Seconds from now: the waits, less the little time the test has taken since.
        assert len(delays) == 2
        assert 2 <= delays[0][0] <= 4 and 6 <= delays[1][0] <= 8, delays


async def test_provider_down_is_retried_then_failed_and_shown_in_the_log(
    monkeypatch: pytest.MonkeyPatch, owner_dsn: str, client
) -> None:
    assert tasks.send_deliveries.name == service.DELIVERY_TASK
    settings = get_notification_settings()
    monkeypatch.setattr(settings, "max_attempts", 3)
    monkeypatch.setattr(settings, "retry_base_seconds", 0)
    company = await make_company(communities=1)
    with fakes_wired(monkeypatch) as fakes:
        fakes.sms.fail_with = 503
        fakes.wechat.fail_with = 502
        resident, _, _ = await wechat_resident(company, None, fakes)
        async with unit_of_work(company.id) as session:
            await service.notify(
                session,
                Actor.system(company.id),
                recipients=[resident],
                template="billing.reminder",
                params={"house": "1-1-101", "amount": "88.00"},
                channels=["sms", "wechat"],
                community_id=company.communities[0],
            )
        rows = await deliveries_of(company)
        drop_other_delivery_jobs(owner_dsn, [d.id for d in rows])
        await run_worker(
            queues=["notifications"], wait=False, install_signal_handlers=False, concurrency=1
        )
        failed = await deliveries_of(company)
        assert sorted((d.channel, d.status, d.attempts) for d in failed) == [
            ("sms", "failed", 3),
            ("wechat", "failed", 3),
        ]
        errors = {d.channel: d.last_error for d in failed}
        assert errors == {"sms": "sms_http_503:unavailable", "wechat": "wechat_http_502"}
        assert fakes.sms.messages == [] and fakes.wechat.messages == []

        token = bearer(staff_token(company, roles=[Role.FRONT_DESK]))
        log = await client.get(
            "/api/v1/notifications/deliveries", headers=token, params={"status": "failed"}
        )
        assert log.status_code == 200, log.text
        assert {i["channel"] for i in log.json()["items"]} == {"sms", "wechat"}
        assert all(i["attempts"] == 3 for i in log.json()["items"])
        assert "phone" not in log.text and "openid" not in log.text
        filtered = await client.get(
            "/api/v1/notifications/deliveries",
            headers=token,
            params={"status": "failed", "channel": "sms"},
        )
        assert [i["channel"] for i in filtered.json()["items"]] == ["sms"]

        # The provider is back: a retry from the log sends it.
        fakes.sms.fail_with = None
        sms_row = next(d for d in failed if d.channel == "sms")
        async with unit_of_work(company.id) as session:
            await service.retry_delivery(session, Actor.system(company.id), delivery_id=sms_row.id)
        assert ("notifications", "todo") in delivery_jobs(owner_dsn, [sms_row.id])
        await run_worker(
            queues=["notifications"], wait=False, install_signal_handlers=False, concurrency=1
        )
        assert len(fakes.sms.messages) == 1
        statuses = {d.channel: d.status for d in await deliveries_of(company)}
        assert statuses == {"sms": "sent", "wechat": "failed"}


async def test_delivery_log_is_scoped_to_the_company_and_granted_communities(client) -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=1)
    resident = await make_resident(a, house_id=None, phone="13600000009")
    for community in a.communities:
        async with unit_of_work(a.id) as session:
            await service.notify(
                session,
                Actor.system(a.id),
                recipients=[resident],
                template="parcel.arrived",
                params={"place": "东门", "code": "1234"},
                channels=["sms"],
                community_id=community,
            )
    everyone = await client.get("/api/v1/notifications/deliveries", headers=bearer(staff_token(a)))
    assert len(everyone.json()["items"]) == 2
    one = bearer(
        staff_token(
            a,
            roles=[Role.COMMUNITY_MANAGER],
            all_communities=False,
            community_ids=[a.communities[0]],
        )
    )
    scoped = await client.get("/api/v1/notifications/deliveries", headers=one)
    assert [i["community_id"] for i in scoped.json()["items"]] == [str(a.communities[0])]
    other = await client.get("/api/v1/notifications/deliveries", headers=bearer(staff_token(b)))
    assert other.json()["items"] == []
    technician = bearer(staff_token(a, roles=[Role.TECHNICIAN]))
    refused = await client.get("/api/v1/notifications/deliveries", headers=technician)
    assert refused.status_code == 403
    templates = await client.get("/api/v1/notifications/templates", headers=bearer(staff_token(a)))
    keys = {t["key"] for t in templates.json()}
    assert {"announcement.published", "workorder.sla_warning", "billing.reminder"} <= keys
    assert all(set(t["title"]) == {"zh_CN", "en"} for t in templates.json())

"""Webhooks from the outbox: signed, filtered by subscription, scope and community,
retried with backoff, given up after 3 days with the hook disabled, replayable."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import psycopg
from standardwebhooks import Webhook

from linli.auth.actor import Actor
from linli.core import outbox
from linli.core.tasks import deliver_to
from linli.db.engine import unit_of_work
from linli.platform import webhooks
from linli.platform.api import issue_developer_token
from tests.factories import Company, bearer, make_company
from tests.platform.factories import PartnerAppMade, install, make_partner_app
from tests.platform.receiver import Receiver

MOVED_IN = "residents.resident.moved_in"
WORKORDER = "workorder.created"


async def _emit(company: Company, event_type: str, payload: dict[str, str]) -> uuid.UUID:
    async with unit_of_work(company.id) as session:
        return await outbox.emit(session, Actor.system(company.id), event_type, payload)


async def _fan_out(company: Company, event_id: uuid.UUID) -> None:
    assert await deliver_to(company.id, event_id, webhooks.WebhookConsumer())


async def _app(url: str, events: list[str]) -> PartnerAppMade:
    return await make_partner_app(events=events, webhook_url=url)


def _set(owner_dsn: str, sql: str, *args: object) -> None:
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(sql, args)


async def test_signed_delivery_once_per_subscribed_installation(owner_dsn: str) -> None:
    company = await make_company(communities=2)
    one, two = company.communities
    with Receiver("whsec_placeholder") as receiver:
        subscribed = await _app(receiver.url, [WORKORDER])
        receiver.secret = subscribed.webhook_secret
        unsubscribed = await _app(receiver.url, [MOVED_IN])
        inst = await install(company, subscribed, scopes=["estate:read"], communities=[one])
        await install(company, unsubscribed, scopes=["estate:read"])
        inside = await _emit(company, WORKORDER, {"order_id": "o1", "community_id": str(one)})
        outside = await _emit(company, WORKORDER, {"order_id": "o2", "community_id": str(two)})
        for event_id in (inside, outside, inside):  # the outbox may hand an event over twice
            await _fan_out(company, event_id)
        with psycopg.connect(owner_dsn) as conn:
            queued = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s"
                " AND status = 'todo' AND task_name = %s",
                (f"webhooks:{inst.installation_id}", webhooks.DISPATCH_TASK),
            ).fetchone()
        assert queued == (1,)  # one waiting dispatch job, however many events
        accepted = await webhooks.dispatch_installation(company.id, inst.installation_id)
    assert accepted == 1
    assert receiver.bad_signatures == 0
    assert [r["data"]["order_id"] for r in receiver.received] == ["o1"]
    assert receiver.received[0]["type"] == WORKORDER
    assert list(receiver.ids) == [f"msg_{inside}"]


async def test_scope_not_granted_means_no_event(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    with Receiver("x") as receiver:
        app = await _app(receiver.url, [MOVED_IN])
        inst = await install(company, app, scopes=["estate:read"])  # not residents:read:basic
        event = await _emit(company, MOVED_IN, {"resident_id": "r", "relation": "owner"})
        await _fan_out(company, event)
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
    assert receiver.received == []


async def test_receiver_down_for_hours_then_back_loses_nothing(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    receiver = Receiver("x", mode="fail")
    with receiver:
        app = await _app(receiver.url, [WORKORDER])
        receiver.secret = app.webhook_secret
        inst = await install(company, app, scopes=["estate:read"])
        events = [await _emit(company, WORKORDER, {"order_id": f"o{n}"}) for n in range(5)]
        for event_id in events:
            await _fan_out(company, event_id)
        for attempt in range(4):  # down: each round fails and backs off further
            assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
            async with unit_of_work(company.id) as session:
                rows = await webhooks.delivery_rows(session, inst.installation_id)
            assert {r.attempts for r in rows} == {attempt + 1}
            wait = min(r.next_attempt_at for r in rows) - dt.datetime.now(dt.UTC)
            assert wait >= webhooks.backoff(attempt + 1) - dt.timedelta(seconds=5)
            _set(
                owner_dsn,
                "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE installation_id = %s",
                inst.installation_id,
            )
        receiver.mode = "ok"
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 5
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
    assert sorted(receiver.ids) == sorted(f"msg_{e}" for e in events)
    assert set(receiver.ids.values()) == {1}


async def test_slow_receiver_does_not_hold_up_another(owner_dsn: str, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(webhooks, "CONCURRENCY", 5)  # the fake's listen backlog is 5
    company = await make_company(communities=1)
    with Receiver("x", delay=3.0) as slow, Receiver("x") as fast:
        slow_app = await _app(slow.url, [WORKORDER])
        fast_app = await _app(fast.url, [WORKORDER])
        fast.secret = fast_app.webhook_secret
        slow_inst = await install(company, slow_app, scopes=["estate:read"])
        fast_inst = await install(company, fast_app, scopes=["estate:read"])
        for n in range(10):
            await _fan_out(company, await _emit(company, WORKORDER, {"order_id": f"o{n}"}))
        started = time.monotonic()
        fast_done: list[float] = []

        async def run_fast() -> int:
            accepted = await webhooks.dispatch_installation(company.id, fast_inst.installation_id)
            fast_done.append(time.monotonic() - started)
            return accepted

        slow_count, fast_count = await asyncio.gather(
            webhooks.dispatch_installation(company.id, slow_inst.installation_id), run_fast()
        )
        total = time.monotonic() - started
    assert fast_count == 10 and slow_count == 0  # the slow one timed out, to be retried
    # the fast receiver was served while the slow one was still being waited for
    assert fast_done[0] < total - 0.5
    # 10 slow requests, 5 in flight at once, each cut at 1 s (not 10 x 3 s in a row)
    assert 1.9 < total < 6.0


async def test_gives_up_after_three_days_disables_and_replays(client, owner_dsn: str) -> None:
    company = await make_company(communities=1)
    with Receiver("x", mode="fail") as receiver:
        app = await _app(receiver.url, [WORKORDER])
        receiver.secret = app.webhook_secret
        inst = await install(company, app, scopes=["estate:read"])
        event = await _emit(company, WORKORDER, {"order_id": "late"})
        await _fan_out(company, event)
        _set(
            owner_dsn,
            "UPDATE webhook_deliveries SET created_at = now() - interval '3 days 1 hour'"
            " WHERE installation_id = %s",
            inst.installation_id,
        )
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
        dev = bearer(issue_developer_token(app.developer.id, app.developer.partner_id, "dev"))
        shown = (await client.get(f"/api/v1/platform/apps/{app.app_id}", headers=dev)).json()
        assert shown["webhook_disabled_at"] is not None  # the portal shows the notice
        log = await client.get(f"/api/v1/platform/apps/{app.app_id}/deliveries", headers=dev)
        assert [d["status"] for d in log.json()] == ["failed"]
        # later events are not even queued while disabled
        await _fan_out(company, await _emit(company, WORKORDER, {"order_id": "while-off"}))
        receiver.mode = "ok"
        delivery = log.json()[0]
        replayed = await client.post(
            f"/api/v1/platform/apps/{app.app_id}/deliveries/{delivery['id']}/replay",
            headers=dev,
            params={"tenant_id": str(company.id)},
        )
        assert replayed.status_code == 200, replayed.text
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 1
    assert list(receiver.ids) == [f"msg_{event}"]
    # another partner's developer cannot see or replay it
    other = await make_partner_app()
    intruder = bearer(issue_developer_token(other.developer.id, other.developer.partner_id, "x"))
    assert (
        await client.get(f"/api/v1/platform/apps/{app.app_id}/deliveries", headers=intruder)
    ).status_code == 404


async def test_revoked_installation_gets_nothing_more(client, owner_dsn: str) -> None:
    company = await make_company(communities=1)
    with Receiver("x") as receiver:
        app = await _app(receiver.url, [WORKORDER])
        inst = await install(company, app, scopes=["estate:read"])
        await _fan_out(company, await _emit(company, WORKORDER, {"order_id": "a"}))
        async with unit_of_work(company.id) as session:
            from linli.platform import service

            admin = Actor.staff(
                id=company.admin_id,
                tenant_id=company.id,
                roles=frozenset({"company_admin"}),
                all_communities=True,
                community_ids=frozenset(),
            )
            await service.revoke_installation(session, admin, inst.installation_id)
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
    assert receiver.received == []


def test_signature_is_standard_webhooks() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signer = Webhook(secret)
    now = dt.datetime.now(dt.UTC)
    signature = signer.sign("msg_1", now, '{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


async def test_billing_events_need_billing_read(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    community = company.communities[0]
    paid = "billing.receipt.paid"
    with Receiver("x") as receiver:
        reader = await _app(receiver.url, [paid])
        receiver.secret = reader.webhook_secret
        blind = await _app(receiver.url, [paid])
        granted = await install(company, reader, scopes=["billing:read"])
        not_granted = await install(company, blind, scopes=["estate:read"])
        event = await _emit(
            company,
            paid,
            {
                "receipt_id": str(uuid.uuid4()),
                "house_id": str(uuid.uuid4()),
                "community_id": str(community),
                "amount_cents": 12_000,
            },
        )
        await _fan_out(company, event)
        assert await webhooks.dispatch_installation(company.id, not_granted.installation_id) == 0
        assert await webhooks.dispatch_installation(company.id, granted.installation_id) == 1
    assert [(r["type"], r["data"]["amount_cents"]) for r in receiver.received] == [(paid, 12_000)]

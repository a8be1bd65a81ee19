"""Transactional outbox: events and their jobs commit with the change; workers deliver them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

import pytest

from linli.auth.actor import Actor
from linli.config import get_settings
from linli.core import outbox
from linli.core.consumers import DeliveryFailed, active_consumers
from linli.core.models import OutboxEvent
from linli.core.tasks import deliver_event, purge_delivered_events
from linli.db.engine import unit_of_work
from linli.jobs import job_app
from linli.worker import run_worker
from tests.core.event_sink import EventSink, deliveries, emit_committed, jobs_of, wait_until
from tests.factories import make_company


async def test_event_and_job_roll_back_with_the_change(owner_dsn: str) -> None:
    company = await make_company(communities=0)
    actor = Actor.system(company.id)
    rolled_back: uuid.UUID | None = None
    with pytest.raises(RuntimeError, match="change failed"):
        async with unit_of_work(company.id) as session:
            rolled_back = await outbox.emit(session, actor, "test.rolled_back", {"n": 1})
            assert jobs_of(owner_dsn, rolled_back) == []  # not visible before commit either
            raise RuntimeError("change failed")
    assert rolled_back is not None
    async with unit_of_work(company.id) as session:
        assert await session.get(OutboxEvent, (company.id, rolled_back)) is None
    assert jobs_of(owner_dsn, rolled_back) == []

    committed = await emit_committed(company.id, "test.committed", {"n": 2})
    async with unit_of_work(company.id) as session:
        event = await session.get(OutboxEvent, (company.id, committed))
        assert event is not None and event.payload == {"n": 2}
    assert jobs_of(owner_dsn, committed) == [("outbox", "linli.core.tasks.deliver_event", "todo")]


async def test_event_types_must_be_topic_safe() -> None:
    company = await make_company(communities=0)
    async with unit_of_work(company.id) as session:
        for bad in ("community/created", "Community.Created", "community", "a.#", "a..b", "a.+"):
            with pytest.raises(ValueError, match="event type"):
                await outbox.emit(session, Actor.system(company.id), bad, {})
        with pytest.raises(ValueError, match="tenant"):
            await outbox.emit(session, Actor.system(), "tenant.less", {})


async def test_unknown_consumer_name_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "event_consumers", "mqtt, carrier-pigeon")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        active_consumers()
    # http-sink without a URL is simply off, not an error.
    monkeypatch.setattr(get_settings(), "event_consumers", "mqtt,http-sink")
    monkeypatch.setattr(get_settings(), "event_sink_url", None)
    assert [c.name for c in active_consumers()] == ["mqtt"]


async def test_worker_publishes_event_to_mqtt_once(subscriber_factory: Any, owner_dsn: str) -> None:
    company = await make_company(communities=0)
    sub = await subscriber_factory(company.id)
    event_id = await emit_committed(company.id, "test.gate.opened", {"gate": "north", "n": 1})

    await run_worker(wait=False, install_signal_handlers=False, concurrency=2)

    async def arrived() -> bool:
        return str(event_id) in sub.ids()

    await wait_until(arrived, timeout=10, what=lambda: f"MQTT messages seen: {sub.messages}")
    topic, message = next(m for m in sub.messages if m[1]["id"] == str(event_id))
    assert topic == f"linli/{company.id}/events/test/gate/opened"
    assert message["type"] == "test.gate.opened"
    assert message["tenant_id"] == str(company.id)
    assert message["data"] == {"gate": "north", "n": 1}
    # Every consumer records the event, also one with nothing to do for its type.
    assert await deliveries(company.id, event_id) == ["mqtt", "notifications", "platform-webhooks"]
    assert jobs_of(owner_dsn, event_id) == []  # succeeded jobs are removed; the delivery row stays

    # The same job delivered again (as after a crash) skips the consumer that has it.
    await deliver_event(tenant_id=str(company.id), event_id=str(event_id))
    await asyncio.sleep(0.5)
    assert sub.ids().count(str(event_id)) == 1
    assert await deliveries(company.id, event_id) == ["mqtt", "notifications", "platform-webhooks"]


async def test_failing_sink_is_retried_without_repeating_other_consumers(
    subscriber_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = EventSink(secret=b"sink-secret-for-tests", fail_first=1)
    try:
        settings = get_settings()
        monkeypatch.setattr(settings, "event_consumers", "mqtt,http-sink")
        monkeypatch.setattr(settings, "event_sink_url", sink.url)
        monkeypatch.setattr(settings, "event_sink_secret", _secret("sink-secret-for-tests"))
        company = await make_company(communities=0)
        sub = await subscriber_factory(company.id)
        event_id = await emit_committed(company.id, "test.parcel.arrived", {"locker": 7})
        kwargs = {"tenant_id": str(company.id), "event_id": str(event_id)}

        with pytest.raises(DeliveryFailed, match="http-sink"):
            await deliver_event(**kwargs)
        assert await deliveries(company.id, event_id) == ["mqtt"]  # MQTT was not held up
        assert sink.accepted == set()

        await deliver_event(**kwargs)  # the retry
        assert await deliveries(company.id, event_id) == ["http-sink", "mqtt"]
        assert sink.accepted == {str(event_id)}
        assert [a.event_type for a in sink.arrivals] == ["test.parcel.arrived"] * 2
        assert all(a.signature_ok and a.body["id"] == str(event_id) for a in sink.arrivals)
        await asyncio.sleep(0.5)
        assert sub.ids().count(str(event_id)) == 1
    finally:
        sink.close()


async def test_two_workers_never_deliver_one_event_at_once(
    subscriber_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A recovered job can run while its first worker is merely slow: the event
    # row lock makes the second run wait, then skip what the first delivered.
    sink = EventSink(secret=b"sink-secret-for-tests", hold_first_seconds=1.0)
    try:
        settings = get_settings()
        monkeypatch.setattr(settings, "event_consumers", "mqtt,http-sink")
        monkeypatch.setattr(settings, "event_sink_url", sink.url)
        monkeypatch.setattr(settings, "event_sink_secret", _secret("sink-secret-for-tests"))
        company = await make_company(communities=0)
        sub = await subscriber_factory(company.id)
        event_id = await emit_committed(company.id, "test.double.run", {})
        kwargs = {"tenant_id": str(company.id), "event_id": str(event_id)}

        await asyncio.gather(deliver_event(**kwargs), deliver_event(**kwargs))

        assert sink.counts() == {str(event_id): 1}
        assert await deliveries(company.id, event_id) == ["http-sink", "mqtt"]
        await asyncio.sleep(0.5)
        assert sub.ids() == [str(event_id)]
    finally:
        sink.close()


async def test_a_tampered_body_fails_the_signature() -> None:
    from linli.core.consumers import sign

    body = b'{"id":"x"}'
    assert sign(body, b"k") == sign(body, b"k")
    assert sign(body, b"k") != sign(body + b" ", b"k")
    assert sign(body, b"k") != sign(body, b"other")


async def test_purge_keeps_what_some_consumer_still_lacks() -> None:
    company = await make_company(communities=0)
    delivered = await emit_committed(company.id, "test.purge.delivered", {})
    pending = await emit_committed(company.id, "test.purge.pending", {})
    await deliver_event(tenant_id=str(company.id), event_id=str(delivered))
    assert await deliveries(company.id, delivered) == ["mqtt", "notifications", "platform-webhooks"]

    async with job_app.open_async():
        # Nothing is old enough under the real retention.
        await purge_delivered_events()
        async with unit_of_work(company.id) as session:
            assert await session.get(OutboxEvent, (company.id, delivered)) is not None
        await purge_delivered_events(older_than=dt.timedelta(0))

    async with unit_of_work(company.id) as session:
        assert await session.get(OutboxEvent, (company.id, delivered)) is None
        assert await session.get(OutboxEvent, (company.id, pending)) is not None
    assert await deliveries(company.id, delivered) == []


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def test_queued_jobs_raise_no_notify_and_a_waiting_worker_polls_them_up(
    owner_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    with psycopg.connect(owner_dsn) as conn:
        state = conn.execute(
            "SELECT tgenabled FROM pg_trigger"
            " WHERE tgname = 'procrastinate_jobs_notify_queue_job_inserted_v1'"
        ).fetchone()
    assert state == ("D",)  # disabled: NOTIFY would serialise every committing request

    monkeypatch.setenv("LINLI_WORKER_POLL_SECONDS", "0.1")
    get_settings.cache_clear()
    company = await make_company(communities=0)
    worker = asyncio.create_task(run_worker(install_signal_handlers=False, concurrency=1))
    try:
        await asyncio.sleep(0.5)  # the worker is waiting: only polling can wake it now
        event_id = await emit_committed(company.id, "test.polled", {"n": 1})
        assert jobs_of(owner_dsn, event_id), "the event's delivery job was queued"

        async def done() -> bool:  # successful jobs are deleted
            return jobs_of(owner_dsn, event_id) == []

        await wait_until(done, timeout=5, what=lambda: str(jobs_of(owner_dsn, event_id)))
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        get_settings.cache_clear()

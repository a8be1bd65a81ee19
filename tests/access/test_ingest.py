"""The event ingest: batches, duplicates, spoofed topics, bad payloads, a killed worker, plates."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from linli.access import ingest as ingest_module
from linli.access import protocol, service
from linli.access.models import AccessEvent, Device, VehicleEntry
from linli.access.simulator import DeviceConfig, VirtualDevice
from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.residents import service as residents
from tests.access.helpers import Site, eventually, make_site, running_fleet, running_ingest
from tests.factories import bearer, staff_token


def _batch(config: DeviceConfig, ids: list[str], **fields: Any) -> bytes:
    now = time.time()
    events = [{"id": i, "ts": now, "kind": "open", "method": "card"} | fields for i in ids]
    return protocol.dumps(
        {"v": 1, "mid": uuid.uuid4().hex, "dev": str(config.device_id), "events": events}
    )


async def _count(site: Site, **where: Any) -> int:
    async with unit_of_work(site.company.id) as session:
        statement = select(func.count()).select_from(AccessEvent)
        for key, value in where.items():
            statement = statement.where(getattr(AccessEvent, key) == value)
        return int(await session.scalar(statement) or 0)


async def test_batches_are_stored_once_whatever_is_delivered_twice() -> None:
    site = await make_site()
    config = site.devices["gate"]
    ids = [f"e{n}" for n in range(250)]
    async with running_ingest() as ingest, protocol.client() as mqtt:
        for chunk in (ids[:100], ids[100:200], ids[200:]):
            payload = _batch(config, chunk)
            await mqtt.publish(config.topic("evt"), payload, qos=1)
            await mqtt.publish(config.topic("evt"), payload, qos=1)  # a QoS 1 duplicate
        await mqtt.publish(config.topic("evt"), _batch(config, ids[:50]), qos=1)  # a re-send

        async def stored() -> bool:
            return await _count(site, device_id=config.device_id) == 250

        await eventually(stored)
        await asyncio.sleep(0.3)
        assert await _count(site, device_id=config.device_id) == 250
        assert ingest.stats.duplicates >= 300


async def test_a_device_on_another_companys_topic_is_refused_and_flagged() -> None:
    mine, theirs = await make_site(), await make_site()
    intruder = mine.devices["gate"]
    # The intruder's own id and credentials, the other company's topic.
    spoofed = protocol.topic(theirs.company.id, theirs.community_id, intruder.device_id, "evt")
    # The other company's device id in the topic, but the payload says who really sends it.
    victim = theirs.devices["gate"]
    async with running_ingest() as ingest, protocol.client() as mqtt:
        await mqtt.publish(spoofed, _batch(intruder, ["x1"]), qos=1)
        await mqtt.publish(victim.topic("evt"), _batch(intruder, ["x2"]), qos=1)

        async def flagged() -> bool:
            return await _count(theirs, kind="rejected_message") == 2

        await eventually(flagged)
        assert await _count(theirs, kind="open") == 0
        assert await _count(mine) == 0
        assert ingest.stats.refused >= 2
    async with unit_of_work(theirs.company.id) as session:
        reasons = set(
            (
                await session.scalars(
                    select(AccessEvent.reason).where(AccessEvent.kind == "rejected_message")
                )
            ).all()
        )
    assert reasons == {"unknown_device", "device_mismatch"}


async def test_malformed_payloads_store_nothing_and_do_not_stop_the_ingest() -> None:
    site = await make_site()
    config = site.devices["gate"]
    now = time.time()
    bad_events = [
        {"id": "b1", "ts": now, "kind": "teleport"},
        {"id": "", "ts": now, "kind": "open"},
        {"id": "b3", "ts": "yesterday", "kind": "open"},
        {"id": "b4", "ts": now + 86400 * 10, "kind": "open"},
        {"id": "b5", "ts": now, "kind": "open", "dir": "sideways"},
        {"id": "b6", "ts": now, "kind": "open", "plate": "X" * 40},
        "not an object",
    ]
    async with running_ingest() as ingest, protocol.client() as mqtt:
        for payload in (
            b"\xff\xfe not json",
            b"[1, 2, 3]",
            protocol.dumps({"v": 99, "dev": str(config.device_id), "events": []}),
            protocol.dumps({"v": 1, "dev": str(config.device_id), "events": "many"}),
            _batch(config, [f"m{n}" for n in range(101)]),  # over the batch limit
            protocol.dumps({"v": 1, "dev": str(config.device_id), "events": bad_events}),
        ):
            await mqtt.publish(config.topic("evt"), payload, qos=1)
        await mqtt.publish("linli/not-a-uuid/x/y/evt", b"{}", qos=1)
        await mqtt.publish(config.topic("evt"), _batch(config, ["good"]), qos=1)

        async def good_one() -> bool:
            return await _count(site, device_event_id="good") == 1

        await eventually(good_one)
        assert await _count(site, kind="open") == 1
        assert ingest.stats.malformed >= len(bad_events) + 1


async def test_a_disabled_device_is_refused_at_once(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "DEVICE_CACHE_SECONDS", 0.0)
    site = await make_site()
    config = site.devices["gate"]
    staff = bearer(staff_token(site.company))
    response = await client.post(
        f"/api/v1/access/devices/{config.device_id}/disable", headers=staff
    )
    assert response.status_code == 200
    async with running_ingest(), protocol.client() as mqtt:
        await mqtt.publish(config.topic("evt"), _batch(config, ["d1"]), qos=1)

        async def flagged() -> bool:
            return await _count(site, kind="rejected_message", reason="device_disabled") == 1

        await eventually(flagged)
    assert await _count(site, kind="open") == 0


async def test_device_state_follows_heartbeats_and_the_last_will() -> None:
    site = await make_site()
    device = VirtualDevice(site.devices["gate"], heartbeat_seconds=0.2)

    async def state() -> tuple[bool, dt.datetime | None]:
        async with unit_of_work(site.company.id) as session:
            row = await session.scalar(select(Device).where(Device.id == device.config.device_id))
            assert row is not None
            return row.online, row.last_seen_at

    async with running_ingest():
        async with running_fleet([device]):

            async def online() -> bool:
                return (await state())[0]

            await eventually(online)
            first_seen = (await state())[1]
            assert first_seen is not None

            async def seen_again() -> bool:
                return ((await state())[1] or first_seen) > first_seen

            await eventually(seen_again)  # the heartbeats move last_seen on

        async def offline() -> bool:
            return not (await state())[0]

        await eventually(offline)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("LINLI_TEST_MQTT_URL"),
    reason="amqtt 0.12 does not redeliver unacknowledged QoS 1 messages to a reconnecting"
    " session (MQTT-4.4.0-1): only a real broker such as Mosquitto keeps this promise",
)
async def test_a_killed_ingest_loses_nothing_and_doubles_nothing(linli_env: dict[str, str]) -> None:
    site = await make_site()
    config = site.devices["gate"]
    identifier = f"test-killed-{uuid.uuid4().hex[:8]}"
    env = os.environ | {"LINLI_ACCESS_INGEST_ID": identifier}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "linli.access.ingest"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    worker = start()
    total = 6000
    try:
        async with protocol.client() as mqtt:
            # The probe makes sure the worker's persistent session (and subscription) exists:
            # sent again until it is stored (the same event id: stored once).
            async def probed() -> bool:
                await mqtt.publish(config.topic("evt"), _batch(config, ["probe"]), qos=1)
                await asyncio.sleep(0.2)
                return await _count(site, device_event_id="probe") == 1

            try:
                await eventually(probed, 30)
            except AssertionError as exc:
                raise AssertionError("the ingest never stored the probe") from exc
            for start_at in range(0, total, 20):
                ids = [f"k{n}" for n in range(start_at, start_at + 20)]
                await mqtt.publish(config.topic("evt"), _batch(config, ids), qos=1)

            async def some() -> bool:
                return await _count(site) > 200

            try:
                await eventually(some, 30)
            except AssertionError as exc:
                raise AssertionError(f"only {await _count(site)} stored") from exc
            worker.send_signal(signal.SIGKILL)  # mid-stream, likely mid-batch
            worker.wait(10)
            stored_when_killed = await _count(site)
            worker = start()

            async def complete() -> bool:
                return await _count(site) == total + 1

            try:
                await eventually(complete, 60)
            except AssertionError as exc:
                found = await _count(site)
                raise AssertionError(
                    f"stored {found} of {total + 1} ({stored_when_killed} when killed)"
                ) from exc
            await asyncio.sleep(0.5)
            assert await _count(site) == total + 1
            assert stored_when_killed < total + 1 or stored_when_killed == total + 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()


async def test_plates_open_for_residents_and_temporary_vehicles_pay_on_exit() -> None:
    site = await make_site()
    system = Actor.system(site.company.id)
    async with unit_of_work(site.company.id) as session:
        car = await residents.register_vehicle(
            session,
            system,
            community_id=site.community_id,
            plate="京A12345",
            resident_id=site.resident_id,
        )
        await service.set_tariff(
            session,
            system,
            community_id=site.community_id,
            free_minutes=30,
            hourly=Decimal("5.00"),
            daily_cap=Decimal("40.00"),
        )
    barrier = VirtualDevice(site.devices["parking"])
    entered = time.time() - 2.5 * 3600
    async with running_ingest(), running_fleet([barrier]), protocol.client() as mqtt:
        config = site.devices["parking"]
        events = [
            {"id": "p1", "ts": entered, "kind": "plate", "dir": "in", "plate": "京A12345"},
            {"id": "p2", "ts": entered, "kind": "plate", "dir": "in", "plate": "沪B88888"},
            {"id": "p3", "ts": time.time(), "kind": "plate", "dir": "out", "plate": "沪B88888"},
        ]
        for event in events:  # in order: an exit after its entry
            message = {"v": 1, "mid": uuid.uuid4().hex, "dev": str(config.device_id)}
            await mqtt.publish(
                config.topic("evt"), protocol.dumps(message | {"events": [event]}), qos=1
            )
            await asyncio.sleep(0.2)

        async def settled() -> bool:
            async with unit_of_work(site.company.id) as session:
                rows = (await session.scalars(select(VehicleEntry))).all()
            return len(rows) == 2 and any(r.exited_at for r in rows)

        await eventually(settled)

        # The resident's car was let in with an open command.
        async def opened() -> bool:
            return len(barrier.opened) >= 1

        await eventually(opened)
    async with unit_of_work(site.company.id) as session:
        rows = {r.plate: r for r in (await session.scalars(select(VehicleEntry))).all()}
    assert rows["京A12345"].known and rows["京A12345"].exited_at is None
    temporary = rows["沪B88888"]
    assert not temporary.known and temporary.fee == Decimal("15.00")  # 3 started hours
    # The car now has gate records: deleting it is refused (archive it instead).
    async with unit_of_work(site.company.id) as session:
        reasons = await estate.usage_of(session, system, subject="vehicle", subject_id=car.id)
    assert "gate_records" in reasons


def test_parking_fees_by_tariff() -> None:
    tariff = service.Tariff(free_minutes=30, hourly=Decimal("5.00"), daily_cap=Decimal("40.00"))
    start = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)

    def fee(minutes: float) -> Decimal:
        return service.parking_fee(tariff, start, start + dt.timedelta(minutes=minutes))

    assert fee(0) == fee(30) == Decimal("0.00")
    assert fee(31) == Decimal("5.00")  # the first started hour
    assert fee(60) == Decimal("5.00")
    assert fee(61) == Decimal("10.00")
    assert fee(7 * 60) == Decimal("35.00")
    assert fee(9 * 60) == Decimal("40.00")  # the daily cap
    assert fee(24 * 60) == Decimal("40.00")
    assert fee(24 * 60 + 30) == Decimal("45.00")  # a second day starts: cap + one hour
    assert fee(3 * 24 * 60) == Decimal("120.00")
    assert service.parking_fee(tariff, start, start - dt.timedelta(hours=1)) == Decimal("0.00")

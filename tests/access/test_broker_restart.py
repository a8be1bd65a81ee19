"""The broker restarts: devices, the ingest and the command bus reconnect and resubscribe."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from linli.access import service
from linli.access.models import AccessEvent
from linli.access.simulator import VirtualDevice
from linli.auth.actor import Actor, PrincipalKind
from linli.config import get_settings
from linli.db.engine import unit_of_work
from tests.access.helpers import eventually, make_site, running_fleet, running_ingest
from tests.conftest import _wait_port, free_port


@pytest.fixture
def own_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A broker of this test only (so it may be restarted), in place of the run's broker."""
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    monkeypatch.setenv("LINLI_MQTT_URL", f"mqtt://127.0.0.1:{port}")
    get_settings.cache_clear()
    try:
        yield port, started
    finally:
        for process in started:
            process.kill()
            process.wait(5)
        monkeypatch.undo()
        get_settings.cache_clear()


def _start(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "linli.core.broker", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port)
    return process


async def test_everyone_reconnects_after_a_broker_restart(
    own_broker: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, started = own_broker
    started.append(_start(port))
    site = await make_site()
    device = VirtualDevice(site.devices["entrance"], heartbeat_seconds=0.3)

    async with running_ingest(), running_fleet([device]):
        async with unit_of_work() as session:
            communities = await service.my_communities(session, _resident(site))
        mine = communities[0]

        async def open_door() -> str:
            result = await service.remote_open(
                _resident(site),
                company_id=site.company.id,
                pass_id=mine.pass_id,
                access_point_id=site.entrance_id,
            )
            return result.status

        assert await open_door() == "done"

        started[0].kill()
        started[0].wait(5)
        await eventually(_disconnected(device), 10)
        device.alarm("alarm_forced")  # happens while the broker is away: kept on the device
        await asyncio.sleep(0.5)
        started.append(_start(port))

        await eventually(_connected(device), 20)

        async def alarm_stored() -> bool:
            async with unit_of_work(site.company.id) as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(AccessEvent)
                    .where(AccessEvent.kind == "alarm_forced")
                )
            return count == 1

        await eventually(alarm_stored, 20)  # the ingest is back and subscribed again

        async def opens_again() -> bool:
            try:
                return await open_door() == "done"
            except service.DeviceTimeout:
                return False

        await eventually(opens_again, 20)  # the command bus reconnected too


def _resident(site: object) -> Actor:
    from linli.auth.tokens import decode_access_token

    token = site.resident_token  # type: ignore[attr-defined]
    actor = decode_access_token(token, (PrincipalKind.RESIDENT,))
    return actor


def _connected(device: VirtualDevice):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return device.connected.is_set()

    return check


def _disconnected(device: VirtualDevice):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return not device.connected.is_set()

    return check

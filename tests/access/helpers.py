"""A community with doors, devices and a resident, made through the services; virtual devices."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from linli.access import service
from linli.access.ingest import Ingest
from linli.access.models import AccessPointKind, DeviceKind
from linli.access.simulator import DeviceConfig, Fleet, VirtualDevice
from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import Company, make_company


@dataclasses.dataclass
class Site:
    company: Company
    community_id: uuid.UUID
    gate_id: uuid.UUID
    entrance_id: uuid.UUID
    parking_id: uuid.UUID
    other_entrance_id: uuid.UUID
    devices: dict[str, DeviceConfig]
    resident_id: uuid.UUID
    resident_token: str
    phone: str


async def make_site(*, company: Company | None = None) -> Site:
    """Community C01: a gate, the entrance of building 1 (where the resident lives), the
    entrance of building 2, a car park; a device at each of the first three."""
    company = company or await make_company(communities=1)
    houses = await make_houses(company, buildings=2, units=1, floors=1, per_floor=1)
    phone = random_phone()
    resident_id = await make_resident(company, house_id=houses[0], name="李四", phone=phone)
    _, token = await make_resident_account(phone, "李四")
    system = Actor.system(company.id)
    community_id = company.communities[0]
    async with unit_of_work(company.id) as session:
        first = await estate.get_house(session, system, house_id=houses[0])
        second = await estate.get_house(session, system, house_id=houses[1])
        points = {}
        for key, kind, name, building in (
            ("gate", AccessPointKind.COMMUNITY_GATE, "南门", None),
            ("entrance", AccessPointKind.BUILDING_ENTRANCE, "1栋单元门", first.building_id),
            ("other", AccessPointKind.BUILDING_ENTRANCE, "2栋单元门", second.building_id),
            ("parking", AccessPointKind.PARKING_ENTRANCE, "地库入口", None),
        ):
            point = await service.create_access_point(
                session,
                system,
                community_id=community_id,
                kind=kind,
                name=name,
                building_id=building,
            )
            points[key] = point.id
        devices = {}
        for key, kind in (
            ("gate", DeviceKind.TURNSTILE),
            ("entrance", DeviceKind.DOOR_CONTROLLER),
            ("parking", DeviceKind.VEHICLE_BARRIER),
        ):
            provisioned = await service.provision_device(
                session,
                system,
                access_point_id=points[key],
                kind=kind,
                name=f"{key}-1",
                vendor="test",
            )
            devices[key] = DeviceConfig.from_provisioned(provisioned)
    return Site(
        company,
        community_id,
        points["gate"],
        points["entrance"],
        points["parking"],
        points["other"],
        devices,
        resident_id,
        token,
        phone,
    )


@contextlib.asynccontextmanager
async def running_fleet(devices: list[VirtualDevice]) -> AsyncIterator[Fleet]:
    fleet = Fleet(devices)
    await fleet.start(wait_seconds=20)
    try:
        yield fleet
    finally:
        await fleet.close()


@contextlib.asynccontextmanager
async def running_ingest() -> AsyncIterator[Ingest]:
    """An in-process ingest with its own session (clean: tests do not share a backlog)."""
    ingest = Ingest(identifier=f"test-ingest-{uuid.uuid4().hex[:10]}", clean_session=True)
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop=stop))
    await asyncio.wait_for(ingest.ready.wait(), 20)
    try:
        yield ingest
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


__all__ = ["Site", "eventually", "make_site", "running_fleet", "running_ingest"]

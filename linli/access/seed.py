"""Demo access control: doors and simulated devices for the demo company.

Called by the demo seeder after the estate exists::

    from linli.access.seed import seed_demo as seed_demo_access
    await seed_demo_access(tenant_id, community_ids)

Idempotent: a second run adds nothing. The devices carry vendor ``linli-sim`` so that
``linli device-sim --community <id> --devices N`` brings exactly these online.
"""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

from sqlalchemy import select

from linli.access import service
from linli.access.models import AccessPoint, AccessPointKind, Device, DeviceKind
from linli.access.simulator import SIM_VENDOR
from linli.auth.actor import Actor
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate import service as estate

MAX_BUILDING_DOORS = 6


@dataclasses.dataclass(frozen=True)
class SeededAccess:
    access_points: int
    devices: int


async def seed_demo(tenant_id: uuid.UUID, community_ids: list[uuid.UUID]) -> SeededAccess:
    system = Actor.system(tenant_id)
    points_made = devices_made = 0
    async with unit_of_work(tenant_id) as session:
        for community_id in community_ids:
            existing = {
                p.name: p
                for p in (
                    await session.scalars(
                        select(AccessPoint).where(AccessPoint.community_id == community_id)
                    )
                ).all()
            }
            buildings, _ = await estate.list_buildings(
                session,
                system,
                community_id=community_id,
                page=PageParams(limit=MAX_BUILDING_DOORS),
            )
            wanted: list[tuple[str, AccessPointKind, uuid.UUID | None, DeviceKind]] = [
                ("南门", AccessPointKind.COMMUNITY_GATE, None, DeviceKind.TURNSTILE),
                ("北门", AccessPointKind.COMMUNITY_GATE, None, DeviceKind.INTERCOM),
                ("地库入口", AccessPointKind.PARKING_ENTRANCE, None, DeviceKind.VEHICLE_BARRIER),
            ]
            wanted += [
                (
                    f"{b.building_no}栋单元门",
                    AccessPointKind.BUILDING_ENTRANCE,
                    b.id,
                    DeviceKind.DOOR_CONTROLLER,
                )
                for b in buildings
            ]
            named = {
                d.name
                for d in (
                    await session.scalars(select(Device).where(Device.community_id == community_id))
                ).all()
            }
            for name, kind, building_id, device_kind in wanted:
                point = existing.get(name)
                if point is None:
                    point = await service.create_access_point(
                        session,
                        system,
                        community_id=community_id,
                        kind=kind,
                        name=name,
                        building_id=building_id,
                    )
                    points_made += 1
                device_name = f"{name}-1"
                if device_name not in named:
                    await service.provision_device(
                        session,
                        system,
                        access_point_id=point.id,
                        kind=device_kind,
                        name=device_name,
                        vendor=SIM_VENDOR,
                    )
                    devices_made += 1
            if await service.get_tariff(session, community_id) is None:
                await service.set_tariff(
                    session,
                    system,
                    community_id=community_id,
                    free_minutes=30,
                    hourly=Decimal("5.00"),
                    daily_cap=Decimal("40.00"),
                )
    return SeededAccess(points_made, devices_made)

"""``linli device-sim``: virtual devices of a community come online and publish events."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from linli.access.models import AccessEvent, Device
from linli.db.engine import unit_of_work
from tests.access.helpers import running_ingest
from tests.cli.helpers import linli
from tests.factories import make_company


async def test_device_sim_runs_devices_that_publish_events() -> None:
    company = await make_company(communities=1)
    community = str(company.communities[0])
    async with running_ingest():
        done = await asyncio.to_thread(
            linli,
            "device-sim",
            "--community",
            community,
            "--devices",
            "3",
            "--rate",
            "60",
            "--seconds",
            "2",
            "--batch",
            "10",
        )
        assert done.returncode == 0, done.stderr
        assert "3 devices online" in done.stderr and "published" in done.stderr

        async def stored() -> int:
            async with unit_of_work(company.id) as session:
                return int(await session.scalar(select(func.count()).select_from(AccessEvent)) or 0)

        for _ in range(100):
            if await stored() >= 100:
                break
            await asyncio.sleep(0.1)
        assert await stored() >= 100
    async with unit_of_work(company.id) as session:
        names = (await session.scalars(select(Device.name).order_by(Device.name))).all()
    assert names == ["sim-0001", "sim-0002", "sim-0003"]
    again = linli("device-sim", "--community", "not-a-uuid")
    assert again.returncode != 0 and "UUID" in (again.stderr + again.stdout)

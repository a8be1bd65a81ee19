"""Demo billing data (演示收费数据): fee items of every community and one issued month.

Called by the demo seeder after the estate is in place::

    from linli.billing.seed import seed_demo as seed_demo_billing
    await seed_demo_billing(tenant_id)

Idempotent like the rest of the demo: existing fee items (by code) are kept, and
the month's run is the live one if it exists (a run of a month never bills twice).
The run is issued in this process, not through a worker, so the demo shows bills
at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.billing import service
from linli.billing.models import FeeCycle, FeeItem, FeeKind, RunStatus
from linli.db.engine import unit_of_work
from linli.tenancy.models import Community


@dataclass(frozen=True)
class DemoFee:
    code: str
    name: str
    kind: FeeKind
    unit: str
    prices: tuple[tuple[str | None, str], ...]  # (variant, cents per unit)
    cycle: FeeCycle = FeeCycle.MONTHLY
    late_fee_daily_bp: int = 0


FEES = (
    DemoFee(
        "WYF",
        "物业费",
        FeeKind.AREA,
        "m²",
        ((None, "250"), ("shop", "450"), ("office", "380")),
        late_fee_daily_bp=5,
    ),
    DemoFee("LJF", "垃圾清运费", FeeKind.FIXED, "户", ((None, "1500"),)),
    DemoFee("CWF", "车位管理费", FeeKind.PARKING, "个", ((None, "10000"), ("rented", "30000"))),
    DemoFee("SF", "水费", FeeKind.METERED, "m³", ((None, "0"),)),
    DemoFee("ZXYJ", "装修押金", FeeKind.ONE_OFF, "次", ()),
)
WATER_TIERS: list[dict[str, Any]] = [
    {"up_to": 20, "price": 350},
    {"up_to": 30, "price": 520},
    {"up_to": None, "price": 800},
]


def _last_month(today: dt.date) -> dt.date:
    first = today.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


async def seed_demo(tenant_id: uuid.UUID, *, period: dt.date | None = None) -> int:
    """Fee items for every community of the company and one issued run; returns bills issued."""
    system = Actor.system(tenant_id)
    month = period or _last_month(service.today())
    run_ids: list[uuid.UUID] = []
    async with unit_of_work(tenant_id) as session:
        communities = (await session.scalars(select(Community.id).order_by(Community.code))).all()
        for community_id in communities:
            existing = set(
                (
                    await session.scalars(
                        select(FeeItem.code).where(FeeItem.community_id == community_id)
                    )
                ).all()
            )
            for fee in FEES:
                if fee.code in existing:
                    continue
                item = await service.create_fee_item(
                    session,
                    system,
                    community_id=community_id,
                    code=fee.code,
                    name=fee.name,
                    kind=fee.kind,
                    cycle=fee.cycle,
                    unit=fee.unit,
                    due_days=15,
                    late_fee_grace_days=15,
                    late_fee_daily_bp=fee.late_fee_daily_bp,
                    late_fee_cap_pct=20 if fee.late_fee_daily_bp else 0,
                )
                for variant, cents in fee.prices:
                    await service.add_price(
                        session,
                        system,
                        fee_item_id=item.id,
                        effective_from=dt.date(2020, 1, 1),
                        unit_price=Decimal(cents),
                        variant=variant,
                        tiers=WATER_TIERS if fee.kind is FeeKind.METERED else None,
                    )
                if fee.code == "WYF":
                    await service.add_discount_rule(
                        session,
                        system,
                        fee_item_id=item.id,
                        name="预交12个月送1个月",
                        min_months=12,
                        free_months=1,
                    )
            run, _ = await service.start_run(
                session, system, community_id=community_id, period=month
            )
            if run.status != RunStatus.ISSUED.value:
                run_ids.append(run.id)
    issued = 0
    for run_id in run_ids:
        await service.run_job(tenant_id, run_id)
    async with unit_of_work(tenant_id) as session:
        for run_id in run_ids:
            found = await service.get_run(session, system, run_id=run_id)
            issued += found.bill_count
    return issued

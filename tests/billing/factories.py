"""Billing factories: fee items, prices, an issued run, an open shift — through the services."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.billing import service as billing
from linli.billing.models import FeeKind
from linli.db.engine import unit_of_work
from tests.estate.factories import make_houses
from tests.factories import Company

PERIOD = dt.date(2026, 3, 1)


def cashier(company: Company, staff_id: uuid.UUID | None = None) -> Actor:
    return Actor.staff(
        id=staff_id or uuid.uuid4(),
        tenant_id=company.id,
        roles=frozenset({Role.FINANCE.value}),
        all_communities=True,
        community_ids=frozenset(),
    )


@dataclass
class Billed:
    company: Company
    houses: list[uuid.UUID]
    property_fee: uuid.UUID
    run_id: uuid.UUID
    extra: dict[str, uuid.UUID] = field(default_factory=dict)


async def make_property_fee(
    company: Company,
    *,
    community: int = 0,
    price: str = "250",
    late_fee_daily_bp: int = 0,
    code: str = "WYF",
) -> uuid.UUID:
    """物业费 at ``price`` cents per m² per month, from 2020 on."""
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        item = await billing.create_fee_item(
            session,
            system,
            community_id=company.communities[community],
            code=code,
            name="物业费",
            kind=FeeKind.AREA,
            unit="m²",
            due_days=15,
            late_fee_daily_bp=late_fee_daily_bp,
            late_fee_cap_pct=20 if late_fee_daily_bp else 0,
        )
        await billing.add_price(
            session,
            system,
            fee_item_id=item.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal(price),
        )
        return item.id


async def issue_run(company: Company, *, community: int = 0, period: dt.date = PERIOD) -> uuid.UUID:
    async with unit_of_work(company.id) as session:
        run, _ = await billing.start_run(
            session,
            Actor.system(company.id),
            community_id=company.communities[community],
            period=period,
        )
        run_id = run.id
    assert await billing.run_job(company.id, run_id) == "issued"
    return run_id


async def billed_company(
    company: Company, *, houses: int = 4, late_fee_daily_bp: int = 0
) -> Billed:
    """``houses`` houses of 89.50 m², 物业费 2.50 元/m², March 2026 issued (223.75 元 each)."""
    ids = await make_houses(company, buildings=1, units=1, floors=1, per_floor=houses)
    fee = await make_property_fee(company, late_fee_daily_bp=late_fee_daily_bp)
    run_id = await issue_run(company)
    return Billed(company, ids, fee, run_id)


async def open_shift(company: Company, actor: Actor, *, float_cents: int = 0) -> uuid.UUID:
    async with unit_of_work(company.id) as session:
        shift = await billing.open_shift(
            session, actor, community_id=company.communities[0], opening_float_cents=float_cents
        )
        return shift.id

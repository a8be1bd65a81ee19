"""Id makers of billing for the cross-company sweep (see ``tests/isolation.py``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from linli.auth.actor import Actor
from linli.billing import service
from linli.billing.models import FeeKind, TenderMethod
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from tests.billing.factories import cashier
from tests.isolation import IsolationContext, id_maker, sample_body


async def _billed(ctx: IsolationContext) -> dict[str, uuid.UUID]:
    """One fee item, an issued run and a paid receipt of company A, made once."""
    if "billing" in ctx.made:
        made: dict[str, uuid.UUID] = ctx.made["billing"]
        return made
    from tests.core.isolation_ids import a_house

    house_id = await a_house(ctx)
    company = ctx.company
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        house = await estate.get_house(session, system, house_id=house_id)
        item = await service.create_fee_item(
            session,
            system,
            community_id=house.community_id,
            code="ISO",
            name="物业费",
            kind=FeeKind.AREA,
        )
        await service.add_price(
            session,
            system,
            fee_item_id=item.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal(100),
        )
        run, _ = await service.start_run(
            session, system, community_id=house.community_id, period=dt.date(2026, 1, 1)
        )
    await service.run_job(company.id, run.id)
    actor = cashier(company)
    async with unit_of_work(company.id) as session:
        shift = await service.open_shift(session, actor, community_id=house.community_id)
    async with unit_of_work(company.id) as session:
        receipt = await service.take_payment(
            session,
            actor,
            house_id=house.id,
            tenders=[service.Tender(TenderMethod.CASH, 1000)],
        )
    ctx.made["billing"] = {
        "fee_item_id": item.id,
        "run_id": run.id,
        "shift_id": shift.id,
        "receipt_id": receipt.id,
    }
    return ctx.made["billing"]  # type: ignore[no-any-return]


@id_maker("fee_item_id")
async def a_fee_item(ctx: IsolationContext) -> uuid.UUID:
    return (await _billed(ctx))["fee_item_id"]


@id_maker("run_id")
async def a_run(ctx: IsolationContext) -> uuid.UUID:
    return (await _billed(ctx))["run_id"]


@id_maker("receipt_id")
async def a_receipt(ctx: IsolationContext) -> uuid.UUID:
    return (await _billed(ctx))["receipt_id"]


@id_maker("shift_id")
async def a_shift(ctx: IsolationContext) -> uuid.UUID:
    return (await _billed(ctx))["shift_id"]


@id_maker("meter_import_id")
async def a_meter_import(ctx: IsolationContext) -> uuid.UUID:
    """A meter-reading import job of company A (the file need not be good)."""
    from linli.billing import meter_import

    await _billed(ctx)
    company = ctx.company
    async with unit_of_work(company.id) as session:
        house = await estate.get_house(
            session, Actor.system(company.id), house_id=uuid.UUID(str(ctx.made["house_id"]))
        )
        job = await meter_import.start_job(
            session,
            Actor.system(company.id),
            community_id=house.community_id,
            data="房号,表类型,抄表日期,本期读数\r\n1-1-101,水费,2026-03-31,1".encode(),
            file_name="iso.csv",
            mode=meter_import.ImportMode.SKIP_BAD_ROWS,
        )
        return job.id


sample_body("put", "/api/v1/billing/houses/{house_id}/prepaid/auto-deduct", {"enabled": True})

"""Billing runs: amounts, proration, variants, idempotency, killed runs, revert, immutability."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from linli.auth.actor import Actor
from linli.billing import reports, service
from linli.billing.models import Bill, BillingRun, FeeCycle, FeeKind, MeterFlag, TenderMethod
from linli.core.errors import Conflict, ValidationFailed
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.models import HouseType, ParkingUsage
from tests.billing.factories import (
    PERIOD,
    billed_company,
    cashier,
    issue_run,
    make_property_fee,
    open_shift,
)
from tests.estate.factories import make_houses
from tests.factories import make_company


async def _bills(company_id: uuid.UUID, **where: object) -> list[Bill]:
    async with unit_of_work(company_id) as session:
        statement = select(Bill).order_by(Bill.house_id, Bill.period_start)
        for name, value in where.items():
            statement = statement.where(getattr(Bill, name) == value)
        return list((await session.scalars(statement)).all())


async def test_run_bills_every_house_by_area_and_posts_the_ledger() -> None:
    company = await make_company()
    billed = await billed_company(company, houses=4)
    bills = await _bills(company.id)
    assert len(bills) == 4
    # 89.50 m² × 2.50 元/m² = 223.75 元
    assert {b.amount_cents for b in bills} == {22375}
    assert {b.due_on for b in bills} == {PERIOD + dt.timedelta(days=15)}
    async with unit_of_work(company.id) as session:
        run = await service.get_run(session, Actor.system(company.id), run_id=billed.run_id)
        assert (run.status, run.bill_count, run.total_cents) == ("issued", 4, 89500)
        assert run.done_chunks == run.total_chunks == 1
        balance = await reports.trial_balance(session, Actor.system(company.id))
    assert balance["receivable"] == (89500, 0)
    assert balance["revenue"] == (0, 89500)


async def test_starting_the_same_month_again_creates_nothing() -> None:
    company = await make_company()
    billed = await billed_company(company, houses=3)
    async with unit_of_work(company.id) as session:
        run, created = await service.start_run(
            session, Actor.system(company.id), community_id=company.communities[0], period=PERIOD
        )
    assert (run.id, created) == (billed.run_id, False)
    assert await service.run_job(company.id, billed.run_id) == "issued"
    assert len(await _bills(company.id)) == 3
    async with unit_of_work(company.id) as session:
        preview = await service.preview_run(
            session, Actor.system(company.id), community_id=company.communities[0], period=PERIOD
        )
    assert (preview.bill_count, preview.total_cents) == (0, 0)


async def test_preview_matches_what_the_run_issues() -> None:
    company = await make_company()
    await make_houses(company, buildings=2, units=2, floors=2, per_floor=2)
    await make_property_fee(company)
    async with unit_of_work(company.id) as session:
        preview = await service.preview_run(
            session, Actor.system(company.id), community_id=company.communities[0], period=PERIOD
        )
    assert (preview.bill_count, preview.total_cents) == (16, 16 * 22375)
    assert len(await _bills(company.id)) == 0  # a preview writes nothing
    await issue_run(company)
    bills = await _bills(company.id)
    assert (len(bills), sum(b.amount_cents for b in bills)) == (16, 16 * 22375)


async def test_a_run_killed_half_way_then_rerun_has_no_duplicates_and_no_gaps() -> None:
    company = await make_company()
    houses = await make_houses(company, buildings=4, units=1, floors=2, per_floor=2)
    await make_property_fee(company)
    async with unit_of_work(company.id) as session:
        run, _ = await service.start_run(
            session, Actor.system(company.id), community_id=company.communities[0], period=PERIOD
        )
    # Chunks of one building (4 houses): the "worker" dies after two of four chunks.
    assert await service.run_job(company.id, run.id, chunk_houses=4, stop_after_chunks=2) == (
        "stopped"
    )
    assert len(await _bills(company.id)) == 8
    async with unit_of_work(company.id) as session:
        half = await session.get(BillingRun, (company.id, run.id))
        assert half is not None and half.status == "running" and half.done_chunks == 2
    assert await service.run_job(company.id, run.id, chunk_houses=4) == "issued"
    bills = await _bills(company.id)
    assert sorted(b.house_id for b in bills) == sorted(houses)  # every house once
    async with unit_of_work(company.id) as session:
        balance = await reports.trial_balance(session, Actor.system(company.id))
    assert balance["receivable"] == (16 * 22375, 0)  # the ledger counted each bill once


async def test_a_price_change_mid_month_is_prorated_by_day() -> None:
    company = await make_company()
    await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    fee = await make_property_fee(company, price="200")
    async with unit_of_work(company.id) as session:
        await service.add_price(
            session,
            Actor.system(company.id),
            fee_item_id=fee,
            effective_from=dt.date(2026, 3, 11),
            unit_price=Decimal("310"),
        )
    await issue_run(company)
    (bill,) = await _bills(company.id)
    # 89.50 m² × (2.00 元 × 10 days + 3.10 元 × 21 days) / 31 days = 245.692 元 → 245.69
    expected = (Decimal("89.50") * (200 * 10 + 310 * 21) / 31).quantize(Decimal(1))
    assert bill.amount_cents == int(expected) == 24569


async def test_house_type_prices_fixed_and_parking_fees() -> None:
    company = await make_company()
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    fee = await make_property_fee(company, price="250")
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        await estate.update_house(
            session, system, house_id=houses[1], changes={"house_type": HouseType.SHOP}
        )
        await service.add_price(
            session,
            system,
            fee_item_id=fee,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal("500"),
            variant="shop",
        )
        garbage = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="LJF",
            name="垃圾费",
            kind=FeeKind.FIXED,
        )
        await service.add_price(
            session,
            system,
            fee_item_id=garbage.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal("1000"),
        )
        parking = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="CW",
            name="车位管理费",
            kind=FeeKind.PARKING,
            cycle=FeeCycle.YEARLY,
            bill_month=3,
        )
        await service.add_price(
            session,
            system,
            fee_item_id=parking.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal("120000"),
            variant="owned",
        )
        area = await estate.create_parking_area(
            session, system, community_id=company.communities[0], name="地下车库"
        )
        space = await estate.create_parking_space(
            session,
            system,
            area_id=area.id,
            space_no="B-001",
            usage=ParkingUsage.OWNED,
            house_id=houses[0],
        )
    async with unit_of_work(company.id) as session:
        assert "bills" not in await estate.usage_of(
            session, system, subject="parking_space", subject_id=space.id
        )
    await issue_run(company)
    bills = await _bills(company.id)
    by = {(b.house_id, b.fee_item_id): b.amount_cents for b in bills}
    assert by[(houses[0], fee)] == 22375
    assert by[(houses[1], fee)] == 44750  # shop price 5.00 元/m²
    assert by[(houses[0], garbage.id)] == by[(houses[1], garbage.id)] == 1000
    assert by[(houses[0], parking.id)] == 120000  # yearly, billed in its month
    assert (houses[1], parking.id) not in by
    # A billed space keeps its history: deleting it is refused (archive it instead).
    async with unit_of_work(company.id) as session:
        assert "bills" in await estate.usage_of(
            session, system, subject="parking_space", subject_id=space.id
        )


async def test_metered_fees_use_tiers_and_refuse_backward_readings() -> None:
    company = await make_company()
    (house,) = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        water = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="SF",
            name="水费",
            kind=FeeKind.METERED,
            unit="m³",
        )
        await service.add_price(
            session,
            system,
            fee_item_id=water.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal(0),
            tiers=[{"up_to": 10, "price": 300}, {"up_to": None, "price": 500}],
        )
        await service.record_reading(
            session,
            system,
            fee_item_id=water.id,
            house_id=house,
            read_on=dt.date(2026, 2, 28),
            reading=Decimal("100"),
        )
        await service.record_reading(
            session,
            system,
            fee_item_id=water.id,
            house_id=house,
            read_on=dt.date(2026, 3, 31),
            reading=Decimal("115.5"),
        )
    async with unit_of_work(company.id) as session:
        with pytest.raises(ValidationFailed) as refused:
            await service.record_reading(
                session,
                system,
                fee_item_id=water.id,
                house_id=house,
                read_on=dt.date(2026, 4, 30),
                reading=Decimal("90"),
            )
    assert refused.value.instance_code == "meter_reading_backwards"
    await issue_run(company)
    (bill,) = await _bills(company.id)
    # 15.5 m³: 10 × 3.00 + 5.5 × 5.00 = 57.50 元
    assert (bill.quantity, bill.amount_cents) == (Decimal("15.50"), 5750)
    async with unit_of_work(company.id) as session:
        replaced = await service.record_reading(
            session,
            system,
            fee_item_id=water.id,
            house_id=house,
            read_on=dt.date(2026, 4, 30),
            reading=Decimal("3"),
            meter_replaced=True,
        )
        assert (replaced.flag, replaced.usage) == (MeterFlag.METER_REPLACED.value, Decimal(3))


async def test_a_jump_in_usage_is_flagged_and_billed_only_once_confirmed() -> None:
    company = await make_company()
    (house,) = await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        power = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="DF",
            name="电费",
            kind=FeeKind.METERED,
            unit="kWh",
        )
        await service.add_price(
            session,
            system,
            fee_item_id=power.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal("60"),
        )
        for day, value in (
            (dt.date(2025, 12, 31), 1000),
            (dt.date(2026, 1, 31), 1100),
            (dt.date(2026, 2, 28), 1200),
        ):
            await service.record_reading(
                session,
                system,
                fee_item_id=power.id,
                house_id=house,
                read_on=day,
                reading=Decimal(value),
            )
        jump = await service.record_reading(
            session,
            system,
            fee_item_id=power.id,
            house_id=house,
            read_on=dt.date(2026, 3, 31),
            reading=Decimal(9200),
        )
        assert jump.flag == MeterFlag.JUMP.value
    await issue_run(company)
    assert await _bills(company.id) == []  # the jump waits
    async with unit_of_work(company.id) as session:
        await service.confirm_reading(session, system, reading_id=jump.id)
    await issue_run(company, period=dt.date(2026, 3, 15))  # same month: the live run is reused
    async with unit_of_work(company.id) as session:
        run = (await session.scalars(select(BillingRun))).one()
        await session.execute(update(BillingRun).values(status="failed"))  # let it run again
    assert await service.run_job(company.id, run.id) == "issued"
    (bill,) = await _bills(company.id)
    assert bill.amount_cents == 8000 * 60


async def test_revert_takes_back_an_untouched_run_and_refuses_a_paid_one() -> None:
    company = await make_company()
    billed = await billed_company(company, houses=2)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        reverted = await service.revert_run(session, system, run_id=billed.run_id)
        assert reverted.status == "reverted"
    assert await _bills(company.id) == []
    async with unit_of_work(company.id) as session:
        balance = await reports.trial_balance(session, system)
    assert balance["receivable"] == (44750, 44750)
    # A new run of the month is allowed again, and paying one bill locks it in.
    run_id = await issue_run(company)
    actor = cashier(company)
    await open_shift(company, actor)
    async with unit_of_work(company.id) as session:
        await service.take_payment(
            session,
            actor,
            house_id=billed.houses[0],
            tenders=[service.Tender(TenderMethod.CASH, 22375)],
        )
    async with unit_of_work(company.id) as session:
        with pytest.raises(Conflict) as refused:
            await service.revert_run(session, system, run_id=run_id)
    assert refused.value.instance_code == "billing_run_paid"
    assert len(await _bills(company.id)) == 2


async def test_issued_bills_are_immutable_and_the_journal_must_balance(owner_dsn: str) -> None:
    company = await make_company()
    await billed_company(company, houses=1)
    with pytest.raises(DBAPIError, match="cannot change"):
        async with unit_of_work(company.id) as session:
            await session.execute(update(Bill).values(amount_cents=1))
    with pytest.raises(DBAPIError, match="does not balance"):
        async with unit_of_work(company.id) as session:
            entry = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO journal_entries (tenant_id, id, community_id, kind, memo)"
                    " VALUES (:t, :e, :c, 'manual', '')"
                ),
                {"t": company.id, "e": entry, "c": company.communities[0]},
            )
            await session.execute(
                text(
                    "INSERT INTO journal_lines (tenant_id, id, entry_id, community_id, account,"
                    " debit_cents, credit_cents) VALUES (:t, :i, :e, :c, 'cash', 100, 0)"
                ),
                {"t": company.id, "i": uuid.uuid4(), "e": entry, "c": company.communities[0]},
            )
    with pytest.raises(DBAPIError, match="append-only"):
        async with unit_of_work(company.id) as session:
            await session.execute(text("DELETE FROM journal_lines"))
    async with unit_of_work(company.id) as session:
        count = await session.scalar(select(func.count()).select_from(Bill))
    assert count == 1


async def test_demo_seed_creates_fee_items_and_one_issued_month_idempotently() -> None:
    from linli.billing.seed import seed_demo

    company = await make_company(communities=2)
    await make_houses(company, buildings=1, units=1, floors=1, per_floor=3)
    issued = await seed_demo(company.id, period=PERIOD)
    assert issued == 3 * 2  # 物业费 + 垃圾清运费 for three houses of the first community
    assert await seed_demo(company.id, period=PERIOD) == 0
    async with unit_of_work(company.id) as session:
        items = await service.list_fee_items(session, Actor.system(company.id))
    assert len(items) == 2 * 5


async def test_the_worker_runs_the_queued_job_with_progress() -> None:
    import linli.billing.tasks  # noqa: F401 - as linli.jobs.TASK_MODULES does in a worker
    from linli.worker import run_worker

    company = await make_company(communities=1)
    await make_houses(company, buildings=3, units=1, floors=1, per_floor=2)
    await make_property_fee(company)
    async with unit_of_work(company.id) as session:
        run, created = await service.start_run(
            session, Actor.system(company.id), community_id=company.communities[0], period=PERIOD
        )
        assert created and run.status == "queued"
    await run_worker(queues=["billing"], wait=False, install_signal_handlers=False, concurrency=1)
    async with unit_of_work(company.id) as session:
        done = await service.get_run(session, Actor.system(company.id), run_id=run.id)
        assert (done.status, done.bill_count, done.done_chunks) == ("issued", 6, done.total_chunks)

"""Billing rules (物业收费): fee items and prices, meter readings, billing runs, the cashier
counter, prepaid balances, late fees, discounts, adjustments, shifts and reports.

Every money movement posts one balanced journal entry (:mod:`linli.billing.ledger`)
in the same transaction. Amounts are integer cents throughout.

Concurrency at the counter: a payment locks, in this order, the house's prepaid
account row (so payments of one house queue), the bills it settles, and last
the community's receipt counter (held only from numbering to commit). A second
cashier paying a bill the first has just settled waits for the first to commit,
then gets ``bill_already_settled``: one wins, the other is told, totals stay right.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, TextClause, and_, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from linli.auth.actor import Actor, PrincipalKind
from linli.billing import events, ledger, runs
from linli.billing.ledger import credit, debit
from linli.billing.models import (
    Account,
    Adjustment,
    AdjustmentKind,
    AdjustmentStatus,
    Allocation,
    Bill,
    BillingRun,
    CashierShift,
    DiscountRule,
    FeeCycle,
    FeeItem,
    FeeKind,
    FeePrice,
    MeterFlag,
    MeterReading,
    PrepaidAccount,
    Receipt,
    ReceiptStatus,
    ReceiptTender,
    RunStatus,
    ShiftStatus,
    TenderMethod,
)
from linli.billing.money import MAX_CENTS, round_cents
from linli.billing.settings import get_billing_settings
from linli.core import audit, outbox
from linli.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.estate import service as estate
from linli.estate.models import HouseType, ParkingUsage
from linli.jobs import defer_in_transaction
from linli.residents import service as residents

RUN_TASK = "linli.billing.run_billing"
CHUNK_HOUSES = 50_000
TZ = ZoneInfo("Asia/Shanghai")
MAX_RECEIPT_BILLS = 500


def today() -> dt.date:
    return dt.datetime.now(TZ).date()


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _invalid(field_name: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors=[FieldError(field_name, message, code)])


def _check_cents(field_name: str, cents: int, *, positive: bool = True) -> None:
    if cents < 0 or (positive and cents == 0):
        raise _invalid(field_name, "The amount must be more than zero.", "invalid_amount")
    if cents > MAX_CENTS:
        raise _invalid(field_name, "The amount is too large.", "amount_too_large")


# --- fee items and prices ----------------------------------------------------------------


def readable_fee_items(actor: Actor) -> Select[FeeItem]:
    return select(FeeItem).where(estate.community_scope(actor, FeeItem.community_id))


async def create_fee_item(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    code: str,
    name: str,
    kind: FeeKind,
    cycle: FeeCycle = FeeCycle.MONTHLY,
    bill_month: int = 1,
    unit: str = "",
    due_days: int = 30,
    late_fee_grace_days: int = 0,
    late_fee_daily_bp: int = 0,
    late_fee_cap_pct: int = 0,
) -> FeeItem:
    await estate.get_community(session, actor, community_id=community_id)
    if kind is FeeKind.ONE_OFF:
        cycle = FeeCycle.ONCE
    elif cycle is FeeCycle.ONCE:
        raise _invalid("cycle", "Only one-off fees are charged once.", "invalid_cycle")
    item = FeeItem(
        tenant_id=_tenant(actor),
        community_id=community_id,
        code=code,
        name=name,
        kind=kind.value,
        cycle=cycle.value,
        bill_month=bill_month,
        unit=unit,
        due_days=due_days,
        late_fee_grace_days=late_fee_grace_days,
        late_fee_daily_bp=late_fee_daily_bp,
        late_fee_cap_pct=late_fee_cap_pct,
    )
    session.add(item)
    await flush_or_conflict(
        session,
        Conflict("This community already has a fee item with this code.", code="fee_item_exists"),
    )
    await audit.record(
        session,
        actor,
        "fee_item.create",
        target_type="fee_item",
        target_id=item.id,
        detail={"code": code, "kind": kind.value},
    )
    return item


async def get_fee_item(session: AsyncSession, actor: Actor, *, fee_item_id: uuid.UUID) -> FeeItem:
    item = await session.scalar(readable_fee_items(actor).where(FeeItem.id == fee_item_id))
    if item is None:
        raise NotFound("Fee item not found.", code="fee_item_not_found")
    return item


async def list_fee_items(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None = None
) -> list[FeeItem]:
    statement = readable_fee_items(actor).order_by(FeeItem.community_id, FeeItem.code)
    if community_id is not None:
        statement = statement.where(FeeItem.community_id == community_id)
    return list((await session.scalars(statement)).all())


def _check_variant(item: FeeItem, variant: str | None) -> None:
    if variant is None:
        return
    allowed: set[str] = set()
    if item.kind in (FeeKind.AREA.value, FeeKind.FIXED.value):
        allowed = {t.value for t in HouseType}
    elif item.kind == FeeKind.PARKING.value:
        allowed = {u.value for u in ParkingUsage}
    if variant not in allowed:
        raise _invalid("variant", "This fee item has no such price variant.", "invalid_variant")


def _check_tiers(tiers: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if tiers is None:
        return None
    if not tiers:
        raise _invalid("tiers", "Give at least one tier.", "invalid_tiers")
    clean: list[dict[str, Any]] = []
    last = Decimal(0)
    for index, tier in enumerate(tiers):
        up_to, price = tier.get("up_to"), tier.get("price")
        if price is None or Decimal(str(price)) < 0:
            raise _invalid(f"tiers[{index}].price", "A tier needs a price.", "invalid_tiers")
        if up_to is None and index != len(tiers) - 1:
            raise _invalid(f"tiers[{index}].up_to", "Only the last tier is open.", "invalid_tiers")
        if up_to is not None:
            if Decimal(str(up_to)) <= last:
                raise _invalid(f"tiers[{index}].up_to", "Tiers must rise.", "invalid_tiers")
            last = Decimal(str(up_to))
        clean.append({"up_to": None if up_to is None else str(up_to), "price": str(price)})
    return clean


async def add_price(
    session: AsyncSession,
    actor: Actor,
    *,
    fee_item_id: uuid.UUID,
    effective_from: dt.date,
    unit_price: Decimal,
    variant: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
) -> FeePrice:
    """A new price version; from ``effective_from`` on it replaces the previous one."""
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    _check_variant(item, variant)
    if unit_price < 0 or unit_price > Decimal(10**9):
        raise _invalid("unit_price", "The price is out of range.", "invalid_price")
    if tiers is not None and item.kind != FeeKind.METERED.value:
        raise _invalid("tiers", "Only metered fees have tiers.", "invalid_tiers")
    price = FeePrice(
        tenant_id=item.tenant_id,
        fee_item_id=item.id,
        variant=variant,
        effective_from=effective_from,
        unit_price=unit_price,
        tiers=_check_tiers(tiers),
        created_by=actor.id,
    )
    session.add(price)
    await flush_or_conflict(
        session, Conflict("A price for this date already exists.", code="price_exists")
    )
    await audit.record(
        session,
        actor,
        "fee_price.create",
        target_type="fee_item",
        target_id=item.id,
        detail={"effective_from": effective_from.isoformat(), "unit_price": str(unit_price)},
    )
    return price


async def list_prices(
    session: AsyncSession, actor: Actor, *, fee_item_id: uuid.UUID
) -> list[FeePrice]:
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    return list(
        (
            await session.scalars(
                select(FeePrice)
                .where(FeePrice.fee_item_id == item.id)
                .order_by(FeePrice.effective_from, FeePrice.variant)
            )
        ).all()
    )


async def add_discount_rule(
    session: AsyncSession,
    actor: Actor,
    *,
    fee_item_id: uuid.UUID,
    name: str,
    min_months: int,
    free_months: int,
) -> DiscountRule:
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    if item.cycle != FeeCycle.MONTHLY.value:
        raise _invalid("fee_item_id", "Discounts apply to monthly fees.", "invalid_discount")
    if min_months < 2 or free_months < 1 or free_months >= min_months:
        raise _invalid(
            "free_months", "Free months must be fewer than paid months.", "invalid_discount"
        )
    rule = DiscountRule(
        tenant_id=item.tenant_id,
        fee_item_id=item.id,
        name=name,
        min_months=min_months,
        free_months=free_months,
    )
    session.add(rule)
    await session.flush()
    await audit.record(
        session,
        actor,
        "discount_rule.create",
        target_type="fee_item",
        target_id=item.id,
        detail={"min_months": min_months, "free_months": free_months},
    )
    return rule


# --- meter readings ------------------------------------------------------------------------


async def record_reading(
    session: AsyncSession,
    actor: Actor,
    *,
    fee_item_id: uuid.UUID,
    house_id: uuid.UUID,
    read_on: dt.date,
    reading: Decimal,
    meter_replaced: bool = False,
) -> MeterReading:
    """Enter a reading (抄表). Lower than the last one is refused unless the meter was
    replaced; a usage far above the usual is kept but flagged and not billed until confirmed."""
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    if item.kind != FeeKind.METERED.value:
        raise _invalid("fee_item_id", "This fee item is not metered.", "not_metered")
    house = await estate.get_house(session, actor, house_id=house_id)
    if item.community_id != house.community_id:
        raise _invalid("house_id", "The house is in another community.", "wrong_community")
    if reading < 0 or reading > Decimal("999999999999"):
        raise _invalid("reading", "The reading is out of range.", "invalid_reading")
    earlier = (
        await session.scalars(
            select(MeterReading)
            .where(
                MeterReading.house_id == house.id,
                MeterReading.fee_item_id == item.id,
                MeterReading.read_on < read_on,
            )
            .order_by(MeterReading.read_on.desc())
            .limit(4)
        )
    ).all()
    previous = earlier[0].reading if earlier else None
    flag = MeterFlag.OK
    if meter_replaced:
        usage, flag = reading, MeterFlag.METER_REPLACED
    elif previous is None:
        usage = Decimal(0)
    elif reading < previous:
        raise ValidationFailed(
            "The reading {reading} is lower than the last one ({previous}).",
            code="meter_reading_backwards",
            errors=[
                FieldError("reading", "lower than the last reading", "meter_reading_backwards")
            ],
            reading=str(reading),
            previous=str(previous),
        )
    else:
        usage = reading - previous
        past = [r.usage for r in earlier if r.usage > 0]
        factor = get_billing_settings().meter_jump_factor  # LINLI_BILLING_METER_JUMP_FACTOR
        if past and usage > factor * (sum(past, Decimal(0)) / len(past)):
            flag = MeterFlag.JUMP
    row = MeterReading(
        tenant_id=house.tenant_id,
        community_id=house.community_id,
        house_id=house.id,
        fee_item_id=item.id,
        read_on=read_on,
        reading=reading,
        previous_reading=previous,
        usage=usage,
        flag=flag.value,
        entered_by=actor.id,
    )
    session.add(row)
    await flush_or_conflict(
        session, Conflict("This meter already has a reading on that day.", code="reading_exists")
    )
    await audit.record(
        session,
        actor,
        "meter_reading.create",
        target_type="house",
        target_id=house.id,
        detail={"fee_item": str(item.id), "flag": flag.value},
    )
    return row


@dataclass
class ReadingOutcome:
    index: int
    reading: MeterReading | None = None
    code: str = ""
    message: str = ""


async def record_readings(
    session: AsyncSession, actor: Actor, *, rows: Sequence[dict[str, Any]]
) -> list[ReadingOutcome]:
    """Import a batch of readings (抄表导入): each row alone in a savepoint, so one bad
    row (lower than last time, unknown house) is reported by index and the rest are kept."""
    if len(rows) > 5000:
        raise _invalid("rows", "At most 5000 readings at once.", "too_many_rows")
    outcomes = []
    for index, row in enumerate(rows):
        try:
            async with session.begin_nested():
                reading = await record_reading(session, actor, **row)
            outcomes.append(ReadingOutcome(index, reading))
        except (ValidationFailed, Conflict, NotFound) as error:
            outcomes.append(ReadingOutcome(index, None, error.instance_code, error.detail()))
    return outcomes


async def confirm_reading(
    session: AsyncSession, actor: Actor, *, reading_id: uuid.UUID
) -> MeterReading:
    row = await session.scalar(
        select(MeterReading).where(
            MeterReading.id == reading_id,
            estate.community_scope(actor, MeterReading.community_id),
        )
    )
    if row is None:
        raise NotFound("Reading not found.", code="reading_not_found")
    if row.flag == MeterFlag.JUMP.value:
        row.flag = MeterFlag.CONFIRMED.value
        await session.flush()
        await audit.record(
            session, actor, "meter_reading.confirm", target_type="meter_reading", target_id=row.id
        )
    return row


async def list_readings(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID
) -> list[MeterReading]:
    house = await estate.get_house(session, actor, house_id=house_id)
    return list(
        (
            await session.scalars(
                select(MeterReading)
                .where(MeterReading.house_id == house.id)
                .order_by(MeterReading.fee_item_id, MeterReading.read_on)
            )
        ).all()
    )


# --- billing runs -------------------------------------------------------------------------


@dataclass
class RunPreview:
    community_id: uuid.UUID
    period_start: dt.date
    bill_count: int = 0
    total_cents: int = 0
    by_item: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)


def _month(period: dt.date) -> dt.date:
    return period.replace(day=1)


async def _run_items(
    session: AsyncSession, community_id: uuid.UUID, fee_item_ids: Sequence[uuid.UUID] | None
) -> list[FeeItem]:
    statement = select(FeeItem).where(
        FeeItem.community_id == community_id,
        FeeItem.active.is_(True),
        FeeItem.kind != FeeKind.ONE_OFF.value,
    )
    if fee_item_ids:
        statement = statement.where(FeeItem.id.in_(list(fee_item_ids)))
    return list((await session.scalars(statement.order_by(FeeItem.code))).all())


async def preview_run(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    period: dt.date,
    fee_item_ids: Sequence[uuid.UUID] | None = None,
) -> RunPreview:
    """Counts and totals of the bills a run would create now (existing ones excluded)."""
    await estate.get_community(session, actor, community_id=community_id)
    start = _month(period)
    items = await _run_items(session, community_id, fee_item_ids)
    preview = RunPreview(community_id, start)
    chunks = await runs.building_chunks(session, community_id=community_id, max_houses=CHUNK_HOUSES)
    for group in runs.item_periods(items, start):
        for buildings in chunks:
            for item_id, count, cents in await runs.preview_chunk(
                session, group, community_id=community_id, buildings=buildings
            ):
                before = preview.by_item.get(item_id, (0, 0))
                preview.by_item[item_id] = (before[0] + count, before[1] + cents)
                preview.bill_count += count
                preview.total_cents += cents
    return preview


def readable_runs(actor: Actor) -> Select[BillingRun]:
    return select(BillingRun).where(estate.community_scope(actor, BillingRun.community_id))


async def get_run(session: AsyncSession, actor: Actor, *, run_id: uuid.UUID) -> BillingRun:
    run = await session.scalar(readable_runs(actor).where(BillingRun.id == run_id))
    if run is None:
        raise NotFound("Billing run not found.", code="billing_run_not_found")
    return run


async def list_runs(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None, page: PageParams
) -> tuple[list[BillingRun], str | None]:
    statement = readable_runs(actor)
    if community_id is not None:
        statement = statement.where(BillingRun.community_id == community_id)
    rows = list((await session.scalars(paginate_statement(statement, BillingRun.id, page))).all())
    return make_page(rows, page)


async def start_run(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    period: dt.date,
    fee_item_ids: Sequence[uuid.UUID] | None = None,
) -> tuple[BillingRun, bool]:
    """Queue the run of a community and month; the live run of that month if there is one.

    Returns ``(run, created)``.
    """
    await estate.get_community(session, actor, community_id=community_id)
    start = _month(period)
    existing = await session.scalar(
        select(BillingRun).where(
            BillingRun.community_id == community_id,
            BillingRun.period_start == start,
            BillingRun.status != RunStatus.REVERTED.value,
        )
    )
    if existing is not None:
        return existing, False
    items = await _run_items(session, community_id, fee_item_ids)
    if not items:
        raise _invalid("fee_item_ids", "The community has no fee items to bill.", "no_fee_items")
    run = BillingRun(
        tenant_id=_tenant(actor),
        community_id=community_id,
        period_start=start,
        period_end=runs.month_end(start),
        fee_item_ids=[item.id for item in items],
        created_by=actor.id,
    )
    session.add(run)
    await flush_or_conflict(
        session, Conflict("A run of this month is already under way.", code="billing_run_exists")
    )
    await audit.record(
        session,
        actor,
        "billing_run.start",
        target_type="billing_run",
        target_id=run.id,
        detail={"period": start.isoformat(), "items": len(items)},
    )
    await defer_in_transaction(
        session,
        RUN_TASK,
        queue="billing",
        lock=f"billing-run:{run.id}",
        tenant_id=str(run.tenant_id),
        run_id=str(run.id),
    )
    return run, True


async def run_job(
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    chunk_houses: int = CHUNK_HOUSES,
    stop_after_chunks: int | None = None,
) -> str:
    """Issue a run chunk by chunk, one transaction each, with progress on the run row.

    A worker killed half-way leaves whole chunks committed (bills and their ledger
    entry together); the retry inserts the rest and skips what exists (natural key),
    so the run ends with no duplicates and no gaps. ``stop_after_chunks`` simulates
    such a death in tests.
    """
    from linli.db.engine import unit_of_work

    async with unit_of_work(tenant_id) as session:
        run = await session.scalar(
            select(BillingRun).where(BillingRun.id == run_id).with_for_update(skip_locked=True)
        )
        if run is None:
            return "missing-or-busy"
        if run.status in (RunStatus.ISSUED.value, RunStatus.REVERTED.value):
            return run.status
        run.status = RunStatus.RUNNING.value
        run.attempts += 1
        run.started_at = run.started_at or dt.datetime.now(dt.UTC)
        items = await _run_items(session, run.community_id, run.fee_item_ids)
        groups = runs.item_periods(items, run.period_start)
        chunks = await runs.building_chunks(
            session, community_id=run.community_id, max_houses=chunk_houses
        )
        run.total_chunks = len(chunks) * len(groups)
        run.done_chunks = 0
        community_id, created_by = run.community_id, run.created_by
    done = 0
    for group in groups:
        for buildings in chunks:
            if stop_after_chunks is not None and done >= stop_after_chunks:
                return "stopped"
            async with unit_of_work(tenant_id) as session:
                issued = await runs.issue_chunk(
                    session, group, community_id=community_id, run_id=run_id, buildings=buildings
                )
                await ledger.post(
                    session,
                    tenant_id=tenant_id,
                    community_id=community_id,
                    kind="billing_run",
                    source_id=run_id,
                    actor_id=created_by,
                    lines=[
                        debit(Account.RECEIVABLE, sum(cents for _, _, cents in issued)),
                        *(
                            credit(Account.REVENUE, cents, fee_item_id=item)
                            for item, _, cents in issued
                        ),
                    ],
                )
                done += 1
                await session.execute(
                    update(BillingRun).where(BillingRun.id == run_id).values(done_chunks=done)
                )
    async with unit_of_work(tenant_id) as session:
        count, total = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Bill.amount_cents), 0)).where(
                    Bill.run_id == run_id
                )
            )
        ).one()
        await session.execute(
            update(BillingRun)
            .where(BillingRun.id == run_id)
            .values(
                status=RunStatus.ISSUED.value,
                bill_count=count,
                total_cents=total,
                finished_at=func.now(),
                failure=None,
            )
        )
        system = Actor.system(tenant_id)
        await audit.record(
            session,
            system,
            "billing_run.issue",
            target_type="billing_run",
            target_id=run_id,
            detail={"bills": int(count), "total_cents": int(total)},
        )
        await outbox.emit(
            session,
            system,
            events.RUN_ISSUED,
            {
                "run_id": str(run_id),
                "community_id": str(community_id),
                "bills": int(count),
                "total_cents": int(total),
            },
        )
        await _auto_deduct(session, system, community_id=community_id, run_id=run_id)
    return RunStatus.ISSUED.value


async def revert_run(session: AsyncSession, actor: Actor, *, run_id: uuid.UUID) -> BillingRun:
    """Take back a whole run whose bills are untouched: nothing paid, credited or adjusted."""
    run = await get_run(session, actor, run_id=run_id)
    locked = await session.scalar(
        select(BillingRun).where(BillingRun.id == run.id).with_for_update()
    )
    assert locked is not None
    if locked.status == RunStatus.REVERTED.value:
        return locked
    if locked.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
        raise Conflict("The run is still being issued.", code="billing_run_busy")
    touched = await session.scalar(
        select(exists().where(Bill.run_id == run.id, Bill.settled_cents > 0))
    )
    if touched:
        raise Conflict(
            "Some bills of this run are paid; it cannot be reverted.", code="billing_run_paid"
        )
    try:
        async with session.begin_nested():
            # Deleting takes the rows' locks: a payment that slipped in between either
            # committed before (seen here) or now waits and finds its bill gone.
            deleted = (
                await session.execute(
                    text("DELETE FROM bills WHERE run_id = :run RETURNING settled_cents"),
                    {"run": run.id},
                )
            ).all()
            if any(settled for (settled,) in deleted):
                raise Conflict(
                    "Some bills of this run are paid; it cannot be reverted.",
                    code="billing_run_paid",
                )
    except IntegrityError as exc:
        raise Conflict(
            "Some bills of this run have payments or adjustments; it cannot be reverted.",
            code="billing_run_paid",
        ) from exc
    await ledger.reverse(
        session,
        tenant_id=run.tenant_id,
        source_id=run.id,
        kind="billing_run",
        reversal_kind="billing_run_revert",
        actor_id=actor.id,
    )
    locked.status = RunStatus.REVERTED.value
    locked.reverted_at = dt.datetime.now(dt.UTC)
    locked.reverted_by = actor.id
    await session.flush()
    await audit.record(
        session,
        actor,
        "billing_run.revert",
        target_type="billing_run",
        target_id=run.id,
        detail={"bills": len(deleted)},
    )
    await outbox.emit(
        session,
        actor,
        events.RUN_REVERTED,
        {"run_id": str(run.id), "community_id": str(run.community_id)},
    )
    return locked


async def charge_one_off(
    session: AsyncSession,
    actor: Actor,
    *,
    fee_item_id: uuid.UUID,
    house_id: uuid.UUID,
    amount_cents: int,
    charged_on: dt.date | None = None,
) -> Bill:
    """A one-off charge (装修押金, 门禁卡) on a house."""
    _check_cents("amount_cents", amount_cents)
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    if item.kind != FeeKind.ONE_OFF.value:
        raise _invalid("fee_item_id", "Only one-off fees are charged by hand.", "not_one_off")
    house = await estate.get_house(session, actor, house_id=house_id)
    if house.community_id != item.community_id:
        raise _invalid("house_id", "The house is in another community.", "wrong_community")
    day = charged_on or today()
    bill = Bill(
        tenant_id=house.tenant_id,
        community_id=house.community_id,
        building_id=house.building_id,
        house_id=house.id,
        fee_item_id=item.id,
        subject_id=house.id,
        period_start=day,
        period_end=day + dt.timedelta(days=1),
        due_on=day + dt.timedelta(days=item.due_days),
        quantity=Decimal(1),
        amount_cents=amount_cents,
    )
    session.add(bill)
    await flush_or_conflict(
        session,
        Conflict("This fee was already charged to this house that day.", code="bill_exists"),
    )
    await ledger.post(
        session,
        tenant_id=bill.tenant_id,
        community_id=bill.community_id,
        kind="charge",
        source_id=bill.id,
        actor_id=actor.id,
        lines=[
            debit(Account.RECEIVABLE, amount_cents, house_id=house.id),
            credit(Account.REVENUE, amount_cents, fee_item_id=item.id, house_id=house.id),
        ],
    )
    await audit.record(
        session,
        actor,
        "bill.charge",
        target_type="bill",
        target_id=bill.id,
        detail={"amount_cents": amount_cents},
    )
    return bill


async def issue_advance_bills(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID,
    fee_item_id: uuid.UUID,
    months: int,
    start: dt.date | None = None,
) -> list[Bill]:
    """Bills of the coming months of one house and item (预交), e.g. to pay 12 months at once.

    They carry the same natural key a run would, so later runs skip those months.
    """
    if not 1 <= months <= 36:
        raise _invalid("months", "Between 1 and 36 months.", "invalid_months")
    item = await get_fee_item(session, actor, fee_item_id=fee_item_id)
    if (
        item.kind not in (FeeKind.AREA.value, FeeKind.FIXED.value)
        or item.cycle != FeeCycle.MONTHLY.value
    ):
        raise _invalid(
            "fee_item_id", "Only monthly area or fixed fees are billed ahead.", "not_advance"
        )
    house = await estate.get_house(session, actor, house_id=house_id)
    month = _month(start or today())
    for _ in range(months):
        group = runs.ItemPeriod(FeeKind(item.kind), [item.id], month, runs.month_end(month))
        issued = await _issue_one_house(
            session,
            group,
            house_id=house.id,
            building_id=house.building_id,
            community_id=house.community_id,
        )
        total = sum(cents for _, _, cents in issued)
        await ledger.post(
            session,
            tenant_id=house.tenant_id,
            community_id=house.community_id,
            kind="charge",
            source_id=house.id,
            actor_id=actor.id,
            lines=[
                debit(Account.RECEIVABLE, total, house_id=house.id),
                credit(Account.REVENUE, total, fee_item_id=item.id, house_id=house.id),
            ],
        )
        month = runs.month_end(month)
    bills = (
        await session.scalars(
            select(Bill)
            .where(
                Bill.house_id == house.id,
                Bill.fee_item_id == item.id,
                Bill.period_start >= _month(start or today()),
                Bill.period_start < month,
            )
            .order_by(Bill.period_start)
        )
    ).all()
    await audit.record(
        session,
        actor,
        "bill.advance",
        target_type="house",
        target_id=house.id,
        detail={"fee_item": str(item.id), "months": months},
    )
    return list(bills)


async def _issue_one_house(
    session: AsyncSession,
    group: runs.ItemPeriod,
    *,
    house_id: uuid.UUID,
    building_id: uuid.UUID,
    community_id: uuid.UUID,
) -> list[tuple[uuid.UUID, int, int]]:
    statement = f"""
WITH ins AS (
  INSERT INTO bills ({runs.BILL_COLUMNS})
  SELECT * FROM ({runs.SELECTS[group.kind]}) s WHERE s.house_id = :house
  ON CONFLICT (tenant_id, fee_item_id, subject_id, period_start) DO NOTHING
  RETURNING fee_item_id, amount_cents
)
SELECT fee_item_id, count(*), coalesce(sum(amount_cents), 0) FROM ins GROUP BY fee_item_id
"""  # noqa: S608
    rows = await session.execute(
        text(statement),
        {
            "items": group.item_ids,
            "ps": group.start,
            "pe": group.end,
            "days": (group.end - group.start).days,
            "community": community_id,
            "run": None,
            "buildings": [building_id],
            "house": house_id,
        },
    )
    return [(item, int(count), int(cents)) for item, count, cents in rows.all()]


@estate.house_usage_check("billing")
async def _house_has_bills(
    session: AsyncSession, tenant_id: uuid.UUID, house_id: uuid.UUID
) -> str | None:
    found = await session.scalar(select(exists().where(Bill.house_id == house_id)))
    return "bills" if found else None


@estate.usage_check("parking_space", "billing")
async def _space_has_bills(
    session: AsyncSession, tenant_id: uuid.UUID, space_id: uuid.UUID
) -> str | None:
    """A parking space that was billed (车位费) keeps its history: archive it instead."""
    parking_items = select(FeeItem.id).where(
        FeeItem.tenant_id == tenant_id, FeeItem.kind == FeeKind.PARKING.value
    )
    found = await session.scalar(
        select(
            exists().where(
                Bill.tenant_id == tenant_id,
                Bill.fee_item_id.in_(parking_items),  # the bills' unique key leads with the item
                Bill.subject_id == space_id,
            )
        )
    )
    return "bills" if found else None


# --- payment methods: the interface online payment plugs into --------------------------------


@dataclass(frozen=True)
class Tender:
    """One way of paying part of a receipt (现金 / 刷卡 / 转账 / 扫码)."""

    method: TenderMethod
    amount_cents: int
    reference: str = ""  # POS reference, transfer reference, provider's order number


class PaymentMethod(Protocol):
    """How a tender method behaves: where its money sits and whether it confirms later."""

    @property
    def method(self) -> TenderMethod: ...

    @property
    def account(self) -> Account:
        """Debited when the money is in."""

    @property
    def confirms_later(self) -> bool:
        """True: the receipt waits (pending, unnumbered) for :func:`confirm_online_payment`."""

    def check(self, tender: Tender, index: int) -> None:
        """Refuse a tender this method cannot take (raise ValidationFailed)."""


@dataclass(frozen=True)
class ChargeRequest:
    """What an online provider answers when asked to collect a pending receipt."""

    provider_reference: str
    qr_payload: str = ""  # what the counter shows as a QR code for the payer to scan


class OnlinePaymentProvider(Protocol):
    """Implemented by the online-payment issue (WeChat Pay / Alipay). Not here.

    ``create_charge`` is called in the counter's transaction when a scan-to-pay
    receipt is created; the provider's notification later calls
    :func:`confirm_online_payment` with the same receipt id.
    """

    name: str

    async def create_charge(
        self, *, receipt_id: uuid.UUID, amount_cents: int, description: str
    ) -> ChargeRequest: ...


@dataclass(frozen=True)
class _CounterMethod:
    method: TenderMethod
    account: Account
    confirms_later: bool = False
    needs_reference: bool = False

    def check(self, tender: Tender, index: int) -> None:
        if self.needs_reference and not tender.reference.strip():
            raise _invalid(
                f"tenders[{index}].reference",
                "Card and transfer payments need their reference number.",
                "reference_required",
            )


PAYMENT_METHODS: dict[TenderMethod, PaymentMethod] = {
    TenderMethod.CASH: _CounterMethod(TenderMethod.CASH, Account.CASH),
    TenderMethod.CARD: _CounterMethod(
        TenderMethod.CARD, Account.CARD_CLEARING, needs_reference=True
    ),
    TenderMethod.TRANSFER: _CounterMethod(
        TenderMethod.TRANSFER, Account.BANK, needs_reference=True
    ),
    TenderMethod.SCAN: _CounterMethod(
        TenderMethod.SCAN, Account.SCAN_CLEARING, confirms_later=True
    ),
}
_providers: dict[str, OnlinePaymentProvider] = {}


def register_payment_method(method: PaymentMethod) -> None:
    PAYMENT_METHODS[method.method] = method


def register_online_provider(provider: OnlinePaymentProvider) -> None:
    _providers[provider.name] = provider


def online_provider() -> OnlinePaymentProvider | None:
    return next(iter(_providers.values()), None)


# --- the cashier counter --------------------------------------------------------------------


@dataclass
class HouseHit:
    house_id: uuid.UUID
    community_id: uuid.UUID
    label: str
    owners: list[str]


async def house_label(session: AsyncSession, actor: Actor, house_id: uuid.UUID) -> str:
    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    building = await estate.get_building(session, actor, building_id=house.building_id)
    unit = await estate.get_unit(session, actor, unit_id=house.unit_id) if house.unit_id else None
    return "-".join(
        p for p in (building.building_no, unit.unit_no if unit else None, house.house_no) if p
    )


async def find_houses(
    session: AsyncSession,
    actor: Actor,
    *,
    q: str,
    community_id: uuid.UUID | None = None,
    limit: int = 20,
) -> list[HouseHit]:
    """A house by number (3-2-1201), an owner's phone (exact, blind index) or name prefix."""
    query = q.strip()
    if not query:
        return []
    house_ids: list[uuid.UUID] = []
    ref = estate.parse_house_ref(query)
    digits = query.replace(" ", "").replace("-", "").removeprefix("+")
    if ref is not None and not (digits.isdigit() and len(digits) >= 11):
        house_ids = await estate.find_house_ids_by_ref(
            session, actor, ref=ref, community_id=community_id
        )
    else:
        search = (
            residents.ResidentSearch(phone=query, community_id=community_id)
            if digits.isdigit() and len(digits) >= 11
            else residents.ResidentSearch(name=query, community_id=community_id)
        )
        people, _ = await residents.search_residents(
            session, actor, search=search, page=PageParams(limit=limit)
        )
        for person in people:
            for link in await residents.houses_of_resident(session, actor, resident_id=person.id):
                if community_id is None or link.house.community_id == community_id:
                    house_ids.append(link.house.id)
    hits: list[HouseHit] = []
    for house_id in list(dict.fromkeys(house_ids))[:limit]:
        house = await estate.get_house(session, actor, house_id=house_id)
        owners = [
            person.name
            for link, person in await residents.house_members(session, actor, house_id=house_id)
            if link.relation.value in ("owner", "co_owner")
        ]
        hits.append(
            HouseHit(
                house_id, house.community_id, await house_label(session, actor, house_id), owners
            )
        )
    return hits


@dataclass
class OwedBill:
    bill: Bill
    fee_item_name: str
    outstanding: int
    late_fee: int


@dataclass
class HouseAccount:
    house_id: uuid.UUID
    community_id: uuid.UUID
    bills: list[OwedBill]
    prepaid_cents: int
    auto_deduct: bool

    @property
    def owed_cents(self) -> int:
        return sum(b.outstanding for b in self.bills)

    @property
    def late_fee_cents(self) -> int:
        return sum(b.late_fee for b in self.bills)


@dataclass(frozen=True)
class _LateFeeHistory:
    charged: int = 0
    last_on: dt.date | None = None


async def _late_fee_history(
    session: AsyncSession, bill_ids: list[uuid.UUID]
) -> dict[uuid.UUID, _LateFeeHistory]:
    if not bill_ids:
        return {}
    rows = await session.execute(
        select(Bill.late_fee_of, func.sum(Bill.amount_cents), func.max(Bill.period_start))
        .where(Bill.late_fee_of.in_(bill_ids))
        .group_by(Bill.late_fee_of)
    )
    return {of: _LateFeeHistory(int(total), last) for of, total, last in rows.all() if of}


def late_fee(
    bill: Bill, item: FeeItem, *, outstanding: int, as_of: dt.date, history: _LateFeeHistory
) -> int:
    """Late fee (滞纳金) owed on ``bill`` today: a daily rate on what is still owed, from the
    end of the grace period (or the last charge), capped at a share of the bill."""
    if bill.late_fee_of is not None or bill.late_fee_waived or not item.late_fee_daily_bp:
        return 0
    start = bill.due_on + dt.timedelta(days=item.late_fee_grace_days)
    if history.last_on is not None and history.last_on > start:
        start = history.last_on
    days = (as_of - start).days
    if days <= 0 or outstanding <= 0:
        return 0
    fee = round_cents(Decimal(outstanding) * item.late_fee_daily_bp * days / 10_000)
    if item.late_fee_cap_pct:
        fee = min(fee, bill.amount_cents * item.late_fee_cap_pct // 100 - history.charged)
    return max(fee, 0)


def _open_bills(house_id: uuid.UUID) -> Select[Bill]:
    return (
        select(Bill)
        .where(Bill.house_id == house_id, Bill.settled_cents < Bill.amount_cents)
        .order_by(Bill.due_on, Bill.period_start, Bill.id)
    )


async def _items_of(session: AsyncSession, bills: Sequence[Bill]) -> dict[uuid.UUID, FeeItem]:
    ids = {b.fee_item_id for b in bills}
    if not ids:
        return {}
    return {
        i.id: i for i in (await session.scalars(select(FeeItem).where(FeeItem.id.in_(ids)))).all()
    }


async def house_account(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, as_of: dt.date | None = None
) -> HouseAccount:
    """Everything a house owes (with late fees as of today) and its prepaid balance."""
    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    day = as_of or today()
    bills = list((await session.scalars(_open_bills(house.id).limit(MAX_RECEIPT_BILLS))).all())
    items = await _items_of(session, bills)
    history = await _late_fee_history(session, [b.id for b in bills])
    owed = [
        OwedBill(
            b,
            items[b.fee_item_id].name,
            b.amount_cents - b.settled_cents,
            late_fee(
                b,
                items[b.fee_item_id],
                outstanding=b.amount_cents - b.settled_cents,
                as_of=day,
                history=history.get(b.id, _LateFeeHistory()),
            ),
        )
        for b in bills
    ]
    prepaid = await session.scalar(
        select(PrepaidAccount).where(PrepaidAccount.house_id == house.id)
    )
    return HouseAccount(
        house.id,
        house.community_id,
        owed,
        prepaid.balance_cents if prepaid else 0,
        prepaid.auto_deduct if prepaid else False,
    )


async def _lock_prepaid(
    session: AsyncSession, tenant_id: uuid.UUID, community_id: uuid.UUID, house_id: uuid.UUID
) -> PrepaidAccount:
    """The house's prepaid account, created if missing and row-locked, in one statement
    (``ON CONFLICT DO UPDATE`` locks the existing row like ``SELECT ... FOR UPDATE``)."""
    account = await session.scalar(
        pg_insert(PrepaidAccount)
        .values(tenant_id=tenant_id, id=new_id(), community_id=community_id, house_id=house_id)
        .on_conflict_do_update(
            index_elements=["tenant_id", "house_id"],
            set_={"balance_cents": PrepaidAccount.balance_cents},
        )
        .returning(PrepaidAccount)
        .execution_options(populate_existing=True)
    )
    assert account is not None
    return account


async def _current_shift(session: AsyncSession, actor: Actor) -> CashierShift | None:
    return await session.scalar(
        select(CashierShift).where(
            CashierShift.cashier_id == actor.id, CashierShift.status == ShiftStatus.OPEN.value
        )
    )


def _check_tenders(tenders: Sequence[Tender], use_prepaid_cents: int) -> None:
    if len(tenders) > 10:
        raise _invalid("tenders", "At most 10 tenders.", "too_many_tenders")
    if not tenders and use_prepaid_cents <= 0:
        raise _invalid("tenders", "Give at least one way of paying.", "no_tenders")
    for index, tender in enumerate(tenders):
        _check_cents(f"tenders[{index}].amount_cents", tender.amount_cents)
        method = PAYMENT_METHODS.get(tender.method)
        if method is None or tender.method is TenderMethod.PREPAID:
            raise _invalid(f"tenders[{index}].method", "Unknown payment method.", "invalid_method")
        method.check(tender, index)
        if method.confirms_later and len(tenders) > 1:
            raise _invalid(
                f"tenders[{index}].method",
                "Scan-to-pay is confirmed later, so it cannot be mixed with other tenders.",
                "scan_not_alone",
            )
    if use_prepaid_cents < 0:
        raise _invalid("use_prepaid_cents", "The amount must not be negative.", "invalid_amount")
    if sum(t.amount_cents for t in tenders) + use_prepaid_cents > MAX_CENTS:
        raise _invalid("tenders", "The amount is too large.", "amount_too_large")


async def take_payment(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID,
    tenders: Sequence[Tender],
    bill_ids: Sequence[uuid.UUID] | None = None,
    use_prepaid_cents: int = 0,
    payer_name: str = "",
    as_of: dt.date | None = None,
) -> Receipt:
    """Take a payment at the counter (收费) and issue its receipt.

    ``bill_ids`` None settles the oldest bills first; a list settles those bills
    (and applies discount rules); an empty list is a deposit to prepaid. Whatever
    is paid beyond what is settled goes to the house's prepaid balance.
    """
    _check_tenders(tenders, use_prepaid_cents)
    if bill_ids is not None and len(bill_ids) > MAX_RECEIPT_BILLS:
        raise _invalid("bill_ids", "Too many bills for one receipt.", "too_many_bills")
    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    shift: CashierShift | None = None
    if actor.kind is PrincipalKind.STAFF:
        shift = await _current_shift(session, actor)
        if shift is None:
            raise Conflict("Open a cashier shift before taking payments.", code="shift_not_open")
    receipt = Receipt(
        tenant_id=house.tenant_id,
        id=new_id(),
        community_id=house.community_id,
        house_id=house.id,
        amount_cents=sum(t.amount_cents for t in tenders) + use_prepaid_cents,
        payer_name=payer_name[:100],
        shift_id=shift.id if shift else None,
        cashier_id=actor.id if actor.kind is PrincipalKind.STAFF else None,
        allocation_plan={
            "bill_ids": None if bill_ids is None else [str(b) for b in bill_ids],
            "use_prepaid_cents": use_prepaid_cents,
        },
    )
    if any(PAYMENT_METHODS[t.method].confirms_later for t in tenders):
        return await _pending_receipt(session, actor, receipt, tenders[0])
    return await _settle(
        session, actor, receipt, list(tenders), bill_ids, use_prepaid_cents, as_of or today()
    )


async def _pending_receipt(
    session: AsyncSession, actor: Actor, receipt: Receipt, tender: Tender
) -> Receipt:
    receipt.status = ReceiptStatus.PENDING.value
    session.add(receipt)
    await session.flush()
    provider = online_provider()
    reference = tender.reference
    if provider is not None:
        charge = await provider.create_charge(
            receipt_id=receipt.id, amount_cents=tender.amount_cents, description="物业费"
        )
        reference = charge.provider_reference
    session.add(
        ReceiptTender(
            tenant_id=receipt.tenant_id,
            receipt_id=receipt.id,
            method=tender.method.value,
            amount_cents=tender.amount_cents,
            reference=reference[:100],
            confirmed=False,
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "receipt.pending",
        target_type="receipt",
        target_id=receipt.id,
        detail={"amount_cents": receipt.amount_cents},
    )
    return receipt


async def confirm_online_payment(
    session: AsyncSession,
    actor: Actor,
    *,
    receipt_id: uuid.UUID,
    provider_reference: str,
    amount_cents: int,
) -> Receipt:
    """The provider says a scan-to-pay receipt is paid: settle it now, as planned.

    Idempotent: confirming a paid receipt again changes nothing.
    """
    receipt = await session.scalar(
        select(Receipt).where(Receipt.id == receipt_id).with_for_update()
    )
    if receipt is None:
        raise NotFound("Receipt not found.", code="receipt_not_found")
    if receipt.status != ReceiptStatus.PENDING.value:
        return receipt
    tender = await session.scalar(
        select(ReceiptTender).where(ReceiptTender.receipt_id == receipt.id)
    )
    assert tender is not None
    if amount_cents != tender.amount_cents:
        raise Conflict("The confirmed amount differs from the charge.", code="amount_mismatch")
    tender.confirmed = True
    tender.reference = provider_reference[:100]
    await session.execute(
        update(ReceiptTender)
        .where(ReceiptTender.id == tender.id)
        .values(confirmed=True, reference=provider_reference[:100])
    )
    plan = receipt.allocation_plan
    bill_ids = None if plan.get("bill_ids") is None else [uuid.UUID(b) for b in plan["bill_ids"]]
    return await _settle(
        session,
        actor,
        receipt,
        [Tender(TenderMethod(tender.method), tender.amount_cents, tender.reference)],
        bill_ids,
        int(plan.get("use_prepaid_cents", 0)),
        today(),
        existing=True,
    )


_LATE_FEE_BILL = aliased(Bill, name="late_fee_bill")  # built once: aliasing copies every column


async def _locked_bills(
    session: AsyncSession, house_id: uuid.UUID, bill_ids: Sequence[uuid.UUID] | None
) -> tuple[list[Bill], dict[uuid.UUID, FeeItem], dict[uuid.UUID, _LateFeeHistory]]:
    """The bills a payment settles, row-locked, with their fee items and late-fee history,
    in one query (the counter's hot path counts round trips)."""
    if bill_ids is not None and not bill_ids:
        return [], {}, {}
    late = _LATE_FEE_BILL
    charged = (
        select(func.coalesce(func.sum(late.amount_cents), 0))
        .where(late.late_fee_of == Bill.id)
        .scalar_subquery()
    )
    last_on = select(func.max(late.period_start)).where(late.late_fee_of == Bill.id)
    statement = (
        select(Bill, FeeItem, charged, last_on.scalar_subquery())
        .join(FeeItem, and_(FeeItem.tenant_id == Bill.tenant_id, FeeItem.id == Bill.fee_item_id))
        .where(Bill.house_id == house_id)
        .order_by(Bill.due_on, Bill.period_start, Bill.id)
        .with_for_update(of=Bill)
        .execution_options(populate_existing=True)
    )
    if bill_ids is None:
        statement = statement.where(Bill.settled_cents < Bill.amount_cents).limit(MAX_RECEIPT_BILLS)
    else:
        statement = statement.where(Bill.id.in_(set(bill_ids)))
    rows = (await session.execute(statement)).all()
    bills = [row[0] for row in rows]
    items = {row[1].id: row[1] for row in rows}
    history = {row[0].id: _LateFeeHistory(int(row[2]), row[3]) for row in rows if row[3]}
    if bill_ids is not None:
        if len(bills) != len(set(bill_ids)):
            raise NotFound("Some bills were not found for this house.", code="bill_not_found")
        settled = [b for b in bills if b.settled_cents >= b.amount_cents]
        if settled:
            raise Conflict(
                "A bill was settled meanwhile (another cashier?). Reload and try again.",
                code="bill_already_settled",
                errors=[FieldError("bill_ids", str(b.id), "bill_already_settled") for b in settled],
            )
    return bills, items, history


_PAID_NEW_RECEIPT = (
    " receipt AS (INSERT INTO receipts (tenant_id, id, community_id, house_id, receipt_no,"
    " status, amount_cents, allocated_cents, discount_cents, to_prepaid_cents, paid_at,"
    " payer_name, shift_id, cashier_id, voided_at, voided_by,"
    " void_reason, allocation_plan, created_at)"
    " SELECT :tenant, :receipt, :community, :house, number.last_no, :status, :amount_cents,"
    " :allocated_cents, :discount_cents, :to_prepaid_cents, :paid_at, :payer, :shift,"
    " :cashier, NULL, NULL, '', CAST(:plan AS jsonb), now() FROM number"
    " RETURNING receipt_no, created_at),"
)
_PAID_EXISTING_RECEIPT = (
    " receipt AS (UPDATE receipts SET receipt_no = number.last_no, status = :status,"
    " amount_cents = :amount_cents, allocated_cents = :allocated_cents,"
    " discount_cents = :discount_cents, to_prepaid_cents = :to_prepaid_cents,"
    " paid_at = :paid_at FROM number WHERE receipts.id = :receipt"
    " RETURNING receipts.receipt_no, receipts.created_at),"
)


def _pay_statement(receipt: str) -> TextClause:
    """The payment's one write statement (see :func:`_settle`); constant text only."""
    return text(
        "WITH number AS (INSERT INTO receipt_counters (tenant_id, id, community_id, last_no,"  # noqa: S608
        " created_at) VALUES (:tenant, :counter, :community, 1, now())"
        " ON CONFLICT (tenant_id, community_id)"
        " DO UPDATE SET last_no = receipt_counters.last_no + 1 RETURNING last_no),"
        + receipt
        + " late AS (INSERT INTO bills (tenant_id, id, community_id, building_id, house_id,"
        " fee_item_id, subject_id, late_fee_of, period_start, period_end, due_on, quantity,"
        " amount_cents, settled_cents, late_fee_waived, created_at)"
        " SELECT :tenant, x.id, :community, x.building, :house, x.item, x.of, x.of, :day,"
        " :day_after, :day, 1, x.amount, x.settled, false, now()"
        " FROM unnest(CAST(:l_ids AS uuid[]), CAST(:l_buildings AS uuid[]),"
        " CAST(:l_items AS uuid[]), CAST(:l_of AS uuid[]), CAST(:l_amounts AS bigint[]),"
        " CAST(:l_settled AS bigint[])) AS x(id, building, item, of, amount, settled)),"
        " tenders AS (INSERT INTO receipt_tenders (tenant_id, id, receipt_id, method,"
        " amount_cents, reference, confirmed, created_at)"
        " SELECT :tenant, x.id, :receipt, x.method, x.amount, x.reference, true, now()"
        " FROM unnest(CAST(:t_ids AS uuid[]), CAST(:t_methods AS varchar[]),"
        " CAST(:t_amounts AS bigint[]), CAST(:t_refs AS varchar[]))"
        " AS x(id, method, amount, reference)),"
        " allocated AS (INSERT INTO allocations (tenant_id, id, receipt_id, bill_id,"
        " amount_cents, discount, created_at)"
        " SELECT :tenant, x.id, :receipt, x.bill, x.amount, x.discount, now()"
        " FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_bills AS uuid[]),"
        " CAST(:a_amounts AS bigint[]), CAST(:a_discounts AS boolean[]))"
        " AS x(id, bill, amount, discount)),"
        " settled AS (UPDATE bills SET settled_cents = bills.settled_cents + d.delta"
        " FROM unnest(CAST(:b_ids AS uuid[]), CAST(:b_deltas AS bigint[])) AS d(id, delta)"
        " WHERE bills.id = d.id),"
        " prepaid AS (UPDATE prepaid_accounts SET balance_cents = balance_cents + :p_delta"
        " WHERE id = :prepaid AND CAST(:p_delta AS bigint) <> 0), "
        + ledger.ENTRIES_CTE
        + " SELECT receipt.receipt_no, receipt.created_at FROM receipt"
    )


_PAY_NEW = _pay_statement(_PAID_NEW_RECEIPT)
_PAY_EXISTING = _pay_statement(_PAID_EXISTING_RECEIPT)


async def _settle(
    session: AsyncSession,
    actor: Actor,
    receipt: Receipt,
    tenders: list[Tender],
    bill_ids: Sequence[uuid.UUID] | None,
    use_prepaid_cents: int,
    day: dt.date,
    *,
    existing: bool = False,
) -> Receipt:
    tenant_id, house_id = receipt.tenant_id, receipt.house_id
    prepaid = await _lock_prepaid(session, tenant_id, receipt.community_id, house_id)
    if use_prepaid_cents > prepaid.balance_cents:
        raise Conflict(
            "The prepaid balance is {balance} cents, less than asked.",
            code="insufficient_prepaid",
            balance=prepaid.balance_cents,
        )
    bills, items, history = await _locked_bills(session, house_id, bill_ids)

    # Late fees become bills of their own (charged now, settled first), written below with
    # everything else of the payment.
    late_bills: list[Bill] = []
    for bill in bills:
        fee = late_fee(
            bill,
            items[bill.fee_item_id],
            outstanding=bill.amount_cents - bill.settled_cents,
            as_of=day,
            history=history.get(bill.id, _LateFeeHistory()),
        )
        if fee > 0:
            late_bills.append(
                Bill(
                    tenant_id=tenant_id,
                    id=new_id(),
                    community_id=bill.community_id,
                    building_id=bill.building_id,
                    house_id=house_id,
                    fee_item_id=bill.fee_item_id,
                    subject_id=bill.id,
                    late_fee_of=bill.id,
                    period_start=day,
                    period_end=day + dt.timedelta(days=1),
                    due_on=day,
                    quantity=Decimal(1),
                    amount_cents=fee,
                    settled_cents=0,
                )
            )
    late_total = sum(b.amount_cents for b in late_bills)

    # Discount rules (预交12个月送1个月) apply to bills chosen and settled whole.
    discounted: dict[uuid.UUID, int] = {}
    if bill_ids:
        rules = {
            r.fee_item_id: r
            for r in (
                await session.scalars(
                    select(DiscountRule).where(
                        DiscountRule.fee_item_id.in_(list(items)), DiscountRule.active.is_(True)
                    )
                )
            ).all()
        }
        by_item: dict[uuid.UUID, list[Bill]] = defaultdict(list)
        for bill in bills:
            if bill.fee_item_id in rules and bill.settled_cents == 0 and bill.late_fee_of is None:
                by_item[bill.fee_item_id].append(bill)
        for item_id, group in by_item.items():
            rule = rules[item_id]
            free = len(group) // rule.min_months * rule.free_months
            for bill in (
                sorted(group, key=lambda b: b.period_start)[len(group) - free :] if free else []
            ):
                discounted[bill.id] = bill.amount_cents

    tendered = sum(t.amount_cents for t in tenders)
    pool = tendered + use_prepaid_cents
    cash_alloc: dict[uuid.UUID, int] = {}
    for bill in [*late_bills, *bills]:
        if bill.id in discounted or pool <= 0:
            continue
        take = min(bill.amount_cents - bill.settled_cents, pool)
        if take > 0:
            cash_alloc[bill.id] = take
            pool -= take
    # Prepaid money is never moved back into prepaid: use less of it instead.
    used_prepaid = max(0, use_prepaid_cents - pool)
    to_prepaid = pool - (use_prepaid_cents - used_prepaid)
    if tendered + used_prepaid == 0:
        raise _invalid("tenders", "Nothing to pay.", "nothing_to_pay")

    allocations = [(bill_id, cents, False) for bill_id, cents in cash_alloc.items()] + [
        (bill_id, cents, True) for bill_id, cents in discounted.items() if cents > 0
    ]
    deltas: dict[uuid.UUID, int] = defaultdict(int)
    for bill_id, cents, _ in allocations:
        deltas[bill_id] += cents
    tender_rows = (
        [] if existing else [(t.method.value, t.amount_cents, t.reference) for t in tenders]
    )
    if used_prepaid:
        tender_rows.append((TenderMethod.PREPAID.value, used_prepaid, ""))
    discount_cents = sum(discounted.values())
    allocated_cents = sum(cash_alloc.values())
    lines = [
        debit(PAYMENT_METHODS[t.method].account, t.amount_cents, house_id=house_id) for t in tenders
    ]
    lines.append(debit(Account.PREPAID, used_prepaid, house_id=house_id))
    lines.append(debit(Account.DISCOUNT, discount_cents, house_id=house_id))
    lines.append(credit(Account.RECEIVABLE, allocated_cents + discount_cents, house_id=house_id))
    lines.append(credit(Account.PREPAID, to_prepaid, house_id=house_id))
    journal_params = ledger.entries_params(
        [
            ledger.Entry(
                "late_fee",
                [
                    debit(Account.RECEIVABLE, late_total, house_id=house_id),
                    credit(Account.LATE_FEE_INCOME, late_total, house_id=house_id),
                ],
            ),
            ledger.Entry("payment", lines),
        ],
        community_id=receipt.community_id,
        source_id=receipt.id,
        actor_id=actor.id,
    )
    paid = {
        "status": ReceiptStatus.PAID.value,
        "amount_cents": tendered + used_prepaid,
        "allocated_cents": allocated_cents,
        "discount_cents": discount_cents,
        "to_prepaid_cents": to_prepaid,
        "paid_at": dt.datetime.now(dt.UTC),
    }
    late_settled = {b.id: deltas.pop(b.id, 0) for b in late_bills}
    # The whole payment in one round trip: the next receipt number (the counter row stays
    # locked until commit: numbers follow commit order with no gap, a rollback returns its
    # number), the receipt, late-fee bills, tenders, allocations, the bills' settlement,
    # the prepaid balance and the journal. Foreign keys between these rows are checked at
    # the end of the statement, and the journal's balance at commit.
    result = await session.execute(
        _PAY_EXISTING if existing else _PAY_NEW,
        {
            "tenant": tenant_id,
            "counter": new_id(),
            "community": receipt.community_id,
            "house": house_id,
            "receipt": receipt.id,
            "shift": receipt.shift_id,
            "cashier": receipt.cashier_id,
            "payer": receipt.payer_name,
            "plan": json.dumps(receipt.allocation_plan or {}),
            **paid,
            "day": day,
            "day_after": day + dt.timedelta(days=1),
            "l_ids": [b.id for b in late_bills],
            "l_buildings": [b.building_id for b in late_bills],
            "l_items": [b.fee_item_id for b in late_bills],
            "l_of": [b.late_fee_of for b in late_bills],
            "l_amounts": [b.amount_cents for b in late_bills],
            "l_settled": [late_settled[b.id] for b in late_bills],
            "t_ids": [new_id() for _ in tender_rows],
            "t_methods": [method for method, _, _ in tender_rows],
            "t_amounts": [cents for _, cents, _ in tender_rows],
            "t_refs": [reference[:100] for _, _, reference in tender_rows],
            "a_ids": [new_id() for _ in allocations],
            "a_bills": [bill_id for bill_id, _, _ in allocations],
            "a_amounts": [cents for _, cents, _ in allocations],
            "a_discounts": [discount for _, _, discount in allocations],
            "b_ids": list(deltas),
            "b_deltas": list(deltas.values()),
            "p_delta": to_prepaid - used_prepaid,
            "prepaid": prepaid.id,
            **journal_params,
        },
    )
    number, created_at = result.one()
    # The row is written: the object only learns what it now holds (no second INSERT).
    written = {**paid, "receipt_no": int(number), "created_at": created_at}
    if not existing:  # every column, so nothing is left to load lazily
        written |= {
            "shift_id": receipt.shift_id,
            "cashier_id": receipt.cashier_id,
            "payer_name": receipt.payer_name,
            "allocation_plan": receipt.allocation_plan or {},
            "voided_at": None,
            "voided_by": None,
            "void_reason": "",
        }
    for key, value in written.items():
        set_committed_value(receipt, key, value)
    if not existing:
        make_transient_to_detached(receipt)
        session.add(receipt)
    _sync_settled(session, deltas)
    await audit.record(
        session,
        actor,
        "receipt.pay",
        target_type="receipt",
        target_id=receipt.id,
        detail={
            "receipt_no": receipt.receipt_no,
            "amount_cents": receipt.amount_cents,
            "bills": len(allocations),
            "to_prepaid_cents": to_prepaid,
        },
    )
    await outbox.emit(
        session,
        actor if actor.tenant_id else Actor.system(tenant_id),
        events.RECEIPT_PAID,
        {
            "receipt_id": str(receipt.id),
            "house_id": str(house_id),
            "community_id": str(receipt.community_id),
            "amount_cents": receipt.amount_cents,
        },
    )
    return receipt


async def _add_settled(session: AsyncSession, deltas: dict[uuid.UUID, int]) -> None:
    await session.execute(
        text(
            "UPDATE bills b SET settled_cents = b.settled_cents + d.delta"
            " FROM unnest(CAST(:ids AS uuid[]), CAST(:deltas AS bigint[])) AS d(id, delta)"
            " WHERE b.id = d.id"
        ),
        {"ids": list(deltas), "deltas": list(deltas.values())},
    )
    _sync_settled(session, deltas)


def _sync_settled(session: AsyncSession, deltas: dict[uuid.UUID, int]) -> None:
    """Keep bills already loaded in this session in step with their rows (an async session
    must not lazily reload an expired attribute)."""
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Bill) and loaded.id in deltas:
            set_committed_value(loaded, "settled_cents", loaded.settled_cents + deltas[loaded.id])


def readable_receipts(actor: Actor) -> Select[Receipt]:
    return select(Receipt).where(estate.community_scope(actor, Receipt.community_id))


async def get_receipt(session: AsyncSession, actor: Actor, *, receipt_id: uuid.UUID) -> Receipt:
    receipt = await session.scalar(readable_receipts(actor).where(Receipt.id == receipt_id))
    if receipt is None:
        raise NotFound("Receipt not found.", code="receipt_not_found")
    return receipt


@dataclass
class ReceiptView:
    receipt: Receipt
    tenders: list[ReceiptTender]
    lines: list[tuple[str, dt.date, int, bool]]  # fee item name, period start, cents, discount
    house_label: str
    community_name: str
    company_name: str
    cashier_name: str = ""


async def receipt_view(
    session: AsyncSession, actor: Actor, *, receipt_id: uuid.UUID
) -> ReceiptView:
    receipt = await get_receipt(session, actor, receipt_id=receipt_id)
    return await _receipt_view(session, actor, receipt)


async def receipt_tenders(session: AsyncSession, receipt_id: uuid.UUID) -> list[ReceiptTender]:
    """The tenders of a receipt the caller has already read (or just wrote)."""
    return list(
        (
            await session.scalars(
                select(ReceiptTender)
                .where(ReceiptTender.receipt_id == receipt_id)
                .order_by(ReceiptTender.id)
            )
        ).all()
    )


async def _receipt_view(session: AsyncSession, actor: Actor, receipt: Receipt) -> ReceiptView:
    from linli.tenancy.models import Community, Tenant

    tenders = await receipt_tenders(session, receipt.id)
    rows = (
        await session.execute(
            select(
                FeeItem.name,
                Bill.period_start,
                Allocation.amount_cents,
                Allocation.discount,
                Bill.late_fee_of,
            )
            .join(Bill, and_(Bill.tenant_id == Allocation.tenant_id, Bill.id == Allocation.bill_id))
            .join(
                FeeItem, and_(FeeItem.tenant_id == Bill.tenant_id, FeeItem.id == Bill.fee_item_id)
            )
            .where(Allocation.receipt_id == receipt.id)
            .order_by(Bill.period_start, FeeItem.name)
        )
    ).all()
    lines = [
        (name + (" 滞纳金" if late else ""), start, cents, disc)
        for name, start, cents, disc, late in rows
    ]
    community = await session.scalar(
        select(Community.name).where(Community.id == receipt.community_id)
    )
    company = await session.scalar(select(Tenant.name).where(Tenant.id == receipt.tenant_id))
    system = Actor.system(receipt.tenant_id)
    label = await house_label(session, system, receipt.house_id)
    cashier = ""
    if receipt.cashier_id is not None:
        from linli.auth import service as auth_service

        try:
            member = await auth_service.get_staff(session, system, staff_user_id=receipt.cashier_id)
            cashier = member.user.display_name
        except NotFound:
            cashier = ""
    return ReceiptView(receipt, tenders, lines, label, community or "", company or "", cashier)


async def list_receipts(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID | None = None,
    shift_id: uuid.UUID | None = None,
    page: PageParams,
) -> tuple[list[Receipt], str | None]:
    statement = readable_receipts(actor)
    if house_id is not None:
        statement = statement.where(Receipt.house_id == house_id)
    if shift_id is not None:
        statement = statement.where(Receipt.shift_id == shift_id)
    rows = list((await session.scalars(paginate_statement(statement, Receipt.id, page))).all())
    return make_page(rows, page)


async def void_receipt(
    session: AsyncSession, actor: Actor, *, receipt_id: uuid.UUID, reason: str
) -> Receipt:
    """Void a receipt the same day (作废), with a reason. Its number stays used."""
    if len(reason.strip()) < 2:
        raise _invalid("reason", "Give the reason for voiding.", "reason_required")
    found = await get_receipt(session, actor, receipt_id=receipt_id)
    receipt = await session.scalar(
        select(Receipt)
        .where(Receipt.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert receipt is not None
    if receipt.status != ReceiptStatus.PAID.value:
        raise Conflict("Only a paid receipt can be voided.", code="receipt_not_paid")
    assert receipt.paid_at is not None
    if receipt.paid_at.astimezone(TZ).date() != today():
        raise Conflict(
            "A receipt can only be voided on the day it was issued.", code="void_not_same_day"
        )
    prepaid = await _lock_prepaid(
        session, receipt.tenant_id, receipt.community_id, receipt.house_id
    )
    used = (
        await session.scalar(
            select(func.coalesce(func.sum(ReceiptTender.amount_cents), 0)).where(
                ReceiptTender.receipt_id == receipt.id,
                ReceiptTender.method == TenderMethod.PREPAID.value,
            )
        )
        or 0
    )
    if prepaid.balance_cents + used - receipt.to_prepaid_cents < 0:
        raise Conflict(
            "The prepaid money of this receipt was already spent.", code="prepaid_already_used"
        )
    allocations = (
        await session.execute(
            select(Allocation.bill_id, Allocation.amount_cents).where(
                Allocation.receipt_id == receipt.id
            )
        )
    ).all()
    deltas: dict[uuid.UUID, int] = defaultdict(int)
    for bill_id, cents in allocations:
        deltas[bill_id] -= cents
    if deltas:
        await session.execute(select(Bill.id).where(Bill.id.in_(list(deltas))).with_for_update())
        await _add_settled(session, dict(deltas))
    if used or receipt.to_prepaid_cents:
        await session.execute(
            update(PrepaidAccount)
            .where(PrepaidAccount.id == prepaid.id)
            .values(balance_cents=PrepaidAccount.balance_cents + used - receipt.to_prepaid_cents)
        )
    await ledger.reverse(
        session,
        tenant_id=receipt.tenant_id,
        source_id=receipt.id,
        kind="payment",
        reversal_kind="payment_void",
        actor_id=actor.id,
        memo=reason[:200],
    )
    receipt.status = ReceiptStatus.VOIDED.value
    receipt.voided_at = dt.datetime.now(dt.UTC)
    receipt.voided_by = actor.id
    receipt.void_reason = reason.strip()[:400]
    await session.flush()
    await audit.record(
        session,
        actor,
        "receipt.void",
        target_type="receipt",
        target_id=receipt.id,
        detail={"receipt_no": receipt.receipt_no},
    )
    await outbox.emit(
        session,
        actor,
        events.RECEIPT_VOIDED,
        {"receipt_id": str(receipt.id), "house_id": str(receipt.house_id)},
    )
    return receipt


async def set_auto_deduct(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, enabled: bool
) -> PrepaidAccount:
    house = await estate.get_house(session, actor, house_id=house_id)
    account = await _lock_prepaid(session, house.tenant_id, house.community_id, house.id)
    account.auto_deduct = enabled
    await session.flush()
    await audit.record(
        session,
        actor,
        "prepaid.auto_deduct",
        target_type="house",
        target_id=house.id,
        detail={"enabled": enabled},
    )
    return account


async def _auto_deduct(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, run_id: uuid.UUID
) -> int:
    """Pay new bills from prepaid balances whose owners chose automatic deduction."""
    houses = (
        (
            await session.execute(
                select(PrepaidAccount.house_id).where(
                    PrepaidAccount.community_id == community_id,
                    PrepaidAccount.auto_deduct.is_(True),
                    PrepaidAccount.balance_cents > 0,
                    exists().where(
                        Bill.house_id == PrepaidAccount.house_id,
                        Bill.run_id == run_id,
                        Bill.settled_cents < Bill.amount_cents,
                    ),
                )
            )
        )
        .scalars()
        .all()
    )
    for house_id in houses:
        account = await _lock_prepaid(
            session, actor.tenant_id or uuid.UUID(int=0), community_id, house_id
        )
        bills = list(
            (
                await session.scalars(
                    select(Bill).where(
                        Bill.house_id == house_id,
                        Bill.run_id == run_id,
                        Bill.settled_cents < Bill.amount_cents,
                    )
                )
            ).all()
        )
        use = min(account.balance_cents, sum(b.amount_cents - b.settled_cents for b in bills))
        if use <= 0:
            continue
        receipt = Receipt(
            tenant_id=account.tenant_id,
            id=new_id(),
            community_id=community_id,
            house_id=house_id,
            amount_cents=use,
            payer_name="预存款自动抵扣",
        )
        await _settle(session, actor, receipt, [], [b.id for b in bills], use, today())
    return len(houses)


# --- cashier shifts -------------------------------------------------------------------------


async def open_shift(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, opening_float_cents: int = 0
) -> CashierShift:
    _check_cents("opening_float_cents", opening_float_cents, positive=False)
    await estate.get_community(session, actor, community_id=community_id)
    shift = CashierShift(
        tenant_id=_tenant(actor),
        community_id=community_id,
        cashier_id=actor.id,
        opening_float_cents=opening_float_cents,
    )
    session.add(shift)
    await flush_or_conflict(
        session, Conflict("You already have an open shift.", code="shift_already_open")
    )
    await audit.record(
        session, actor, "shift.open", target_type="cashier_shift", target_id=shift.id
    )
    return shift


async def current_shift(session: AsyncSession, actor: Actor) -> CashierShift | None:
    return await _current_shift(session, actor)


@dataclass
class ShiftReport:
    shift: CashierShift
    by_method: dict[str, int]
    receipts: int
    voided: int
    expected_cash_cents: int


async def shift_report(session: AsyncSession, actor: Actor, *, shift_id: uuid.UUID) -> ShiftReport:
    shift = await session.scalar(
        select(CashierShift).where(
            CashierShift.id == shift_id, estate.community_scope(actor, CashierShift.community_id)
        )
    )
    if shift is None:
        raise NotFound("Shift not found.", code="shift_not_found")
    rows = (
        await session.execute(
            select(ReceiptTender.method, func.sum(ReceiptTender.amount_cents))
            .join(
                Receipt,
                and_(
                    Receipt.tenant_id == ReceiptTender.tenant_id,
                    Receipt.id == ReceiptTender.receipt_id,
                ),
            )
            .where(Receipt.shift_id == shift.id, Receipt.status == ReceiptStatus.PAID.value)
            .group_by(ReceiptTender.method)
        )
    ).all()
    by_method = {method: int(total) for method, total in rows}
    counts = (
        await session.execute(
            select(
                func.count(), func.count().filter(Receipt.status == ReceiptStatus.VOIDED.value)
            ).where(Receipt.shift_id == shift.id)
        )
    ).one()
    expected = shift.opening_float_cents + by_method.get(TenderMethod.CASH.value, 0)
    return ShiftReport(shift, by_method, int(counts[0]), int(counts[1]), expected)


async def close_shift(
    session: AsyncSession, actor: Actor, *, counted_cash_cents: int, note: str = ""
) -> ShiftReport:
    """Close the actor's shift with the cash counted in the drawer; the difference is recorded."""
    _check_cents("counted_cash_cents", counted_cash_cents, positive=False)
    shift = await session.scalar(
        select(CashierShift)
        .where(CashierShift.cashier_id == actor.id, CashierShift.status == ShiftStatus.OPEN.value)
        .with_for_update()
    )
    if shift is None:
        raise Conflict("You have no open shift.", code="shift_not_open")
    report = await shift_report(session, actor, shift_id=shift.id)
    shift.status = ShiftStatus.CLOSED.value
    shift.closed_at = dt.datetime.now(dt.UTC)
    shift.expected_cash_cents = report.expected_cash_cents
    shift.counted_cash_cents = counted_cash_cents
    shift.difference_cents = counted_cash_cents - report.expected_cash_cents
    shift.note = note[:400]
    await session.flush()
    await audit.record(
        session,
        actor,
        "shift.close",
        target_type="cashier_shift",
        target_id=shift.id,
        detail={"difference_cents": shift.difference_cents},
    )
    return report


# --- adjustments: credit notes and late-fee waivers --------------------------------------------


async def get_bill(session: AsyncSession, actor: Actor, *, bill_id: uuid.UUID) -> Bill:
    bill = await session.scalar(
        select(Bill).where(Bill.id == bill_id, estate.community_scope(actor, Bill.community_id))
    )
    if bill is None:
        raise NotFound("Bill not found.", code="bill_not_found")
    return bill


async def request_adjustment(
    session: AsyncSession,
    actor: Actor,
    *,
    bill_id: uuid.UUID,
    kind: AdjustmentKind,
    amount_cents: int,
    reason: str,
) -> Adjustment:
    if len(reason.strip()) < 2:
        raise _invalid("reason", "Give the reason for the adjustment.", "reason_required")
    bill = await get_bill(session, actor, bill_id=bill_id)
    if kind is AdjustmentKind.CREDIT_NOTE:
        _check_cents("amount_cents", amount_cents)
        if amount_cents > bill.amount_cents - bill.settled_cents:
            raise _invalid(
                "amount_cents", "More than the bill still asks.", "amount_exceeds_outstanding"
            )
    else:
        amount_cents = 0
    adjustment = Adjustment(
        tenant_id=bill.tenant_id,
        community_id=bill.community_id,
        bill_id=bill.id,
        kind=kind.value,
        amount_cents=amount_cents,
        reason=reason.strip()[:400],
        requested_by=actor.id,
    )
    session.add(adjustment)
    await session.flush()
    await audit.record(
        session,
        actor,
        "adjustment.request",
        target_type="adjustment",
        target_id=adjustment.id,
        detail={"kind": kind.value, "amount_cents": amount_cents},
    )
    return adjustment


async def decide_adjustment(
    session: AsyncSession, actor: Actor, *, adjustment_id: uuid.UUID, approve: bool
) -> Adjustment:
    """Approve or reject; the approver must not be the one who asked (四眼原则)."""
    adjustment = await session.scalar(
        select(Adjustment)
        .where(
            Adjustment.id == adjustment_id, estate.community_scope(actor, Adjustment.community_id)
        )
        .with_for_update()
    )
    if adjustment is None:
        raise NotFound("Adjustment not found.", code="adjustment_not_found")
    if adjustment.status != AdjustmentStatus.REQUESTED.value:
        raise Conflict("This adjustment was already decided.", code="adjustment_decided")
    if adjustment.requested_by == actor.id:
        raise PermissionDenied(
            "Someone else must approve your own request.", code="approver_is_requester"
        )
    if approve:
        bill = await session.scalar(
            select(Bill)
            .where(Bill.id == adjustment.bill_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert bill is not None
        if adjustment.kind == AdjustmentKind.CREDIT_NOTE.value:
            if adjustment.amount_cents > bill.amount_cents - bill.settled_cents:
                raise Conflict(
                    "The bill no longer owes that much.", code="amount_exceeds_outstanding"
                )
            await _add_settled(session, {bill.id: adjustment.amount_cents})
            revenue = Account.LATE_FEE_INCOME if bill.late_fee_of else Account.REVENUE
            await ledger.post(
                session,
                tenant_id=bill.tenant_id,
                community_id=bill.community_id,
                kind="credit_note",
                source_id=adjustment.id,
                actor_id=actor.id,
                lines=[
                    debit(
                        revenue,
                        adjustment.amount_cents,
                        fee_item_id=None if bill.late_fee_of else bill.fee_item_id,
                        house_id=bill.house_id,
                    ),
                    credit(Account.RECEIVABLE, adjustment.amount_cents, house_id=bill.house_id),
                ],
            )
        else:
            await session.execute(
                update(Bill).where(Bill.id == bill.id).values(late_fee_waived=True)
            )
    adjustment.status = (AdjustmentStatus.APPROVED if approve else AdjustmentStatus.REJECTED).value
    adjustment.decided_by = actor.id
    adjustment.decided_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await audit.record(
        session,
        actor,
        "adjustment.decide",
        target_type="adjustment",
        target_id=adjustment.id,
        detail={"approved": approve},
    )
    return adjustment


async def list_adjustments(
    session: AsyncSession, actor: Actor, *, status: AdjustmentStatus | None, page: PageParams
) -> tuple[list[Adjustment], str | None]:
    statement = select(Adjustment).where(estate.community_scope(actor, Adjustment.community_id))
    if status is not None:
        statement = statement.where(Adjustment.status == status.value)
    rows = list((await session.scalars(paginate_statement(statement, Adjustment.id, page))).all())
    return make_page(rows, page)


async def list_bills(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, page: PageParams
) -> tuple[list[Bill], str | None]:
    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    statement = select(Bill).where(Bill.house_id == house.id)
    rows = list((await session.scalars(paginate_statement(statement, Bill.id, page))).all())
    return make_page(rows, page)


# --- the resident portal: my bills, receipts, prepaid --------------------------------------------


@dataclass
class PortalView:
    houses: list[dict[str, Any]] = field(default_factory=list)
    open_bills: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)


async def my_billing(session: AsyncSession, actor: Actor) -> PortalView:
    """A resident's houses across companies with what they owe, their prepaid balance and
    their receipts; each company read under its own RLS."""
    from linli.db.engine import set_tenant

    homes, _ = await residents.my_homes(session, actor)
    view = PortalView()
    by_company: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for home in homes:
        by_company[home.company_id].append(home)
    try:
        for company_id, company_homes in by_company.items():
            await set_tenant(session, company_id)
            labels = {
                h.house_id: "-".join(p for p in (h.building_no, h.unit_no, h.house_no) if p)
                for h in company_homes
            }
            ids = list(labels)
            bills = (
                await session.execute(
                    select(Bill, FeeItem.name)
                    .join(
                        FeeItem,
                        and_(FeeItem.tenant_id == Bill.tenant_id, FeeItem.id == Bill.fee_item_id),
                    )
                    .where(Bill.house_id.in_(ids), Bill.settled_cents < Bill.amount_cents)
                    .order_by(Bill.due_on, Bill.id)
                    .limit(200)
                )
            ).all()
            owed: dict[uuid.UUID, int] = defaultdict(int)
            for bill, name in bills:
                owed[bill.house_id] += bill.amount_cents - bill.settled_cents
                view.open_bills.append(
                    {
                        "company_id": company_id,
                        "house_id": bill.house_id,
                        "house_label": labels[bill.house_id],
                        "fee_item_name": name,
                        "period_start": bill.period_start,
                        "due_on": bill.due_on,
                        "amount_cents": bill.amount_cents,
                        "outstanding_cents": bill.amount_cents - bill.settled_cents,
                    }
                )
            balances = await session.execute(
                select(PrepaidAccount.house_id, PrepaidAccount.balance_cents).where(
                    PrepaidAccount.house_id.in_(ids)
                )
            )
            prepaid = {house_id: cents for house_id, cents in balances.all()}
            for home in company_homes:
                view.houses.append(
                    {
                        "company_id": company_id,
                        "company_name": home.company_name,
                        "house_id": home.house_id,
                        "house_label": labels[home.house_id],
                        "community_name": home.community_name,
                        "owed_cents": owed.get(home.house_id, 0),
                        "prepaid_cents": prepaid.get(home.house_id, 0),
                    }
                )
            for receipt in (
                await session.scalars(
                    select(Receipt)
                    .where(Receipt.house_id.in_(ids), Receipt.receipt_no.is_not(None))
                    .order_by(Receipt.id.desc())
                    .limit(100)
                )
            ).all():
                view.receipts.append(
                    {
                        "company_id": company_id,
                        "receipt_id": receipt.id,
                        "house_label": labels[receipt.house_id],
                        "receipt_no": receipt.receipt_no,
                        "amount_cents": receipt.amount_cents,
                        "status": receipt.status,
                        "paid_at": receipt.paid_at,
                    }
                )
    finally:
        await set_tenant(session, None)
    return view


async def my_receipt(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, receipt_id: uuid.UUID
) -> ReceiptView:
    """One of the resident's own receipts (for its PDF); anyone else's is not found."""
    from linli.db.engine import set_tenant

    homes, _ = await residents.my_homes(session, actor)
    mine = {h.house_id for h in homes if h.company_id == company_id}
    try:
        await set_tenant(session, company_id)
        receipt = await session.scalar(
            select(Receipt).where(
                Receipt.id == receipt_id, Receipt.house_id.in_(mine or [uuid.UUID(int=0)])
            )
        )
        if receipt is None or receipt.receipt_no is None:
            raise NotFound("Receipt not found.", code="receipt_not_found")
        return await _receipt_view(session, actor, receipt)
    finally:
        await set_tenant(session, None)


# --- dunning reminders ---------------------------------------------------------------------------


async def send_reminders(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    min_days: int = 30,
    as_of: dt.date | None = None,
) -> tuple[int, int]:
    """Remind the owners of houses on the dunning list (催缴通知): a portal message, and an
    SMS / WeChat message through the notification channels the template allows.

    At most one reminder per house and day (the dedupe key). Returns (houses, messages).
    """
    from linli.billing import reports
    from linli.billing.money import yuan
    from linli.notifications import service as notifications

    day = as_of or today()
    rows = await reports.dunning_list(
        session, actor, community_id=community_id, min_days=min_days, as_of=day
    )
    messages = 0
    for row in rows:
        owners = [
            person.id
            for link, person in await residents.house_members(session, actor, house_id=row.house_id)
            if link.relation.value in ("owner", "co_owner")
        ]
        if not owners:
            continue
        result = await notifications.notify(
            session,
            actor,
            recipients=owners,
            template="billing.reminder",
            params={"house": row.label, "amount": yuan(row.owed_cents), "due": day.isoformat()},
            community_id=community_id,
            link="/portal/fees",
            dedupe_key=f"billing.reminder:{row.house_id}:{day.isoformat()}",
            source_type="house",
            source_id=row.house_id,
        )
        messages += result.notifications
    await audit.record(
        session,
        actor,
        "billing.remind",
        target_type="community",
        target_id=community_id,
        detail={"houses": len(rows), "messages": messages, "min_days": min_days},
    )
    return len(rows), messages


# --- online refunds: what the payments domain reverses through billing ---------------------------


async def refund_online_payment(
    session: AsyncSession,
    actor: Actor,
    *,
    receipt_id: uuid.UUID,
    amount_cents: int,
    already_refunded_cents: int,
    refund_id: uuid.UUID,
    reason: str,
) -> int:
    """Reverse ``amount_cents`` of a paid online (scan) receipt after its money went back
    to the payer (退款冲销); returns the cents put back on the bills.

    The caller (payments) holds the order's row lock, so ``already_refunded_cents`` is
    exact. Refunds take, in a fixed order, first what the receipt put into prepaid, then
    the money settled on its bills, the last-settled bill first; slice
    ``[already_refunded, already_refunded + amount)`` of that order is reversed, so
    several partial refunds add up to the full reversal. The last refund also reverses
    the receipt's discounts. One balanced entry: debit receivable (bills open again) and
    prepaid, credit the scan clearing account the money left from.
    """
    _check_cents("amount_cents", amount_cents)
    receipt = await session.scalar(
        select(Receipt)
        .where(Receipt.id == receipt_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if receipt is None:
        raise NotFound("Receipt not found.", code="receipt_not_found")
    if receipt.status != ReceiptStatus.PAID.value:
        raise Conflict("Only a paid receipt can be refunded.", code="receipt_not_paid")
    paid = receipt.allocated_cents + receipt.to_prepaid_cents
    if already_refunded_cents < 0 or already_refunded_cents + amount_cents > paid:
        raise Conflict("A refund cannot exceed what was paid.", code="refund_exceeds_paid")
    start, end = already_refunded_cents, already_refunded_cents + amount_cents
    from_prepaid = max(0, min(end, receipt.to_prepaid_cents) - start)
    allocations = (
        await session.execute(
            select(Allocation.bill_id, Allocation.amount_cents, Allocation.discount)
            .join(Bill, and_(Bill.tenant_id == Allocation.tenant_id, Bill.id == Allocation.bill_id))
            .where(Allocation.receipt_id == receipt.id)
            .order_by(Bill.due_on.desc(), Bill.period_start.desc(), Bill.id.desc())
        )
    ).all()
    deltas: dict[uuid.UUID, int] = defaultdict(int)
    cursor = receipt.to_prepaid_cents
    for bill_id, cents, discount in allocations:
        if discount:
            continue
        take = max(0, min(end, cursor + cents) - max(start, cursor))
        if take:
            deltas[bill_id] -= take
        cursor += cents
    to_bills = -sum(deltas.values())
    discount_back = 0
    if end == paid:
        for bill_id, cents, discount in allocations:
            if discount:
                deltas[bill_id] -= cents
                discount_back += cents
    if from_prepaid:
        prepaid = await _lock_prepaid(
            session, receipt.tenant_id, receipt.community_id, receipt.house_id
        )
        if prepaid.balance_cents < from_prepaid:
            raise Conflict(
                "The prepaid money of this payment was already spent.",
                code="prepaid_already_used",
            )
        await session.execute(
            update(PrepaidAccount)
            .where(PrepaidAccount.id == prepaid.id)
            .values(balance_cents=PrepaidAccount.balance_cents - from_prepaid)
        )
    if deltas:
        await session.execute(select(Bill.id).where(Bill.id.in_(list(deltas))).with_for_update())
        await _add_settled(session, dict(deltas))
    house_id = receipt.house_id
    await ledger.post(
        session,
        tenant_id=receipt.tenant_id,
        community_id=receipt.community_id,
        kind="online_refund",
        source_id=refund_id,
        actor_id=actor.id,
        memo=reason[:200],
        lines=[
            debit(Account.RECEIVABLE, to_bills + discount_back, house_id=house_id),
            debit(Account.PREPAID, from_prepaid, house_id=house_id),
            credit(Account.SCAN_CLEARING, amount_cents, house_id=house_id),
            credit(Account.DISCOUNT, discount_back, house_id=house_id),
        ],
    )
    await audit.record(
        session,
        actor,
        "receipt.refund",
        target_type="receipt",
        target_id=receipt.id,
        detail={
            "amount_cents": amount_cents,
            "to_bills_cents": to_bills,
            "refund_id": str(refund_id),
        },
    )
    return to_bills

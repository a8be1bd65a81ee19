"""Reconciliation (对账): the provider's daily trade bill against our orders.

For one merchant account and one day (China time) every line of the bill is matched by
``out_trade_no``:

- paid there, not paid here: the trade is recorded now exactly like a late notification
  (bills settled, ledger posted) and flagged ``paid_not_posted`` so finance sees it;
- paid there, unknown here: ``unknown_order``;
- paid here that day, absent there: ``missing_at_provider``;
- both paid, amounts differ: ``bill_amount_mismatch``;
- refunds we did not make or of another amount: ``refund_mismatch``.

A run can be repeated (on demand, or the daily job after a failure): recording a trade is
idempotent and an open exception of a kind is kept once per trade.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core import audit
from linli.core.errors import NotFound
from linli.core.logging import get_logger
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.payments import service
from linli.payments.gateway import BillLine, GatewayError, Trade, TradeStatus
from linli.payments.models import (
    PAID_STATUSES,
    ExceptionKind,
    MerchantAccount,
    PaymentException,
    PaymentOrder,
    PaymentRefund,
    ReconciliationRun,
    RefundStatus,
    RunStatus,
)

log = get_logger(__name__)
CHINA = dt.timezone(dt.timedelta(hours=8))


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=CHINA)
    return start, start + dt.timedelta(days=1)


def readable_runs(actor: Actor) -> Select[ReconciliationRun, MerchantAccount]:
    return (
        select(ReconciliationRun, MerchantAccount)
        .join(
            MerchantAccount,
            and_(
                MerchantAccount.tenant_id == ReconciliationRun.tenant_id,
                MerchantAccount.id == ReconciliationRun.merchant_account_id,
            ),
        )
        .where(estate.community_scope(actor, MerchantAccount.community_id))
    )


async def start_run(
    session: AsyncSession, actor: Actor, *, account_id: uuid.UUID, day: dt.date
) -> ReconciliationRun:
    account = await service.get_merchant_account(session, actor, account_id=account_id)
    run = ReconciliationRun(
        tenant_id=account.tenant_id,
        merchant_account_id=account.id,
        day=day,
        status=RunStatus.RUNNING.value,
    )
    session.add(run)
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.reconcile",
        target_type="payment_reconciliation_run",
        target_id=run.id,
        detail={"day": day.isoformat()},
        community_id=account.community_id,
    )
    return run


async def reconcile(actor: Actor, *, account_id: uuid.UUID, day: dt.date) -> uuid.UUID:
    """Run one reconciliation to the end; returns the run id (failed runs say why)."""
    tenant_id = actor.tenant_id
    if tenant_id is None:
        raise NotFound()
    async with unit_of_work(tenant_id) as session:
        run = await start_run(session, actor, account_id=account_id, day=day)
        run_id = run.id
        account = await session.get(MerchantAccount, (tenant_id, account_id))
        assert account is not None
    gateway = service.gateway_of(account)
    try:
        lines = await gateway.download_bill(day)
    except GatewayError as exc:
        async with unit_of_work(tenant_id) as session:
            failed = await session.get(ReconciliationRun, (tenant_id, run_id))
            assert failed is not None
            failed.status = RunStatus.FAILED.value
            failed.failure = f"{exc.code.value}: {exc}"[:200]
            failed.finished_at = service.now()
        return run_id
    async with unit_of_work(tenant_id) as session:
        await match(session, account, run_id, day, lines)
    return run_id


async def match(
    session: AsyncSession,
    account: MerchantAccount,
    run_id: uuid.UUID,
    day: dt.date,
    lines: list[BillLine],
) -> ReconciliationRun:
    run = await session.get(ReconciliationRun, (account.tenant_id, run_id))
    assert run is not None
    payments: dict[str, BillLine] = {}
    refunds: list[BillLine] = []
    for line in lines:
        if line.kind == "refund":
            refunds.append(line)
        else:
            payments[line.out_trade_no] = line
    start, end = _day_bounds(day)
    ours_that_day = {
        o.out_trade_no: o
        for o in (
            await session.scalars(
                select(PaymentOrder).where(
                    PaymentOrder.merchant_account_id == account.id,
                    PaymentOrder.paid_at >= start,
                    PaymentOrder.paid_at < end,
                    PaymentOrder.status.in_(PAID_STATUSES),
                )
            )
        ).all()
    }
    named = {
        o.out_trade_no: o
        for o in (
            await session.scalars(
                select(PaymentOrder).where(
                    PaymentOrder.merchant_account_id == account.id,
                    PaymentOrder.out_trade_no.in_(list(payments) or [""]),
                )
            )
        ).all()
    }
    exceptions = 0
    matched = 0

    async def flag(kind: ExceptionKind, **kwargs: object) -> None:
        nonlocal exceptions
        exceptions += 1
        await service.flag(
            session,
            tenant_id=account.tenant_id,
            account_id=account.id,
            kind=kind,
            run_id=run_id,
            **kwargs,  # type: ignore[arg-type]
        )

    for out_trade_no, line in payments.items():
        order = named.get(out_trade_no)
        if order is None:
            await flag(
                ExceptionKind.UNKNOWN_ORDER,
                out_trade_no=out_trade_no,
                actual_cents=line.amount_cents,
                detail="reconciliation: paid at the provider, no such order here",
            )
            continue
        if order.status not in PAID_STATUSES:
            trade = Trade(
                out_trade_no=out_trade_no,
                status=TradeStatus.PAID,
                merchant_id=line.merchant_id or account.merchant_id,
                amount_cents=line.amount_cents,
                paid_cents=line.amount_cents,
                provider_trade_no=line.provider_trade_no,
                paid_at=line.occurred_at,
            )
            outcome = await service.record_trade(session, account, trade, source="reconciliation")
            if outcome == service.TradeOutcome.PAID:
                await flag(
                    ExceptionKind.PAID_NOT_POSTED,
                    out_trade_no=out_trade_no,
                    order_id=order.id,
                    expected_cents=order.amount_cents,
                    actual_cents=line.amount_cents,
                    detail="reconciliation: paid at the provider, not here; posted now",
                )
            elif outcome != service.TradeOutcome.ALREADY_PAID:
                exceptions += 1  # record_trade flagged it (amount, merchant, not postable)
            continue
        if order.paid_cents != line.amount_cents:
            await flag(
                ExceptionKind.BILL_AMOUNT_MISMATCH,
                out_trade_no=out_trade_no,
                order_id=order.id,
                expected_cents=order.paid_cents,
                actual_cents=line.amount_cents,
                detail="reconciliation: the bill's amount differs from the order's",
            )
            continue
        matched += 1
    for out_trade_no, order in ours_that_day.items():
        if out_trade_no not in payments:
            await flag(
                ExceptionKind.MISSING_AT_PROVIDER,
                out_trade_no=out_trade_no,
                order_id=order.id,
                expected_cents=order.paid_cents,
                detail="reconciliation: paid here, absent from the provider's bill",
            )
    if refunds:
        known = {
            r.out_refund_no: r
            for r in (
                await session.scalars(
                    select(PaymentRefund).where(
                        PaymentRefund.out_refund_no.in_([r.out_refund_no for r in refunds])
                    )
                )
            ).all()
        }
        for line in refunds:
            ours = known.get(line.out_refund_no)
            if (
                ours is None
                or ours.amount_cents != line.amount_cents
                or ours.status == RefundStatus.REJECTED.value
            ):
                await flag(
                    ExceptionKind.REFUND_MISMATCH,
                    out_trade_no=line.out_trade_no,
                    out_refund_no=line.out_refund_no,
                    expected_cents=ours.amount_cents if ours else None,
                    actual_cents=line.amount_cents,
                    detail="reconciliation: refund unknown here or of another amount",
                )
    run.provider_count = len(payments)
    run.provider_cents = sum(line.amount_cents for line in payments.values())
    run.provider_refund_cents = sum(line.amount_cents for line in refunds)
    run.our_count = len(ours_that_day)
    run.our_cents = sum(o.paid_cents for o in ours_that_day.values())
    run.matched_count = matched
    run.exception_count = exceptions
    run.status = RunStatus.DONE.value
    run.finished_at = service.now()
    await session.flush()
    return run


async def get_run(
    session: AsyncSession, actor: Actor, *, run_id: uuid.UUID
) -> tuple[ReconciliationRun, MerchantAccount]:
    row = (
        await session.execute(readable_runs(actor).where(ReconciliationRun.id == run_id))
    ).first()
    if row is None:
        raise NotFound("Reconciliation run not found.", code="run_not_found")
    return row[0], row[1]


async def list_runs(
    session: AsyncSession, actor: Actor, *, limit: int = 100
) -> list[tuple[ReconciliationRun, MerchantAccount]]:
    rows = await session.execute(
        readable_runs(actor).order_by(ReconciliationRun.id.desc()).limit(limit)
    )
    return [(r[0], r[1]) for r in rows.all()]


@dataclass(frozen=True)
class RunReport:
    run: ReconciliationRun
    account: MerchantAccount
    exceptions: list[PaymentException]


async def report(session: AsyncSession, actor: Actor, *, run_id: uuid.UUID) -> RunReport:
    run, account = await get_run(session, actor, run_id=run_id)
    rows = await session.scalars(
        select(PaymentException)
        .where(PaymentException.run_id == run.id)
        .order_by(PaymentException.kind, PaymentException.out_trade_no)
    )
    return RunReport(run, account, list(rows.all()))


def report_xlsx(data: RunReport) -> bytes:
    """The run's totals and exceptions as a spreadsheet (对账报告)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "对账汇总 Summary"
    bold = Font(bold=True)
    run = data.run
    rows: list[tuple[str, object]] = [
        ("商户号 Merchant", data.account.merchant_id),
        ("渠道 Provider", data.account.provider),
        ("日期 Day", run.day.isoformat()),
        ("状态 Status", run.status),
        ("渠道笔数 Provider trades", run.provider_count),
        ("渠道金额(元) Provider amount", run.provider_cents / 100),
        ("渠道退款(元) Provider refunds", run.provider_refund_cents / 100),
        ("本地笔数 Our trades", run.our_count),
        ("本地金额(元) Our amount", run.our_cents / 100),
        ("勾对笔数 Matched", run.matched_count),
        ("异常笔数 Exceptions", run.exception_count),
    ]
    for label, value in rows:
        sheet.append([label, value])
        cell = sheet.cell(row=sheet.max_row, column=1)
        cell.font = bold
    details = book.create_sheet("异常 Exceptions")
    details.append(
        [
            "类型 Kind",
            "商户订单号 out_trade_no",
            "退款单号 out_refund_no",
            "应为(元) Expected",
            "实际(元) Actual",
            "说明 Detail",
            "状态 Status",
        ]
    )
    for cell in details[1]:
        cell.font = bold
    for row in data.exceptions:
        details.append(
            [
                row.kind,
                row.out_trade_no,
                row.out_refund_no,
                None if row.expected_cents is None else row.expected_cents / 100,
                None if row.actual_cents is None else row.actual_cents / 100,
                row.detail,
                row.status,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def accounts_to_reconcile(session: AsyncSession) -> list[uuid.UUID]:
    return list(
        (
            await session.scalars(
                select(MerchantAccount.id).where(MerchantAccount.active.is_(True))
            )
        ).all()
    )


async def daily(day: dt.date | None = None) -> int:
    """Reconcile yesterday (China time) for every active merchant account of every company."""
    from linli.payments.flows import tenants_with_accounts

    target = day or (dt.datetime.now(CHINA).date() - dt.timedelta(days=1))
    runs = 0
    for tenant_id in await tenants_with_accounts():
        async with unit_of_work(tenant_id) as session:
            accounts = await accounts_to_reconcile(session)
            already = set(
                (
                    await session.scalars(
                        select(ReconciliationRun.merchant_account_id).where(
                            ReconciliationRun.day == target,
                            ReconciliationRun.status == RunStatus.DONE.value,
                        )
                    )
                ).all()
            )
        for account_id in accounts:
            if account_id in already:
                continue
            await reconcile(Actor.system(tenant_id), account_id=account_id, day=target)
            runs += 1
    if runs:
        log.info("payments.reconciled", runs=runs, day=target.isoformat())
    return runs

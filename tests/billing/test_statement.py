"""A house's statement (对账单) comes from the ledger and agrees with the bills, whatever
happened to them: credit notes, late fees, overpayment to prepaid, a voided receipt, a
prepaid auto-deduction on a new run."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.billing import reports, service
from linli.billing.models import (
    Adjustment,
    AdjustmentKind,
    AdjustmentStatus,
    Allocation,
    Bill,
    JournalEntry,
    JournalLine,
    PrepaidAccount,
    Receipt,
    ReceiptStatus,
    TenderMethod,
)
from linli.billing.service import Tender
from linli.db.engine import unit_of_work
from tests.billing.factories import billed_company, cashier, issue_run, open_shift
from tests.factories import make_company

CASH = TenderMethod.CASH


async def _bills_view(company_id: uuid.UUID, house_id: uuid.UUID) -> dict[str, int]:
    """The same figures, read from bills, receipts, allocations, adjustments and balances."""
    async with unit_of_work(company_id) as session:
        charged, late, owed = (
            await session.execute(
                select(
                    func.coalesce(
                        func.sum(Bill.amount_cents).filter(Bill.late_fee_of.is_(None)), 0
                    ),
                    func.coalesce(
                        func.sum(Bill.amount_cents).filter(Bill.late_fee_of.is_not(None)), 0
                    ),
                    func.coalesce(func.sum(Bill.amount_cents - Bill.settled_cents), 0),
                ).where(Bill.house_id == house_id)
            )
        ).one()
        paid, discounts = (
            await session.execute(
                select(
                    func.coalesce(
                        func.sum(Allocation.amount_cents).filter(Allocation.discount.is_(False)), 0
                    ),
                    func.coalesce(
                        func.sum(Allocation.amount_cents).filter(Allocation.discount.is_(True)), 0
                    ),
                )
                .join(Receipt, Receipt.id == Allocation.receipt_id)
                .where(Receipt.house_id == house_id, Receipt.status == ReceiptStatus.PAID.value)
            )
        ).one()
        credited = await session.scalar(
            select(func.coalesce(func.sum(Adjustment.amount_cents), 0))
            .join(Bill, Bill.id == Adjustment.bill_id)
            .where(
                Bill.house_id == house_id,
                Adjustment.kind == AdjustmentKind.CREDIT_NOTE.value,
                Adjustment.status == AdjustmentStatus.APPROVED.value,
            )
        )
        prepaid = await session.scalar(
            select(PrepaidAccount.balance_cents).where(PrepaidAccount.house_id == house_id)
        )
    return {
        "charges": int(charged),
        "late_fees": int(late),
        "payments": int(paid),
        "credits": int(credited or 0) + int(discounts),
        "balance": int(owed),
        "prepaid": int(prepaid or 0),
    }


async def _statement(
    company_id: uuid.UUID, house_id: uuid.UUID, **period: dt.date
) -> reports.Statement:
    async with unit_of_work(company_id) as session:
        return await reports.house_statement(
            session, Actor.system(company_id), house_id=house_id, **period
        )


def _ledger_view(statement: reports.Statement) -> dict[str, int]:
    return {
        "charges": statement.charges,
        "late_fees": statement.late_fees,
        "payments": statement.payments,
        "credits": statement.credits,
        "balance": statement.balance,
        "prepaid": statement.prepaid_closing,
    }


async def test_statement_from_the_ledger_agrees_with_the_bills_after_every_kind_of_change() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2, late_fee_daily_bp=5)
    house, neighbour = billed.houses
    actor, approver = cashier(company), cashier(company)
    await open_shift(company, actor)

    # A credit note with its approver.
    async with unit_of_work(company.id) as session:
        (march,) = (await service.house_account(session, actor, house_id=house)).bills
        note = await service.request_adjustment(
            session,
            actor,
            bill_id=march.bill.id,
            kind=AdjustmentKind.CREDIT_NOTE,
            amount_cents=2375,
            reason="面积登记有误",
        )
    async with unit_of_work(company.id) as session:
        await service.decide_adjustment(session, approver, adjustment_id=note.id, approve=True)
    # A payment well beyond what is owed (late fee charged first, the rest to prepaid) ...
    async with unit_of_work(company.id) as session:
        await service.take_payment(session, actor, house_id=house, tenders=[Tender(CASH, 60000)])
    # ... then one more that is voided the same day.
    async with unit_of_work(company.id) as session:
        wrong = await service.take_payment(
            session, actor, house_id=house, tenders=[Tender(CASH, 1000)]
        )
    async with unit_of_work(company.id) as session:
        await service.void_receipt(session, actor, receipt_id=wrong.id, reason="重复收费")
    # The owner chose auto-deduction: the April run is paid from the prepaid balance.
    async with unit_of_work(company.id) as session:
        await service.set_auto_deduct(session, actor, house_id=house, enabled=True)
    april_run = await issue_run(company, period=dt.date(2026, 4, 1))

    statement = await _statement(company.id, house)
    bills = await _bills_view(company.id, house)
    assert _ledger_view(statement) == bills
    assert bills["credits"] == 2375 and bills["late_fees"] > 0
    assert bills["charges"] == 2 * 22375
    assert bills["balance"] == (
        bills["charges"] + bills["late_fees"] - bills["payments"] - bills["credits"]
    )
    kinds = [line.kind for line in statement.lines]
    assert kinds.count("billing_run") == 2
    assert {"credit_note", "late_fee", "payment", "payment_void"} <= set(kinds)
    auto = [line for line in statement.lines if line.kind == "payment" and line.prepaid < 0]
    assert auto and auto[-1].paid == 22375 and auto[-1].prepaid == -22375
    assert statement.lines[-1].balance == statement.balance
    # The neighbour only had the two runs: its statement is its own bills, nothing of ours.
    assert _ledger_view(await _statement(company.id, neighbour)) == await _bills_view(
        company.id, neighbour
    )

    # A period: everything before ``since`` is the opening balance, the rest the movement.
    today = service.today()
    later = await _statement(company.id, house, since=today + dt.timedelta(days=1))
    assert later.lines == []
    assert (later.opening, later.balance) == (statement.balance, statement.balance)
    assert later.prepaid_opening == later.prepaid_closing == statement.prepaid_closing
    before = await _statement(company.id, house, until=today)
    assert before.lines == [] and before.balance == 0

    # The subledger behind the run's summary entry: its bills sum to the run's debit.
    async with unit_of_work(company.id) as session:
        for run_id in (billed.run_id, april_run):
            debit = await session.scalar(
                select(func.sum(JournalLine.debit_cents))
                .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                .where(
                    JournalEntry.source_id == run_id,
                    JournalEntry.kind == "billing_run",
                    JournalLine.account == "receivable",
                )
            )
            bills_total = await session.scalar(
                select(func.sum(Bill.amount_cents)).where(Bill.run_id == run_id)
            )
            assert debit == bills_total == 2 * 22375


async def test_a_reverted_run_leaves_nothing_on_the_statement() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    async with unit_of_work(company.id) as session:
        assert billed.run_id is not None
        await service.revert_run(session, Actor.system(company.id), run_id=billed.run_id)
    statement = await _statement(company.id, billed.houses[0])
    assert _ledger_view(statement) == await _bills_view(company.id, billed.houses[0])
    assert statement.balance == 0


async def test_the_console_statement_page_shows_the_ledger_and_hides_other_companies(
    app: object,
) -> None:
    import httpx

    from tests.factories import PASSWORD
    from tests.web.pageutil import new_ip, staff_sign_in, text_of

    company, other = await make_company(communities=1), await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    actor = cashier(company)
    await open_shift(company, actor)
    async with unit_of_work(company.id) as session:
        await service.take_payment(
            session, actor, house_id=billed.houses[0], tenders=[Tender(CASH, 30000)]
        )
    path = f"/console/billing/houses/{billed.houses[0]}/statement"
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
        page = await web.get(path)
        assert page.status_code == 200, page.text[:500]
        words = text_of(page)
        assert "对账单" in words and "223.75" in words and "76.25" in words  # 300 − 223.75
        assert "No.00000001" in words
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        await staff_sign_in(web, company=other.slug, login="admin", password=PASSWORD)
        assert (await web.get(path)).status_code == 404

"""Double entry holds for any sequence of money operations (hypothesis), and the journal
agrees with the bills and prepaid balances it describes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.billing import ledger, reports, service
from linli.billing.models import (
    Account,
    AdjustmentKind,
    Bill,
    PrepaidAccount,
    Receipt,
    ReceiptStatus,
    TenderMethod,
)
from linli.billing.service import Tender
from linli.core.errors import DomainError
from linli.db.engine import unit_of_work
from tests.billing.factories import billed_company, cashier, open_shift
from tests.factories import make_company

amounts = st.integers(min_value=1, max_value=80_000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(0, 2), amounts, st.sampled_from(["cash", "card"])),
        st.tuples(st.just("pay_bill"), st.integers(0, 2), amounts, st.just("transfer")),
        st.tuples(st.just("deposit"), st.integers(0, 2), amounts, st.just("cash")),
        st.tuples(st.just("use_prepaid"), st.integers(0, 2), amounts, st.just("cash")),
        st.tuples(st.just("void_last"), st.integers(0, 2), amounts, st.just("cash")),
        st.tuples(st.just("credit_note"), st.integers(0, 2), amounts, st.just("cash")),
        st.tuples(st.just("advance"), st.integers(0, 2), st.integers(1, 3), st.just("cash")),
        st.tuples(st.just("late_pay"), st.integers(0, 2), amounts, st.just("cash")),
    ),
    min_size=1,
    max_size=12,
)


async def _check_books(company_id: Any, houses: Sequence[Any] = ()) -> None:
    async with unit_of_work(company_id) as session:
        balance = await reports.trial_balance(session, Actor.system(company_id))
        owed = await session.scalar(
            select(func.coalesce(func.sum(Bill.amount_cents - Bill.settled_cents), 0))
        )
        prepaid = await session.scalar(
            select(func.coalesce(func.sum(PrepaidAccount.balance_cents), 0))
        )
    assert sum(d for d, _ in balance.values()) == sum(c for _, c in balance.values())
    receivable = balance.get(Account.RECEIVABLE.value, (0, 0))
    assert receivable[0] - receivable[1] == owed
    liability = balance.get(Account.PREPAID.value, (0, 0))
    assert liability[1] - liability[0] == prepaid
    # Each house's statement, read from the journal, agrees with its bills and balance.
    async with unit_of_work(company_id) as session:
        for house in houses:
            statement = await reports.house_statement(
                session, Actor.system(company_id), house_id=house
            )
            house_owed = await session.scalar(
                select(func.coalesce(func.sum(Bill.amount_cents - Bill.settled_cents), 0)).where(
                    Bill.house_id == house
                )
            )
            house_prepaid = await session.scalar(
                select(func.coalesce(func.sum(PrepaidAccount.balance_cents), 0)).where(
                    PrepaidAccount.house_id == house
                )
            )
            assert (statement.balance, statement.prepaid_closing) == (house_owed, house_prepaid)


async def _apply(company: Any, houses: list[Any], fee: Any, actor: Actor, op: tuple) -> None:  # type: ignore[type-arg]
    kind, index, amount, method = op
    house = houses[index]
    tender_method = TenderMethod(method)
    reference = "REF-1" if tender_method is not TenderMethod.CASH else ""
    async with unit_of_work(company.id) as session:
        if kind == "pay":
            await service.take_payment(
                session, actor, house_id=house, tenders=[Tender(tender_method, amount, reference)]
            )
        elif kind == "pay_bill":
            account = await service.house_account(session, actor, house_id=house)
            await service.take_payment(
                session,
                actor,
                house_id=house,
                tenders=[Tender(tender_method, amount, reference)],
                bill_ids=[b.bill.id for b in account.bills[:2]],
            )
        elif kind == "deposit":
            await service.take_payment(
                session, actor, house_id=house, tenders=[Tender(tender_method, amount)], bill_ids=[]
            )
        elif kind == "use_prepaid":
            account = await service.house_account(session, actor, house_id=house)
            await service.take_payment(
                session,
                actor,
                house_id=house,
                tenders=[],
                use_prepaid_cents=min(amount, account.prepaid_cents),
            )
        elif kind == "void_last":
            last = await session.scalar(
                select(Receipt)
                .where(Receipt.status == ReceiptStatus.PAID.value)
                .order_by(Receipt.receipt_no.desc())
            )
            if last is not None:
                await service.void_receipt(session, actor, receipt_id=last.id, reason="测试作废")
        elif kind == "credit_note":
            account = await service.house_account(session, actor, house_id=house)
            if account.bills:
                bill = account.bills[0]
                note = await service.request_adjustment(
                    session,
                    actor,
                    bill_id=bill.bill.id,
                    kind=AdjustmentKind.CREDIT_NOTE,
                    amount_cents=min(amount, bill.outstanding),
                    reason="调账",
                )
                await service.decide_adjustment(
                    session, Actor.system(company.id), adjustment_id=note.id, approve=True
                )
        elif kind == "advance":
            await service.issue_advance_bills(
                session,
                actor,
                house_id=house,
                fee_item_id=fee,
                months=amount,
                start=dt.date(2026, 4, 1),
            )
        elif kind == "late_pay":
            await service.take_payment(
                session,
                actor,
                house_id=house,
                tenders=[Tender(TenderMethod.CASH, amount)],
                as_of=dt.date(2026, 9, 30),
            )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_debits_equal_credits_for_any_sequence_of_operations(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=3, late_fee_daily_bp=5)
    actor = cashier(company)
    await open_shift(company, actor)
    await _check_books(company.id)
    for op in ops:
        try:
            await _apply(company, billed.houses, billed.property_fee, actor, op)
        except DomainError:
            pass  # a refused operation (nothing to pay, prepaid already used...) changes nothing
        await _check_books(company.id, billed.houses)


def test_post_refuses_an_unbalanced_entry_before_the_database_does() -> None:
    lines = [ledger.debit(Account.CASH, 100), ledger.credit(Account.RECEIVABLE, 99)]
    try:
        ledger.check_balanced(lines)
    except ledger.UnbalancedEntry:
        pass
    else:
        raise AssertionError("an unbalanced entry was accepted")
    ledger.check_balanced([ledger.debit(Account.CASH, 100), ledger.credit(Account.PREPAID, 100)])

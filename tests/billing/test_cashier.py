"""The cashier counter: mixed tenders, allocation, prepaid, late fees, discounts, voids, shifts,
receipt numbers, and the faults of the issue (duplicates, races, foreign ids, bad amounts)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.billing import reports, service
from linli.billing.models import AdjustmentKind, Bill, Receipt, TenderMethod
from linli.billing.service import Tender
from linli.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from linli.db.engine import unit_of_work
from tests.billing.factories import PERIOD, billed_company, cashier, open_shift
from tests.factories import bearer, make_company, make_staff, staff_token

CASH = TenderMethod.CASH
CARD = TenderMethod.CARD


async def _pay(company_id: uuid.UUID, actor: Actor, **kwargs: object) -> Receipt:
    async with unit_of_work(company_id) as session:
        return await service.take_payment(session, actor, **kwargs)  # type: ignore[arg-type]


async def _account(company_id: uuid.UUID, house_id: uuid.UUID) -> service.HouseAccount:
    async with unit_of_work(company_id) as session:
        return await service.house_account(
            session, Actor.system(company_id), house_id=house_id, as_of=dt.date(2026, 3, 10)
        )


async def _balanced(company_id: uuid.UUID) -> dict[str, tuple[int, int]]:
    async with unit_of_work(company_id) as session:
        balance = await reports.trial_balance(session, Actor.system(company_id))
        owed = await session.scalar(
            select(func.coalesce(func.sum(Bill.amount_cents - Bill.settled_cents), 0))
        )
    assert sum(d for d, _ in balance.values()) == sum(c for _, c in balance.values())
    receivable = balance.get("receivable", (0, 0))
    assert receivable[0] - receivable[1] == owed  # the ledger agrees with the bills
    return balance


async def test_mixed_payment_settles_oldest_first_and_overpayment_goes_to_prepaid() -> None:
    company = await make_company()
    billed = await billed_company(company, houses=1)
    house = billed.houses[0]
    async with unit_of_work(company.id) as session:
        april = await service.issue_advance_bills(
            session,
            Actor.system(company.id),
            house_id=house,
            fee_item_id=billed.property_fee,
            months=1,
            start=dt.date(2026, 4, 1),
        )
    actor = cashier(company)
    await open_shift(company, actor, float_cents=50000)
    receipt = await _pay(
        company.id,
        actor,
        house_id=house,
        tenders=[Tender(CASH, 20000), Tender(CARD, 30000, "POS-778812")],
    )
    assert receipt.receipt_no == 1
    assert (receipt.amount_cents, receipt.allocated_cents, receipt.to_prepaid_cents) == (
        50000,
        44750,
        5250,
    )
    account = await _account(company.id, house)
    assert account.owed_cents == 0 and account.prepaid_cents == 5250
    assert april[0].period_start == dt.date(2026, 4, 1)
    balance = await _balanced(company.id)
    assert balance["cash"] == (20000, 0)
    assert balance["card_clearing"] == (30000, 0)
    assert balance["prepaid"] == (0, 5250)
    # The next payment uses the prepaid balance.
    async with unit_of_work(company.id) as session:
        may = await service.issue_advance_bills(
            session,
            Actor.system(company.id),
            house_id=house,
            fee_item_id=billed.property_fee,
            months=1,
            start=dt.date(2026, 5, 1),
        )
    second = await _pay(
        company.id,
        actor,
        house_id=house,
        tenders=[Tender(CASH, 17125)],
        bill_ids=[may[0].id],
        use_prepaid_cents=5250,
    )
    assert (second.receipt_no, second.allocated_cents, second.to_prepaid_cents) == (2, 22375, 0)
    assert (await _account(company.id, house)).prepaid_cents == 0
    await _balanced(company.id)


@pytest.mark.parametrize(
    ("tenders", "code"),
    [
        ([Tender(CASH, -100)], "invalid_amount"),
        ([Tender(CASH, 0)], "invalid_amount"),
        ([Tender(CASH, 10**13)], "amount_too_large"),
        ([], "no_tenders"),
        ([Tender(CARD, 100)], "reference_required"),
        ([Tender(TenderMethod.SCAN, 100), Tender(CASH, 100)], "scan_not_alone"),
        ([Tender(TenderMethod.PREPAID, 100)], "invalid_method"),
    ],
)
async def test_bad_amounts_and_tenders_are_refused(tenders: list[Tender], code: str) -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    actor = cashier(company)
    await open_shift(company, actor)
    with pytest.raises(ValidationFailed) as refused:
        await _pay(company.id, actor, house_id=billed.houses[0], tenders=tenders)
    assert refused.value.instance_code == code
    assert (await _account(company.id, billed.houses[0])).owed_cents == 22375


async def test_payments_need_an_open_shift_and_the_close_report_shows_the_difference() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    actor = cashier(company)
    with pytest.raises(Conflict, match="shift"):
        await _pay(company.id, actor, house_id=billed.houses[0], tenders=[Tender(CASH, 100)])
    await open_shift(company, actor, float_cents=10000)
    await _pay(company.id, actor, house_id=billed.houses[0], tenders=[Tender(CASH, 22375)])
    voided = await _pay(
        company.id,
        actor,
        house_id=billed.houses[1],
        tenders=[Tender(CASH, 1000), Tender(TenderMethod.TRANSFER, 21375, "BANK-1")],
    )
    async with unit_of_work(company.id) as session:
        await service.void_receipt(session, actor, receipt_id=voided.id, reason="收错房号")
    async with unit_of_work(company.id) as session:
        report = await service.close_shift(session, actor, counted_cash_cents=32300)
        assert report.by_method == {"cash": 22375}
        assert (report.receipts, report.voided, report.expected_cash_cents) == (2, 1, 32375)
        assert report.shift.difference_cents == -75
    await _balanced(company.id)


async def test_a_void_restores_the_bills_keeps_the_number_and_only_today() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    actor = cashier(company)
    await open_shift(company, actor)
    first = await _pay(company.id, actor, house_id=billed.houses[0], tenders=[Tender(CASH, 30000)])
    async with unit_of_work(company.id) as session:
        with pytest.raises(ValidationFailed):
            await service.void_receipt(session, actor, receipt_id=first.id, reason=" ")
    async with unit_of_work(company.id) as session:
        voided = await service.void_receipt(session, actor, receipt_id=first.id, reason="重复收费")
        assert voided.status == "voided"
    account = await _account(company.id, billed.houses[0])
    assert (account.owed_cents, account.prepaid_cents) == (22375, 0)
    second = await _pay(company.id, actor, house_id=billed.houses[0], tenders=[Tender(CASH, 22375)])
    assert second.receipt_no == 2  # the voided receipt keeps number 1: no gap, no reuse
    async with unit_of_work(company.id) as session:
        await session.execute(
            update(Receipt)
            .where(Receipt.id == second.id)
            .values(paid_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        )
    async with unit_of_work(company.id) as session:
        with pytest.raises(Conflict) as refused:
            await service.void_receipt(session, actor, receipt_id=second.id, reason="太晚了")
    assert refused.value.instance_code == "void_not_same_day"
    await _balanced(company.id)


async def test_two_cashiers_paying_one_bill_at_once_one_wins_the_other_is_told() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    (bill,) = (await _account(company.id, billed.houses[0])).bills
    one, two = cashier(company), cashier(company)
    await open_shift(company, one)
    await open_shift(company, two)
    results = await asyncio.gather(
        _pay(
            company.id,
            one,
            house_id=billed.houses[0],
            tenders=[Tender(CASH, 22375)],
            bill_ids=[bill.bill.id],
        ),
        _pay(
            company.id,
            two,
            house_id=billed.houses[0],
            tenders=[Tender(CASH, 22375)],
            bill_ids=[bill.bill.id],
        ),
        return_exceptions=True,
    )
    receipts = [r for r in results if isinstance(r, Receipt)]
    refusals = [r for r in results if isinstance(r, Conflict)]
    assert len(receipts) == 1 and len(refusals) == 1, results
    assert refusals[0].instance_code == "bill_already_settled"
    account = await _account(company.id, billed.houses[0])
    assert (account.owed_cents, account.prepaid_cents) == (0, 0)
    await _balanced(company.id)


async def test_receipt_numbers_have_no_gaps_and_no_duplicates_under_concurrency() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=8)
    actors = [cashier(company) for _ in range(4)]
    for actor in actors:
        await open_shift(company, actor)

    async def pay(index: int) -> Receipt | Exception:
        try:
            return await _pay(
                company.id,
                actors[index % 4],
                house_id=billed.houses[index % 8],
                tenders=[Tender(CASH, 1000 + index)],
            )
        except Exception as exc:  # a refused one must not burn a number
            return exc

    bad = await _pay(company.id, actors[0], house_id=billed.houses[0], tenders=[Tender(CASH, 5)])
    assert bad.receipt_no == 1
    with pytest.raises(ValidationFailed):  # refused before numbering
        await _pay(company.id, actors[0], house_id=billed.houses[0], tenders=[Tender(CASH, -5)])
    results = await asyncio.gather(*(pay(i) for i in range(24)))
    assert all(isinstance(r, Receipt) for r in results), results
    async with unit_of_work(company.id) as session:
        numbers = sorted(n or 0 for n in (await session.scalars(select(Receipt.receipt_no))).all())
    assert numbers == list(range(1, 26))
    await _balanced(company.id)


async def test_paying_another_companys_bill_or_house_is_not_found() -> None:
    company_a, company_b = await make_company(), await make_company()
    billed_a = await billed_company(company_a, houses=1)
    billed_b = await billed_company(company_b, houses=1)
    (bill_a,) = (await _account(company_a.id, billed_a.houses[0])).bills
    thief = cashier(company_b)
    await open_shift(company_b, thief)
    with pytest.raises(NotFound):
        await _pay(company_b.id, thief, house_id=billed_a.houses[0], tenders=[Tender(CASH, 100)])
    with pytest.raises(NotFound):
        await _pay(
            company_b.id,
            thief,
            house_id=billed_b.houses[0],
            tenders=[Tender(CASH, 22375)],
            bill_ids=[bill_a.bill.id],
        )
    assert (await _account(company_a.id, billed_a.houses[0])).owed_cents == 22375


async def test_late_fees_accrue_after_grace_are_capped_and_waivable_with_approval() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2, late_fee_daily_bp=5)  # 0.05% a day, cap 20%
    due = PERIOD + dt.timedelta(days=15)
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        ten_days = await service.house_account(
            session, system, house_id=billed.houses[0], as_of=due + dt.timedelta(days=10)
        )
        years = await service.house_account(
            session, system, house_id=billed.houses[0], as_of=due + dt.timedelta(days=3000)
        )
    assert ten_days.late_fee_cents == 112  # 22375 × 0.0005 × 10 = 111.875
    assert years.late_fee_cents == 4475  # capped at 20% of the bill
    actor = cashier(company)
    await open_shift(company, actor)
    async with unit_of_work(company.id) as session:
        receipt = await service.take_payment(
            session,
            actor,
            house_id=billed.houses[0],
            tenders=[Tender(CASH, 22375 + 112)],
            as_of=due + dt.timedelta(days=10),
        )
        assert (receipt.allocated_cents, receipt.to_prepaid_cents) == (22487, 0)
    # A waiver: asked by the cashier, approved by someone else, never by the asker.
    (bill,) = (await _account(company.id, billed.houses[1])).bills
    async with unit_of_work(company.id) as session:
        waiver = await service.request_adjustment(
            session,
            actor,
            bill_id=bill.bill.id,
            kind=AdjustmentKind.LATE_FEE_WAIVER,
            amount_cents=0,
            reason="业主住院",
        )
    async with unit_of_work(company.id) as session:
        with pytest.raises(PermissionDenied):
            await service.decide_adjustment(session, actor, adjustment_id=waiver.id, approve=True)
    async with unit_of_work(company.id) as session:
        await service.decide_adjustment(
            session, cashier(company), adjustment_id=waiver.id, approve=True
        )
        later = await service.house_account(
            session,
            Actor.system(company.id),
            house_id=billed.houses[1],
            as_of=due + dt.timedelta(days=100),
        )
    assert later.late_fee_cents == 0
    balance = await _balanced(company.id)
    assert balance["late_fee_income"] == (0, 112)


async def test_credit_note_needs_a_reason_and_an_approver() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    (bill,) = (await _account(company.id, billed.houses[0])).bills
    asker, approver = cashier(company), cashier(company)
    async with unit_of_work(company.id) as session:
        with pytest.raises(ValidationFailed):
            await service.request_adjustment(
                session,
                asker,
                bill_id=bill.bill.id,
                kind=AdjustmentKind.CREDIT_NOTE,
                amount_cents=99999999,
                reason="多收",
            )
        note = await service.request_adjustment(
            session,
            asker,
            bill_id=bill.bill.id,
            kind=AdjustmentKind.CREDIT_NOTE,
            amount_cents=2375,
            reason="面积登记有误",
        )
    async with unit_of_work(company.id) as session:
        await service.decide_adjustment(session, approver, adjustment_id=note.id, approve=True)
    async with unit_of_work(company.id) as session:
        with pytest.raises(Conflict):
            await service.decide_adjustment(session, approver, adjustment_id=note.id, approve=True)
    assert (await _account(company.id, billed.houses[0])).owed_cents == 20000
    balance = await _balanced(company.id)
    assert balance["revenue"] == (2375, 22375)


async def test_pay_twelve_months_get_one_free() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        await service.add_discount_rule(
            session,
            system,
            fee_item_id=billed.property_fee,
            name="预交12个月送1个月",
            min_months=12,
            free_months=1,
        )
        ahead = await service.issue_advance_bills(
            session,
            system,
            house_id=billed.houses[0],
            fee_item_id=billed.property_fee,
            months=12,
            start=dt.date(2026, 4, 1),
        )
    actor = cashier(company)
    await open_shift(company, actor)
    receipt = await _pay(
        company.id,
        actor,
        house_id=billed.houses[0],
        tenders=[Tender(CASH, 11 * 22375)],
        bill_ids=[b.id for b in ahead],
    )
    assert (receipt.allocated_cents, receipt.discount_cents, receipt.to_prepaid_cents) == (
        11 * 22375,
        22375,
        0,
    )
    account = await _account(company.id, billed.houses[0])
    assert [b.bill.period_start for b in account.bills] == [PERIOD]  # only March is still owed
    balance = await _balanced(company.id)
    assert balance["discount"] == (22375, 0)


async def test_scan_to_pay_waits_for_the_provider_then_settles_with_a_number() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    actor = cashier(company)
    await open_shift(company, actor)
    pending = await _pay(
        company.id, actor, house_id=billed.houses[0], tenders=[Tender(TenderMethod.SCAN, 22375)]
    )
    assert (pending.status, pending.receipt_no) == ("pending", None)
    assert (await _account(company.id, billed.houses[0])).owed_cents == 22375
    async with unit_of_work(company.id) as session:
        with pytest.raises(Conflict):
            await service.confirm_online_payment(
                session,
                Actor.system(company.id),
                receipt_id=pending.id,
                provider_reference="WX-1",
                amount_cents=1,
            )
    for _ in range(2):  # the provider may notify twice
        async with unit_of_work(company.id) as session:
            paid = await service.confirm_online_payment(
                session,
                Actor.system(company.id),
                receipt_id=pending.id,
                provider_reference="WX-4200001",
                amount_cents=22375,
            )
            assert (paid.status, paid.receipt_no) == ("paid", 1)
    assert (await _account(company.id, billed.houses[0])).owed_cents == 0
    balance = await _balanced(company.id)
    assert balance["scan_clearing"] == (22375, 0)


async def test_the_same_payment_submitted_twice_gives_one_receipt(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    staff_id = await make_staff(company, roles=(Role.CASHIER,), all_communities=True)
    headers = bearer(staff_token(company, staff_id, roles=(Role.CASHIER,)))
    opened = await client.post(
        "/api/v1/billing/shifts",
        headers=headers,
        json={"community_id": str(company.communities[0]), "opening_float_cents": 0},
    )
    assert opened.status_code == 201, opened.text
    body = {
        "house_id": str(billed.houses[0]),
        "tenders": [
            {"method": "cash", "amount_cents": 10000},
            {"method": "card", "amount_cents": 12375, "reference": "POS-1"},
        ],
        "payer_name": "张三",
    }
    key = {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
    first, second = await asyncio.gather(
        client.post("/api/v1/billing/receipts", headers=headers | key, json=body),
        client.post("/api/v1/billing/receipts", headers=headers | key, json=body),
    )
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["receipt_no"] == 1
    async with unit_of_work(company.id) as session:
        assert len((await session.scalars(select(Receipt))).all()) == 1
    changed = await client.post(
        "/api/v1/billing/receipts", headers=headers | key, json=body | {"payer_name": "李四"}
    )
    assert changed.status_code == 422
    for bad in (
        {"method": "cash", "amount_cents": -1},
        {"method": "cash", "amount_cents": 1.5},
        {"method": "gold", "amount_cents": 1},
    ):
        refused = await client.post(
            "/api/v1/billing/receipts", headers=headers, json=body | {"tenders": [bad]}
        )
        assert refused.status_code == 422, refused.text


async def test_prepaid_auto_deduct_pays_new_bills_when_the_owner_chose_it() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    actor = cashier(company)
    await open_shift(company, actor)
    for house in billed.houses:  # settle March, leave 300 元 on each balance
        await _pay(company.id, actor, house_id=house, tenders=[Tender(CASH, 22375 + 30000)])
    async with unit_of_work(company.id) as session:
        await service.set_auto_deduct(session, actor, house_id=billed.houses[0], enabled=True)
    from tests.billing.factories import issue_run

    await issue_run(company, period=dt.date(2026, 4, 1))
    chose = await _account(company.id, billed.houses[0])
    did_not = await _account(company.id, billed.houses[1])
    assert (chose.owed_cents, chose.prepaid_cents) == (0, 30000 - 22375)
    assert (did_not.owed_cents, did_not.prepaid_cents) == (22375, 30000)
    await _balanced(company.id)


async def test_the_counter_finds_a_house_by_owner_phone_name_or_number() -> None:
    from tests.estate.factories import make_resident

    company = await make_company(communities=1)
    billed = await billed_company(company, houses=3)
    await make_resident(company, house_id=billed.houses[1], name="欧阳收费", phone="13811112222")
    actor = cashier(company)
    async with unit_of_work(company.id) as session:
        by_phone = await service.find_houses(session, actor, q="138 1111 2222")
        by_name = await service.find_houses(session, actor, q="欧阳")
        by_number = await service.find_houses(session, actor, q="1栋1单元103")
        nobody = await service.find_houses(session, actor, q="13800000000")
    assert [h.house_id for h in by_phone] == [billed.houses[1]]
    assert by_phone[0].owners == ["欧阳收费"] and by_phone[0].label == "1-1-102"
    assert [h.house_id for h in by_name] == [billed.houses[1]]
    assert [h.house_id for h in by_number] == [billed.houses[2]]
    assert nobody == []


async def test_cashier_day_report_comes_from_the_ledger_net_of_voids() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    actor = cashier(company)
    await open_shift(company, actor)
    kept = await _pay(
        company.id,
        actor,
        house_id=billed.houses[0],
        tenders=[Tender(CASH, 10000), Tender(CARD, 12375, "POS-1")],
    )
    voided = await _pay(company.id, actor, house_id=billed.houses[1], tenders=[Tender(CASH, 500)])
    async with unit_of_work(company.id) as session:
        await service.void_receipt(session, actor, receipt_id=voided.id, reason="收错")
        rows = await reports.cashier_day(session, actor, day=service.today())
    assert {(r.method, r.receipts, r.cents) for r in rows} == {
        ("cash", 1, 10000),
        ("card", 1, 12375),
    }
    assert {r.cashier_id for r in rows} == {actor.id}
    del kept


async def test_a_counter_payment_is_a_fixed_number_of_statements_however_many_bills() -> None:
    """The hot path (issue #5: p99 < 30 ms): reads of house, shift, prepaid and bills, then
    ONE write for receipt number, receipt, late fees, tenders, allocations, bills, prepaid
    and journal; audit, outbox and its job. Late fees and more bills add no statement."""
    from sqlalchemy import event

    from linli.db.engine import get_engine

    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2, late_fee_daily_bp=5)
    few, many = billed.houses
    async with unit_of_work(company.id) as session:
        await service.issue_advance_bills(
            session,
            Actor.system(company.id),
            house_id=many,
            fee_item_id=billed.property_fee,
            months=6,
            start=dt.date(2026, 4, 1),
        )
    actor = cashier(company)
    await open_shift(company, actor)
    counts: list[int] = []
    for house, cents in ((few, 30000), (many, 7 * 30000)):
        statements: list[str] = []

        def count(*args: object, into: list[str] = statements) -> None:
            into.append(str(args[2]))

        engine = get_engine().sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            receipt = await _pay(
                company.id,
                actor,
                house_id=house,
                tenders=[Tender(CASH, cents // 2), Tender(CARD, cents - cents // 2, "POS-1")],
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
        assert receipt.receipt_no is not None and receipt.created_at is not None
    assert counts[0] == counts[1] <= 9, counts
    async with unit_of_work(company.id) as session:
        late = await session.scalar(
            select(func.count()).select_from(Bill).where(Bill.late_fee_of.is_not(None))
        )
    assert late and late >= 2  # both payments charged late fees inside the one write
    await _balanced(company.id)

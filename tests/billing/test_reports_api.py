"""Aging, dunning, statements and ledger reports; the HTTP API end to end; the money helpers."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import text

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.billing import reports, service
from linli.billing.models import TenderMethod
from linli.billing.money import capitals, parse_yuan, yuan
from linli.billing.service import Tender
from linli.db.engine import unit_of_work
from tests.billing.factories import billed_company, cashier, issue_run, open_shift
from tests.factories import bearer, make_company, make_staff, staff_token


@pytest.mark.parametrize(
    ("cents", "words"),
    [
        (123456, "壹仟贰佰叁拾肆元伍角陆分"),
        (100000, "壹仟元整"),
        (10010, "壹佰元壹角整"),
        (100005, "壹仟元零伍分"),
        (5, "伍分"),
        (0, "零元整"),
        (100000001, "壹佰万元零壹分"),
    ],
)
def test_amount_in_chinese_capitals(cents: int, words: str) -> None:
    assert capitals(cents) == words


def test_yuan_formatting_and_parsing() -> None:
    assert yuan(123456) == "1,234.56" and yuan(-5) == "-0.05"
    assert parse_yuan("1,234.56") == 123456
    for bad in ("1.234", "abc", "NaN"):
        with pytest.raises(ValueError):
            parse_yuan(bad)


async def test_aging_buckets_by_days_past_due_at_each_level() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)  # March 2026, due 2026-03-16
    for month in (dt.date(2025, 6, 1), dt.date(2025, 11, 1), dt.date(2026, 1, 1)):
        await issue_run(company, period=month)
    as_of = dt.date(2026, 4, 20)  # March: 35 days, January: 94, November: 156, June: 309
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        rows = await reports.arrears_aging(session, system, as_of=as_of)
        houses = await reports.arrears_aging(
            session, system, level=reports.AgingLevel.HOUSE, as_of=as_of
        )
        await reports.label_rows(session, system, houses, reports.AgingLevel.HOUSE)
        dunning = await reports.dunning_list(
            session, system, community_id=company.communities[0], min_days=200, as_of=as_of
        )
    (row,) = rows
    assert row.buckets == {"0-30": 0, "31-90": 44750, "91-180": 89500, "180+": 44750}
    assert len(houses) == 2 and {h.total for h in houses} == {4 * 22375}
    assert {h.label for h in houses} == {"1-1-101", "1-1-102"}
    assert [d.owed_cents for d in dunning] == [22375, 22375]  # what is 200+ days overdue
    assert all(d.oldest_due == dt.date(2025, 6, 16) for d in dunning)
    del billed


async def test_statement_collection_income_and_cashier_day_come_from_the_ledger() -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    actor = cashier(company)
    await open_shift(company, actor)
    async with unit_of_work(company.id) as session:
        await service.take_payment(
            session, actor, house_id=billed.houses[0], tenders=[Tender(TenderMethod.CASH, 30000)]
        )
    today = service.today()
    async with unit_of_work(company.id) as session:
        statement = await reports.house_statement(session, actor, house_id=billed.houses[0])
        collection = await reports.collection_rate(
            session, actor, since=today.replace(day=1), until=today + dt.timedelta(days=1)
        )
        income = await reports.income_by_fee_item(
            session, actor, since=today - dt.timedelta(days=1), until=today + dt.timedelta(days=1)
        )
        day = await reports.cashier_day(session, actor, day=today)
    assert [(line.charged, line.paid, line.balance) for line in statement.lines] == [
        (22375, 0, 22375),
        (0, 22375, 0),
    ]
    (month,) = collection
    assert (month.charged, month.collected) == (44750, 22375) and month.rate == 0.5
    assert [(r.name, r.cents) for r in income] == [("物业费", 44750)]
    assert [(r.method, r.receipts, r.cents) for r in day] == [("cash", 1, 30000)]


async def test_api_cashier_flow_receipt_pdf_reports_and_permissions(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    admin = bearer(staff_token(company))
    staff_id = await make_staff(company, roles=(Role.CASHIER,), all_communities=True)
    teller = bearer(staff_token(company, staff_id, roles=(Role.CASHIER,)))
    denied = await client.post(
        "/api/v1/billing/fee-items",
        headers=teller,
        json={
            "community_id": str(company.communities[0]),
            "code": "X",
            "name": "X",
            "kind": "fixed",
        },
    )
    assert denied.status_code == 403
    created = await client.post(
        "/api/v1/billing/fee-items",
        headers=admin,
        json={
            "community_id": str(company.communities[0]),
            "code": "LJF",
            "name": "垃圾清运费",
            "kind": "fixed",
        },
    )
    assert created.status_code == 201, created.text
    price = await client.post(
        f"/api/v1/billing/fee-items/{created.json()['id']}/prices",
        headers=admin,
        json={"effective_from": "2026-01-01", "unit_price": "1500"},
    )
    assert price.status_code == 201, price.text
    preview = await client.post(
        "/api/v1/billing/runs/preview",
        headers=admin,
        json={"community_id": str(company.communities[0]), "period": "2026-04-09"},
    )
    assert preview.json()["bills"] == 4 and preview.json()["total_cents"] == 2 * (22375 + 1500)
    run = await client.post(
        "/api/v1/billing/runs",
        headers=admin,
        json={"community_id": str(company.communities[0]), "period": "2026-04-09"},
    )
    assert run.status_code == 202 and run.json()["status"] == "queued"
    assert await service.run_job(company.id, uuid.UUID(run.json()["id"])) == "issued"
    got = await client.get(f"/api/v1/billing/runs/{run.json()['id']}", headers=admin)
    assert got.json()["bill_count"] == 4 and got.json()["done_chunks"] == got.json()["total_chunks"]

    found = await client.get(
        "/api/v1/billing/cashier/houses", headers=teller, params={"q": "1-1-101"}
    )
    assert [h["house_id"] for h in found.json()] == [str(billed.houses[0])]
    account = await client.get(f"/api/v1/billing/houses/{billed.houses[0]}/account", headers=teller)
    assert account.json()["owed_cents"] == 22375 * 2 + 1500
    no_shift = await client.post(
        "/api/v1/billing/receipts",
        headers=teller,
        json={
            "house_id": str(billed.houses[0]),
            "tenders": [{"method": "cash", "amount_cents": 1}],
        },
    )
    assert no_shift.status_code == 409 and no_shift.json()["code"] == "shift_not_open"
    await client.post(
        "/api/v1/billing/shifts",
        headers=teller,
        json={"community_id": str(company.communities[0]), "opening_float_cents": 20000},
    )
    paid = await client.post(
        "/api/v1/billing/receipts",
        headers=teller,
        json={
            "house_id": str(billed.houses[0]),
            "payer_name": "王小明",
            "tenders": [
                {"method": "cash", "amount_cents": 23456},
                {"method": "card", "amount_cents": 100000, "reference": "POS-42"},
            ],
        },
    )
    assert paid.status_code == 201, paid.text
    receipt = paid.json()
    assert receipt["to_prepaid_cents"] == 123456 - 46250
    pdf = await client.get(f"/api/v1/billing/receipts/{receipt['id']}/pdf", headers=teller)
    assert pdf.headers["content-type"] == "application/pdf"
    words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "壹仟贰佰叁拾肆元伍角陆分" in words and "00000001" in words and "盖章" in words
    voided = await client.post(
        f"/api/v1/billing/receipts/{receipt['id']}/void", headers=teller, json={"reason": "x"}
    )
    assert voided.status_code == 422
    closed = await client.post(
        "/api/v1/billing/shifts/current/close", headers=teller, json={"counted_cash_cents": 43456}
    )
    assert closed.json()["shift"]["difference_cents"] == 0
    for path in (
        "/reports/aging?level=house",
        "/reports/collection",
        "/reports/income",
        "/reports/cashier-day",
        "/ledger/trial-balance",
        f"/houses/{billed.houses[0]}/statement",
    ):
        response = await client.get("/api/v1/billing" + path, headers=admin)
        assert response.status_code == 200, (path, response.text)
    book = await client.get("/api/v1/billing/reports/income.xlsx", headers=admin)
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("fee item", "yuan") and ("物业费", 895) in rows[1:]
    other = await make_company(communities=1)
    foreign = await client.get(
        f"/api/v1/billing/receipts/{receipt['id']}", headers=bearer(staff_token(other))
    )
    assert foreign.status_code == 404


async def test_bill_natural_key_refuses_duplicates_at_the_database(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    await billed_company(company, houses=1)
    with pytest.raises(Exception, match="uq_bills"):
        async with unit_of_work(company.id) as session:
            await session.execute(
                text(
                    "INSERT INTO bills (tenant_id, id, community_id, building_id, house_id,"
                    " fee_item_id, subject_id, period_start, period_end, due_on, quantity,"
                    " amount_cents, settled_cents, late_fee_waived) SELECT tenant_id,"
                    " gen_random_uuid(), community_id, building_id, house_id, fee_item_id,"
                    " subject_id, period_start, period_end, due_on, quantity, 1, 0, false"
                    " FROM bills"
                )
            )


async def test_dunning_reminders_reach_the_owners_once_a_day() -> None:
    from tests.estate.factories import make_resident, random_phone

    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    await make_resident(company, house_id=billed.houses[0], name="欠费业主", phone=random_phone())
    system = Actor.system(company.id)
    day = dt.date(2026, 6, 1)  # March's bills are 77 days overdue
    async with unit_of_work(company.id) as session:
        first = await service.send_reminders(
            session, system, community_id=company.communities[0], min_days=30, as_of=day
        )
    async with unit_of_work(company.id) as session:
        again = await service.send_reminders(
            session, system, community_id=company.communities[0], min_days=30, as_of=day
        )
    assert first == (2, 1)  # two houses owe; one has an owner on file
    assert again == (2, 0)  # the same day: no second message


async def test_meter_readings_import_keeps_good_rows_and_names_bad_ones(client) -> None:  # type: ignore[no-untyped-def]
    from tests.estate.factories import make_houses

    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    admin = bearer(staff_token(company))
    water = await client.post(
        "/api/v1/billing/fee-items",
        headers=admin,
        json={
            "community_id": str(company.communities[0]),
            "code": "SF",
            "name": "水费",
            "kind": "metered",
            "unit": "m³",
        },
    )
    item = water.json()["id"]
    rows = [
        {"fee_item_id": item, "house_id": str(houses[0]), "read_on": "2026-02-28", "reading": "10"},
        {"fee_item_id": item, "house_id": str(houses[0]), "read_on": "2026-03-31", "reading": "8"},
        {
            "fee_item_id": item,
            "house_id": str(uuid.uuid4()),
            "read_on": "2026-03-31",
            "reading": "1",
        },
        {"fee_item_id": item, "house_id": str(houses[1]), "read_on": "2026-03-31", "reading": "5"},
    ]
    imported = await client.post(
        "/api/v1/billing/meter-readings/batch", headers=admin, json={"rows": rows}
    )
    assert imported.status_code == 200, imported.text
    codes = [(r["index"], r["code"]) for r in imported.json()]
    assert codes == [(0, ""), (1, "meter_reading_backwards"), (2, "house_not_found"), (3, "")]
    listed = await client.get(f"/api/v1/billing/houses/{houses[0]}/meter-readings", headers=admin)
    assert [r["reading"] for r in listed.json()] == ["10.00"]


async def test_a_resident_sees_only_their_own_bills_and_receipts_through_the_api(client) -> None:  # type: ignore[no-untyped-def]
    from tests.estate.factories import make_resident, make_resident_account, random_phone

    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    phone = random_phone()
    await make_resident(company, house_id=billed.houses[0], name="住户乙", phone=phone)
    _, token = await make_resident_account(phone)
    actor = cashier(company)
    await open_shift(company, actor)
    async with unit_of_work(company.id) as session:
        mine = await service.take_payment(
            session, actor, house_id=billed.houses[0], tenders=[Tender(TenderMethod.CASH, 10000)]
        )
        theirs = await service.take_payment(
            session, actor, house_id=billed.houses[1], tenders=[Tender(TenderMethod.CASH, 10000)]
        )
    me = await client.get("/api/v1/billing/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    body = me.json()
    assert [h["house_id"] for h in body["houses"]] == [str(billed.houses[0])]
    assert body["houses"][0]["owed_cents"] == 12375
    assert [r["receipt_id"] for r in body["receipts"]] == [str(mine.id)]
    own = await client.get(
        f"/api/v1/billing/me/receipts/{company.id}/{mine.id}/pdf", headers=bearer(token)
    )
    assert own.status_code == 200 and own.content.startswith(b"%PDF")
    other = await client.get(
        f"/api/v1/billing/me/receipts/{company.id}/{theirs.id}/pdf", headers=bearer(token)
    )
    assert other.status_code == 404
    staff_only = await client.get("/api/v1/billing/receipts", headers=bearer(token))
    assert staff_only.status_code == 403

"""Console and portal pages of billing through a browser-like client (cookies, CSRF, forms)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from linli.auth.actor import Actor
from linli.billing import service
from linli.billing.models import TenderMethod
from linli.db.engine import unit_of_work
from tests.billing.factories import billed_company
from tests.estate.factories import make_resident, random_phone
from tests.factories import PASSWORD, make_company
from tests.web.pageutil import csrf_of, new_ip, resident_sign_in, staff_sign_in, text_of


@pytest.fixture
async def web(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_console_cashier_takes_a_mixed_payment_once_and_closes_the_shift(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=2)
    signed = await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    assert signed.status_code == 303, signed.text
    for path in (
        "/console/billing",
        "/console/billing/runs?period=2026-04",
        "/console/billing/reports",
        "/console/billing/shift",
    ):
        page = await web.get(path)
        assert page.status_code == 200, (path, page.text[:500])
    assert "物业费" in text_of(await web.get("/console/billing"))
    preview = await web.get("/console/billing/runs?period=2026-04")
    assert "2 " in text_of(preview) and "447.50" in text_of(preview)

    counter = await web.get("/console/billing/cashier")
    opened = await web.post(
        "/console/billing/shift/open",
        data={"csrf_token": csrf_of(counter), "opening_float": "100.00"},
    )
    assert opened.status_code == 303
    found = await web.get("/console/billing/cashier", params={"q": "1-1-101"})
    assert "223.75" in text_of(found), text_of(found)[:2000]
    form = {
        "csrf_token": csrf_of(found),
        "house_id": str(billed.houses[0]),
        "payment_key": "key-1",
        "cash": "100",
        "card": "200.00",
        "card_ref": "POS-9",
        "payer_name": "张三",
    }
    first = await web.post("/console/billing/pay", data=form)
    again = await web.post("/console/billing/pay", data=form)  # a double click
    assert first.status_code == again.status_code == 303, first.text[:2000]
    assert first.headers["location"] == again.headers["location"]
    receipt_page = await web.get(first.headers["location"])
    assert "叁佰元整" in text_of(receipt_page)
    printed = await web.get(first.headers["location"] + "/pdf")
    words = PdfReader(io.BytesIO(printed.content)).pages[0].extract_text()
    assert "叁佰元整" in words and "POS-9" in words
    bad = await web.post(
        "/console/billing/pay", data=form | {"payment_key": "key-2", "cash": "-5", "card": ""}
    )
    assert bad.status_code == 422
    shift = await web.get("/console/billing/shift")
    closed = await web.post(
        "/console/billing/shift/close",
        data={"csrf_token": csrf_of(shift), "counted_cash": "199.00"},
    )
    report = await web.get(closed.headers["location"])
    assert "-1.00" in text_of(report)
    arrears = await web.get("/console/billing/reports")
    assert "<svg" in arrears.text and "223.75" in text_of(arrears)  # house 1-1-102 still owes
    reminded = await web.post(
        "/console/billing/reports/remind", data={"csrf_token": csrf_of(arrears)}
    )
    assert reminded.status_code == 303 and "reminded=1" in reminded.headers["location"]
    workbook = await web.get("/console/billing/reports/aging.xlsx")
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
    aging = load_workbook(io.BytesIO(workbook.content)).active
    assert aging is not None
    assert [r[0] for r in aging.iter_rows(min_row=2, values_only=True)] == ["1-1-102"]
    # The ledger reports export too: collection, income and today's cashier report.
    exported = {}
    for name in ("collection", "income", "cashier-day"):
        response = await web.get(f"/console/billing/reports/{name}.xlsx")
        assert response.status_code == 200, (name, response.text[:300])
        sheet = load_workbook(io.BytesIO(response.content)).active
        assert sheet is not None
        exported[name] = list(sheet.iter_rows(min_row=2, values_only=True))
    assert exported["income"] == [("物业费", 447.5)]
    assert {row[1] for row in exported["cashier-day"]} == {"cash", "card"}
    assert exported["collection"][0][0] == "小区1号"


async def test_portal_shows_bills_history_prepaid_and_the_receipt_pdf(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    phone = random_phone()
    await make_resident(company, house_id=billed.houses[0], name="业主甲", phone=phone)
    actor = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"finance"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(company.id) as session:
        await service.open_shift(session, actor, community_id=company.communities[0])
    async with unit_of_work(company.id) as session:
        receipt = await service.take_payment(
            session,
            actor,
            house_id=billed.houses[0],
            tenders=[service.Tender(TenderMethod.CASH, 30000)],
        )
    signed = await resident_sign_in(web, phone)
    assert signed.status_code == 303
    page = await web.get("/portal/fees")
    assert page.status_code == 200
    text = text_of(page)
    assert "76.25" in text and "300.00" in text  # prepaid 300 - 223.75, and the payment
    printed = await web.get(f"/portal/fees/receipts/{company.id}/{receipt.id}/pdf")
    assert printed.status_code == 200
    assert "叁佰元整" in PdfReader(io.BytesIO(printed.content)).pages[0].extract_text()
    stranger = await make_company(communities=1)
    other = await billed_company(stranger, houses=1)
    del other
    foreign = await web.get(f"/portal/fees/receipts/{stranger.id}/{receipt.id}/pdf")
    assert foreign.status_code == 404


async def test_console_adjustment_is_asked_at_the_counter_and_approved_by_someone_else(
    web: httpx.AsyncClient, app: Any
) -> None:
    from linli.auth.permissions import Role
    from tests.factories import make_staff

    company = await make_company(communities=1)
    billed = await billed_company(company, houses=1)
    await make_staff(company, roles=(Role.FINANCE,), all_communities=True, username="kuaiji")
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    counter = await web.get("/console/billing/cashier", params={"house": str(billed.houses[0])})
    (bill,) = await _open_bills(company.id, billed.houses[0])
    asked = await web.post(
        "/console/billing/adjustments",
        data={
            "csrf_token": csrf_of(counter),
            "bill_id": str(bill),
            "kind": "credit_note",
            "amount": "23.75",
            "reason": "面积登记有误",
        },
    )
    assert asked.status_code == 303, asked.text[:500]
    own = await web.get("/console/billing/adjustments")
    assert "面积登记有误" in text_of(own) and 'value="yes"' not in own.text  # not by the asker

    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await staff_sign_in(other, company=company.slug, login="kuaiji", password=PASSWORD)
        listed = await other.get("/console/billing/adjustments")
        adjustment_id = listed.text.split("/console/billing/adjustments/")[1].split("/")[0]
        decided = await other.post(
            f"/console/billing/adjustments/{adjustment_id}/decision",
            data={"csrf_token": csrf_of(listed), "approve": "yes"},
        )
        assert decided.status_code == 303
    account = await web.get("/console/billing/cashier", params={"house": str(billed.houses[0])})
    assert "200.00" in text_of(account)  # 223.75 − 23.75


async def test_console_meter_reading_form_refuses_a_backward_reading(
    web: httpx.AsyncClient,
) -> None:
    import datetime as dt
    from decimal import Decimal

    from linli.billing.models import FeeKind

    company = await make_company(communities=1)
    await billed_company(company, houses=1)
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        water = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="SF",
            name="水费",
            kind=FeeKind.METERED,
        )
        await service.add_price(
            session,
            system,
            fee_item_id=water.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal(300),
        )
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/billing")
    form = {"csrf_token": csrf_of(page), "fee_item_id": str(water.id), "house": "1-1-101"}
    first = await web.post(
        "/console/billing/meter-readings", data=form | {"read_on": "2026-02-28", "reading": "120"}
    )
    assert first.status_code == 303, first.text[:500]
    backward = await web.post(
        "/console/billing/meter-readings", data=form | {"read_on": "2026-03-31", "reading": "90"}
    )
    assert backward.status_code == 422 and "120" in text_of(backward)


async def _open_bills(company_id: Any, house_id: Any) -> list[Any]:
    async with unit_of_work(company_id) as session:
        account = await service.house_account(session, Actor.system(company_id), house_id=house_id)
    return [b.bill.id for b in account.bills]

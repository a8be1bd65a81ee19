"""The payment console pages through a browser-like client (cookies, CSRF, forms): orders,
refund asked by a cashier and approved by finance, exceptions, a reconciliation report
and its export, merchant accounts for the company admin only; company B sees none of A."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from openpyxl import load_workbook

from linli.auth.permissions import Role
from linli.payments import flows
from tests.factories import PASSWORD, make_staff
from tests.payments.harness import Servers, books, make_shop, open_bills, order, servers
from tests.payments.test_payments_flow import _place
from tests.web.pageutil import csrf_of, staff_sign_in, text_of

CHINA = dt.timezone(dt.timedelta(hours=8))


@pytest_asyncio.fixture(scope="module")
async def srv(app: object) -> AsyncIterator[Servers]:
    async with servers(app) as running:
        yield running


async def _signed(srv: Servers, shop, login: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(base_url=srv.app_url)
    signed = await staff_sign_in(http, company=shop.company.slug, login=login, password=PASSWORD)
    assert signed.status_code == 303, signed.text
    return http


async def test_console_pages_refund_approval_and_reconciliation(srv: Servers) -> None:
    shop = await make_shop(srv)
    placed = await _place(shop, await open_bills(shop.tenant, shop.house))
    await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    await make_staff(shop.company, roles=(Role.CASHIER,), all_communities=True, username="cash1")
    await make_staff(shop.company, roles=(Role.FINANCE,), all_communities=True, username="fin1")

    cashier = await _signed(srv, shop, "cash1")
    finance = await _signed(srv, shop, "fin1")
    admin = await _signed(srv, shop, "admin")
    try:
        listed = await cashier.get("/console/payments")
        assert listed.status_code == 200
        assert placed.order.out_trade_no in text_of(listed)
        detail = await cashier.get(f"/console/payments/orders/{placed.order.id}")
        assert "223.75" in text_of(detail)
        too_much = await cashier.post(
            f"/console/payments/orders/{placed.order.id}/refunds",
            data={"csrf_token": csrf_of(detail), "amount": "300", "reason": "多收"},
        )
        assert too_much.status_code == 409
        asked = await cashier.post(
            f"/console/payments/orders/{placed.order.id}/refunds",
            data={"csrf_token": csrf_of(detail), "amount": "23.75", "reason": "多收了"},
        )
        assert asked.status_code == 303
        # The cashier cannot approve; finance can.
        page = await cashier.get("/console/payments/refunds")
        assert "批准" not in text_of(page) and "Approve" not in text_of(page)
        page = await finance.get("/console/payments/refunds")
        refund_id = page.text.split("/console/payments/refunds/")[1].split("/")[0]
        denied = await cashier.post(
            f"/console/payments/refunds/{refund_id}/decision",
            data={"csrf_token": csrf_of(page), "approve": "yes"},
        )
        assert denied.status_code in (403, 404) or "csrf" in denied.text.lower()
        approved = await finance.post(
            f"/console/payments/refunds/{refund_id}/decision",
            data={"csrf_token": csrf_of(page), "approve": "yes"},
        )
        assert approved.status_code == 303
        await srv.wechat.drain()
        await flows.refresh_refund(shop.tenant, uuid.UUID(refund_id))
        assert (await order(shop.tenant, placed.order.id)).refunded_cents == 2375
        assert (await books(shop.tenant))["scan_clearing"] == 20000

        recon = await finance.get("/console/payments/reconciliation")
        assert recon.status_code == 200
        ran = await finance.post(
            "/console/payments/reconciliation",
            data={
                "csrf_token": csrf_of(recon),
                "account_id": str(shop.account_id),
                "day": placed.order.created_at.astimezone(CHINA).date().isoformat(),
            },
        )
        assert ran.status_code == 303
        report = await finance.get(ran.headers["location"])
        assert report.status_code == 200
        assert "223.75" in text_of(report)
        sheet = await finance.get(ran.headers["location"] + "/report.xlsx")
        assert sheet.status_code == 200
        assert load_workbook(io.BytesIO(sheet.content)).sheetnames[0].startswith("对账")

        assert (await finance.get("/console/payments/exceptions")).status_code == 200
        # Merchant accounts: the company admin only; keys never shown back.
        assert (await finance.get("/console/payments/merchants")).status_code in (403, 404)
        merchants = await admin.get("/console/payments/merchants")
        assert merchants.status_code == 200
        assert shop.config.mchid in text_of(merchants)
        assert shop.config.apiv3_key.get_secret_value() not in merchants.text
        bad = await admin.post(
            "/console/payments/merchants",
            data={
                "csrf_token": csrf_of(merchants),
                "community_id": str(shop.company.communities[1]),
                "provider": "wechatpay",
                "config": "not json",
            },
        )
        assert bad.status_code == 422
    finally:
        for http in (cashier, finance, admin):
            await http.aclose()


async def test_company_b_console_cannot_open_company_a_pages(srv: Servers) -> None:
    a = await make_shop(srv)
    b = await make_shop(srv)
    placed = await _place(a, await open_bills(a.tenant, a.house))
    http = await _signed(srv, b, "admin")
    try:
        page = await http.get(f"/console/payments/orders/{placed.order.id}")
        assert page.status_code == 404
        listed = await http.get("/console/payments")
        assert placed.order.out_trade_no not in listed.text
        merchants = await http.get("/console/payments/merchants")
        assert a.config.mchid not in merchants.text
        counter = await http.get(f"/console/payments/counter/{placed.order.receipt_id}")
        assert counter.status_code == 404
    finally:
        await http.aclose()

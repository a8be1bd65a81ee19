"""Paying in a real browser against the WeChat Pay sandbox: the resident pays selected bills
in the portal (the sandbox pay page stands in for the WeChat sheet) and sees the result;
the cashier shows the Native QR of a scan-to-pay receipt and the page turns to paid by
itself when the payer pays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from linli.auth.permissions import Role
from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_resident, random_phone
from tests.factories import PASSWORD, make_staff
from tests.payments.harness import Servers, books, make_shop, open_bills, servers
from tests.web.pageutil import resident_sign_in, staff_sign_in

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def srv(app: object) -> AsyncIterator[Servers]:
    async with servers(app) as running:
        yield running


async def _signed_in_context(browser: Any, http: httpx.AsyncClient, url: str) -> Any:
    context = await browser.new_context(viewport={"width": 420, "height": 860}, locale="zh-CN")
    await context.add_cookies(
        [{"name": c.name, "value": c.value or "", "url": url} for c in http.cookies.jar]
    )
    return context


async def test_resident_pays_selected_bills_in_the_portal(browser: Any, srv: Servers) -> None:
    shop = await make_shop(srv)
    phone = random_phone()
    await make_resident(shop.company, house_id=shop.house, phone=phone, name="付款人")
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        signed = await resident_sign_in(http, phone)
        assert signed.status_code == 303, signed.text
        context = await _signed_in_context(browser, http, srv.app_url)
    page = await context.new_page()
    try:
        await page.goto(f"{srv.app_url}/portal/payments")
        house = page.get_by_test_id("pay-house")
        assert "223.75" in await house.inner_text()
        await page.screenshot(path=ARTIFACTS / "portal-pay.png", full_page=True)
        async with page.expect_navigation():
            await page.get_by_test_id("pay-button").click()
        # The sandbox pay page stands in for WeChat Pay's sheet.
        assert page.url.startswith(srv.wechat_url + "/sandbox/pay/")
        assert "223.75" in await page.get_by_test_id("sandbox-amount").inner_text()
        async with page.expect_navigation():
            await page.get_by_test_id("sandbox-pay").click()
        assert "Paid" in await page.get_by_test_id("sandbox-notice").inner_text()
        async with page.expect_navigation():
            await page.get_by_test_id("sandbox-return").click()
        result = page.get_by_test_id("payment-result")
        await result.wait_for()
        assert await result.get_attribute("data-status") == "paid"
        assert "已收款" in await page.locator("h1").inner_text()
        await page.screenshot(path=ARTIFACTS / "portal-paid.png", full_page=True)
    finally:
        await context.close()
    await srv.wechat.drain()
    assert await open_bills(shop.tenant, shop.house) == []
    assert (await books(shop.tenant))["receipts"] == 1


async def test_cashier_qr_page_turns_paid_when_the_payer_pays(browser: Any, srv: Servers) -> None:
    shop = await make_shop(srv)
    staff_id = await make_staff(
        shop.company, roles=(Role.CASHIER,), all_communities=True, username="cashier1"
    )
    assert staff_id
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        signed = await staff_sign_in(
            http, company=shop.company.slug, login="cashier1", password=PASSWORD
        )
        assert signed.status_code == 303, signed.text
        context = await _signed_in_context(browser, http, srv.app_url)
    page = await context.new_page()
    try:
        await page.goto(f"{srv.app_url}/console/billing/cashier")
        await page.get_by_label("备用金（元）").fill("0")
        async with page.expect_navigation():
            await page.get_by_role("button", name="开班").click()
        await page.goto(f"{srv.app_url}/console/billing/cashier?house={shop.house}")
        await page.get_by_label("扫码支付（元）").fill("223.75")
        async with page.expect_navigation():
            await page.get_by_role("button", name="确认收款").click()
        async with page.expect_navigation():
            await page.get_by_test_id("scan-to-pay").click()
        qr = page.get_by_test_id("qr")
        await qr.wait_for()
        assert await qr.locator("svg").count() == 1
        panel = page.get_by_test_id("counter-qr")
        order_id = await panel.get_attribute("data-order")
        assert order_id
        await page.screenshot(path=ARTIFACTS / "console-scan-qr.png", full_page=True)
        # The payer scans and pays (the sandbox's trade of this order).
        trades = [t for t in srv.wechat.trades.values() if t.merchant_id == shop.config.mchid]
        assert len(trades) == 1
        await srv.wechat.pay(trades[0].out_trade_no, merchant_id=shop.config.mchid)
        link = page.get_by_test_id("receipt-link")
        assert not await link.is_visible()
        await link.wait_for(state="visible", timeout=15000)
        status = await page.get_by_test_id("counter-status").inner_text()
        assert "已收款" in status
        assert not await page.get_by_test_id("qr").is_visible()
        await page.screenshot(path=ARTIFACTS / "console-scan-paid.png", full_page=True)
        async with page.expect_navigation():
            await link.click()
        assert (
            "No." in await page.locator("h1").inner_text()
            or "收据" in await page.locator("h1").inner_text()
        )
    finally:
        await context.close()
    await srv.wechat.drain()
    assert (await books(shop.tenant))["receipts"] == 1

"""The cashier counter in a real browser: find a house, take a mixed payment, print the receipt.

The receipt PDF is fetched with the page's own session and its text read with pypdf:
receipt number, house, tenders and the amount in Chinese capitals must be on it.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from tests.billing.factories import billed_company
from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_resident
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


async def test_cashier_takes_a_mixed_payment_and_prints_the_receipt(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=1)
    billed = await billed_company(company, houses=4)  # 223.75 元 each for March 2026
    await make_resident(company, house_id=billed.houses[2], name="钱收银", phone="13912345678")

    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/console/login")
        await page.get_by_label("公司代码").fill(company.slug)
        await page.get_by_label("用户名或手机号").fill("admin")
        await page.get_by_label("密码").fill(PASSWORD)
        async with page.expect_navigation():
            await page.get_by_role("button", name="登录").click()
        nav = page.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="收银台").click()
        await page.wait_for_url(f"{live_server.url}/console/billing/cashier")

        await page.get_by_label("备用金（元）").fill("200")
        async with page.expect_navigation():
            await page.get_by_role("button", name="开班").click()

        # By the owner's name: one house found, its account opens.
        await page.get_by_label("房号、业主姓名或手机号").fill("钱收银")
        async with page.expect_navigation():
            await page.get_by_role("button", name="搜索").click()
        account = page.get_by_test_id("house-account")
        assert "1-1-103" in await account.inner_text()
        assert "223.75" in await page.get_by_test_id("owed-bills").inner_text()

        await page.get_by_label("现金（元）").fill("100")
        await page.get_by_label("刷卡（元）").fill("1134.56")
        await page.get_by_label("POS 参考号").fill("POS-20260316-7")
        await page.get_by_label("交款人").fill("钱收银")
        await page.screenshot(path=ARTIFACTS / "console-cashier.png", full_page=True)
        async with page.expect_navigation():
            await page.get_by_role("button", name="确认收款").click()
        receipt = page.get_by_test_id("receipt")
        text = await receipt.inner_text()
        assert "壹仟贰佰叁拾肆元伍角陆分" in text
        assert "1,010.81" in text  # 1,234.56 − 223.75 to the prepaid balance
        await page.screenshot(path=ARTIFACTS / "console-receipt.png", full_page=True)

        link = page.get_by_role("link", name="打印收据（PDF）")
        href = await link.get_attribute("href")
        assert href is not None
        printed = await page.request.get(f"{live_server.url}{href}")
        assert printed.ok and printed.headers["content-type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(await printed.body()))
        words = "".join(p.extract_text() for p in reader.pages)
        for expected in (
            "收款收据",
            "No. 00000001",
            "1-1-103",
            "壹仟贰佰叁拾肆元伍角陆分",
            "现金 100.00",
            "刷卡 1,134.56 (POS-20260316-7)",
            "物业费",
            "盖章处",
        ):
            assert expected in words, (expected, words)

        await page.get_by_role("link", name="收银班次").click()
        await page.wait_for_url(f"{live_server.url}/console/billing/shift")
        await page.get_by_label("钱箱实点现金（元）").fill("300")
        async with page.expect_navigation():
            await page.get_by_role("button", name="交班").click()
        assert await page.get_by_test_id("difference").inner_text() == "0.00"
    finally:
        await context.close()

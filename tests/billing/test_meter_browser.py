"""Meter readings imported in a real browser: upload a GBK CSV, the dry run shows each bad
row's column and message and the jumping reading, then the import runs as a background
job whose page shows its progress and result; the jump waits on the readings page until
someone confirms it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from linli.billing import meter_import
from tests.billing.test_meter_import import ROWS, _csv, _readings, _water
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    browser,
    chromium_path,
    live_server,
    sms_gateway,
)
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


async def test_upload_dry_run_errors_then_import_and_confirm_the_jump(
    browser: Any,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    tmp_path: Any,
) -> None:
    company = await make_company(communities=1)
    await _water(company)
    before = await _readings(company)
    upload = tmp_path / "三月抄表.csv"
    upload.write_bytes(_csv(ROWS))
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/console/login")
        await page.get_by_label("公司代码").fill(company.slug)
        await page.get_by_label("用户名或手机号").fill("admin")
        await page.get_by_label("密码").fill(PASSWORD)
        async with page.expect_navigation():
            await page.get_by_role("button", name="登录").click()
        await page.goto(f"{live_server.url}/console/billing")
        async with page.expect_navigation():
            await page.get_by_role("link", name="抄表", exact=True).click()
        assert page.url == f"{live_server.url}/console/billing/meters"

        await page.get_by_label("表格文件（.xlsx 或 .csv，UTF-8 或 GBK 编码）").set_input_files(
            str(upload)
        )
        async with page.expect_navigation():
            await page.get_by_role("button", name="试导入").click()
        report = page.get_by_test_id("meter-report")
        assert "尚未写入任何数据" in await report.inner_text()
        assert await page.get_by_test_id("meter-total").inner_text() == "8"
        assert await page.get_by_test_id("meter-error-rows").inner_text() == "5"
        errors = page.get_by_test_id("meter-errors")
        rows = await errors.locator("tbody tr").all_inner_texts()
        assert [r.split("\t")[:2] for r in rows] == [
            ["4", "本期读数"],
            ["5", "房号"],
            ["6", "表类型"],
            ["7", "本期读数"],
            ["9", "抄表日期"],
        ]
        assert "低于上期读数（500.00）" in rows[3]
        assert "1-1-104" in await page.get_by_test_id("meter-jumps").inner_text()
        await page.screenshot(path=ARTIFACTS / "console-meter-dry-run.png", full_page=True)
        assert await _readings(company) == before  # the dry run wrote nothing

        await page.get_by_label("表格文件（.xlsx 或 .csv，UTF-8 或 GBK 编码）").set_input_files(
            str(upload)
        )
        await page.get_by_label("导入正确的行，跳过错误行").check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="导入", exact=True).click()
        found = re.fullmatch(
            rf"{re.escape(live_server.url)}/console/billing/meters/jobs/([0-9a-f-]+)", page.url
        )
        assert found, page.url
        status = page.get_by_test_id("meter-job-status")
        assert await status.get_attribute("data-status") == "queued"
        assert await _readings(company) == before

        # The worker's part, run here: the page refreshes itself and shows the result.
        assert await meter_import.run_job(company.id, uuid.UUID(found.group(1))) == "done"
        await page.wait_for_selector(
            '[data-testid="meter-job-status"][data-status="done"]', timeout=15000
        )
        assert await page.get_by_test_id("meter-job-created").inner_text() == "3"
        assert await page.get_by_test_id("meter-job-errors").inner_text() == "5"
        assert await page.get_by_test_id("meter-job-flagged").inner_text() == "1"
        assert await page.get_by_test_id("meter-job-progress").get_attribute("value") == "1.0"
        await page.screenshot(path=ARTIFACTS / "console-meter-job.png", full_page=True)
        assert await _readings(company) == before + 3

        async with page.expect_navigation():
            await page.get_by_role("link", name="抄表", exact=True).first.click()
        flagged = page.get_by_test_id("flagged-readings")
        assert "1-1-104" in await flagged.inner_text()
        async with page.expect_navigation():
            await flagged.get_by_role("button", name="确认").click()
        assert "没有待核实的读数" in await page.get_by_test_id("flagged-readings").inner_text()
    finally:
        await context.close()

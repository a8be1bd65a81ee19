"""Staff import a spreadsheet in a real browser: dry-run error report, then a job with progress."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import pytest
from openpyxl import Workbook

from linli.imports import service
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_company
from tests.imports.helpers import HOUSE_HEADER, count_houses
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def houses_workbook() -> bytes:
    """Three houses; the third (Excel row 4) has an area that is not a number."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HOUSE_HEADER)
    sheet.append(["C01", "3", "2", "1201", 12, "98.50", "80.20", "住宅", "已入住"])
    sheet.append(["C01", "3", "2", "1202", 12, "88.00", None, "住宅", "已交付"])
    sheet.append(["C01", "3", "2", "1203", 12, "很大", None, "住宅", "已交付"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def test_dry_run_report_then_import_with_progress(
    browser: Any, live_server: LiveServer, tmp_path: Any
) -> None:
    company = await make_company(communities=1)
    upload = tmp_path / "房屋.xlsx"
    upload.write_bytes(houses_workbook())
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
        async with page.expect_navigation():
            await nav.get_by_role("link", name="数据导入导出").click()
        assert page.url == f"{live_server.url}/console/imports"
        await page.get_by_label("文件内容").select_option("houses")
        await page.get_by_label("表格文件").set_input_files(str(upload))
        async with page.expect_navigation():
            await page.get_by_role("button", name="试导入").click()

        report = page.get_by_test_id("dry-run-report")
        await report.wait_for()
        rows = page.get_by_test_id("row-errors").locator("tbody tr")
        assert await rows.count() == 1
        cells = await rows.first.locator("td").all_inner_texts()
        assert cells[0] == "4" and cells[1] == "建筑面积" and "很大" in cells[2]
        assert await page.get_by_test_id("valid-rows").inner_text() == "2"
        assert await page.get_by_test_id("error-rows").inner_text() == "1"
        await page.screenshot(path=ARTIFACTS / "import-dry-run.png", full_page=True)
        assert await count_houses(company.id) == 0

        # The file input is empty after the round trip: choose the file again.
        await page.get_by_label("表格文件").set_input_files(str(upload))
        await page.get_by_label("跳过错误行").check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="导入", exact=True).click()
        found = re.fullmatch(
            rf"{re.escape(live_server.url)}/console/imports/jobs/([0-9a-f-]+)", page.url
        )
        assert found, page.url
        assert await page.get_by_test_id("job-status").get_attribute("data-status") == "queued"
        await page.screenshot(path=ARTIFACTS / "import-job-queued.png", full_page=True)

        # The worker's part, run here: the page's own polling must notice and show the result.
        assert await service.run_job(company.id, uuid.UUID(found.group(1))) == "done"
        await page.wait_for_selector(
            '[data-testid="job-status"][data-status="done"]', timeout=15000
        )
        assert await page.get_by_test_id("created-count").inner_text() == "2"
        assert await page.get_by_test_id("error-count").inner_text() == "1"
        assert await page.get_by_test_id("job-progress").get_attribute("value") == "1.0"
        assert "4" in await page.get_by_test_id("row-errors").locator("td").first.inner_text()
        await page.screenshot(path=ARTIFACTS / "import-job-done.png", full_page=True)
        assert await count_houses(company.id) == 2
    finally:
        await context.close()

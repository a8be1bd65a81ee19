"""Parking in a real browser: import spaces with a dry-run error report, then edit and
archive one of them from the console (the e2e fixtures: Debian chromium, live server)."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from linli.db.engine import unit_of_work
from linli.imports import service
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    browser,
    chromium_path,
    live_server,
    sms_gateway,
)
from tests.estate.factories import make_houses
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def parking_workbook() -> bytes:
    """Three spaces; the third (Excel row 4) is temporary yet names a holder house."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["小区编码", "停车场", "车位号", "车位类型", "房屋"])
    sheet.append(["C01", "地下车库B1", "B1-001", "产权", "1-1-101"])
    sheet.append(["C01", "地下车库B1", "B1-002", "租赁", ""])
    sheet.append(["C01", "地下车库B1", "B1-003", "临时", "1-1-101"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def _spaces(tenant_id: uuid.UUID) -> list[tuple[str, str, bool]]:
    async with unit_of_work(tenant_id) as session:
        rows = await session.execute(
            text(
                "SELECT space_no, usage::text, archived_at IS NOT NULL FROM parking_spaces"
                " ORDER BY space_no"
            )
        )
        return [(str(a), str(b), bool(c)) for a, b, c in rows.all()]


async def test_parking_import_dry_run_then_edit_and_archive_a_space(
    browser: Any,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    tmp_path: Any,
) -> None:
    company = await make_company(communities=1)
    await make_houses(company, buildings=1, units=1, floors=1, per_floor=1)
    upload = tmp_path / "车位.xlsx"
    upload.write_bytes(parking_workbook())
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
        await page.get_by_label("文件内容").select_option("parking_spaces")
        await page.get_by_label("表格文件").set_input_files(str(upload))
        async with page.expect_navigation():
            await page.get_by_role("button", name="试导入").click()
        await page.get_by_test_id("dry-run-report").wait_for()
        rows = page.get_by_test_id("row-errors").locator("tbody tr")
        assert await rows.count() == 1
        cells = await rows.first.locator("td").all_inner_texts()
        assert cells[0] == "4" and cells[1] == "车位类型" and "临时车位没有持有人" in cells[2]
        assert await page.get_by_test_id("valid-rows").inner_text() == "2"
        await page.screenshot(path=ARTIFACTS / "parking-import-dry-run.png", full_page=True)
        assert await _spaces(company.id) == []

        await page.get_by_label("表格文件").set_input_files(str(upload))
        await page.get_by_label("跳过错误行").check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="导入", exact=True).click()
        found = re.search(r"/console/imports/jobs/([0-9a-f-]+)$", page.url)
        assert found, page.url
        assert await service.run_job(company.id, uuid.UUID(found.group(1))) == "done"
        await page.wait_for_selector(
            '[data-testid="job-status"][data-status="done"]', timeout=15000
        )
        assert await _spaces(company.id) == [
            ("B1-001", "owned", False),
            ("B1-002", "rented", False),
        ]

        async with page.expect_navigation():
            await nav.get_by_role("link", name="车位设施").click()
        spaces = page.get_by_test_id("parking-spaces")
        async with page.expect_navigation():
            await spaces.get_by_role("link", name="编辑车位 B1-002").click()
        await page.get_by_label("车位号").fill("B1-202")
        await page.get_by_label("租期结束（租赁车位）").fill("2020-01-01")
        await page.get_by_label("租期开始（租赁车位）").fill("2021-01-01")
        async with page.expect_navigation():
            await page.get_by_role("button", name="保存", exact=True).click()
        # A lease that ends before it starts: refused on the form, nothing changed.
        lease_end = page.get_by_label("租期结束（租赁车位）")
        assert await lease_end.get_attribute("aria-invalid") == "true"
        assert "租期结束日期早于开始日期" in await page.locator("#lease_end-error").inner_text()
        assert ("B1-002", "rented", False) in await _spaces(company.id)
        await page.get_by_label("租期开始（租赁车位）").fill("2019-01-01")
        async with page.expect_navigation():
            await page.get_by_role("button", name="保存", exact=True).click()
        assert "B1-202" in await page.get_by_role("heading", level=1).inner_text()
        async with page.expect_navigation():
            await page.get_by_role("button", name="归档车位").click()
        await page.get_by_test_id("archived").wait_for()
        await page.screenshot(path=ARTIFACTS / "parking-space-archived.png", full_page=True)
        assert await _spaces(company.id) == [
            ("B1-001", "owned", False),
            ("B1-202", "rented", True),
        ]
        async with page.expect_navigation():
            await page.get_by_role("link", name="地下车库B1").click()
        assert "B1-202" not in await page.get_by_test_id("parking-spaces").inner_text()
    finally:
        await context.close()

"""Parking, facilities, vehicles and staff records in a real browser, in Chinese."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_houses, make_resident
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

DESKTOP = {"viewport": {"width": 1360, "height": 900}, "locale": "zh-CN"}


async def _sign_in(page: Any, server: LiveServer, company_slug: str) -> None:
    await page.goto(f"{server.url}/console/login")
    await page.get_by_label("公司代码").fill(company_slug)
    await page.get_by_label("用户名或手机号").fill("admin")
    await page.get_by_label("密码").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="登录").click()


async def test_parking_area_range_binding_facility_and_vehicle(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=3, units=2, floors=1, per_floor=1)
    await make_resident(company, house_id=houses[2], name="吴车主")
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    try:
        await _sign_in(page, live_server, company.slug)
        nav = page.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="车位设施").click()
        await page.wait_for_url(f"{live_server.url}/console/parking")

        await page.get_by_label("停车场名称").fill("地下车库B1")
        await page.get_by_label("地下", exact=True).check()
        async with page.expect_navigation():
            await page.get_by_role("button", name="创建停车场").click()
        assert "地下车库B1 的车位" in await page.get_by_role("heading", level=2).all_inner_texts()

        await page.get_by_label("车位编号").fill("B1-001..B1-120")
        await page.get_by_label("用途", exact=True).select_option("owned")
        async with page.expect_navigation():
            await page.get_by_role("button", name="添加车位").click()
        spaces = page.get_by_test_id("parking-spaces").locator("tbody tr")
        assert await spaces.count() == 120
        area_row = page.get_by_test_id("parking-areas").locator("tbody tr")
        assert "120" in await area_row.inner_text()

        first = spaces.first
        await first.get_by_label("车位 B1-001 的房屋").fill("2-1-101")
        async with page.expect_navigation():
            await first.get_by_role("button", name="保存").click()
        first = page.get_by_test_id("parking-spaces").locator("tbody tr").first
        assert "2-1-101" in await first.inner_text()

        await page.get_by_label("设施名称").fill("1号电梯")
        await page.get_by_label("类型", exact=True).select_option("lift")
        await page.get_by_label("位置").fill("1栋大堂")
        async with page.expect_navigation():
            await page.get_by_role("button", name="创建设施").click()
        assert "1号电梯" in await page.get_by_test_id("facilities").inner_text()
        await page.screenshot(path=ARTIFACTS / "console-parking.png", full_page=True)

        await first.get_by_role("link", name="2-1-101").click()
        await page.wait_for_url(f"{live_server.url}/console/estate/houses/{houses[2]}")
        assert "B1-001" in await page.get_by_test_id("house-spaces").inner_text()
        await page.get_by_label("车牌号").fill("粤B1234")
        async with page.expect_navigation():
            await page.get_by_role("button", name="登记车辆").click()
        assert "不是有效的" in await page.locator("#plate-error").inner_text()
        await page.get_by_label("车牌号").fill("粤BD12345")
        await page.get_by_label("车主").select_option(label="吴车主")
        async with page.expect_navigation():
            await page.get_by_role("button", name="登记车辆").click()
        vehicles = await page.get_by_test_id("vehicles").inner_text()
        assert "粤BD12345" in vehicles and "吴车主" in vehicles and "新能源" in vehicles
        await page.screenshot(path=ARTIFACTS / "console-house-vehicles.png", full_page=True)
    finally:
        await context.close()


async def test_staff_record_with_an_expiring_certificate(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=2)
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    soon = dt.date.today() + dt.timedelta(days=20)
    try:
        await _sign_in(page, live_server, company.slug)
        nav = page.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="员工档案").click()
        await page.wait_for_url(f"{live_server.url}/console/staff-records")
        async with page.expect_navigation():
            await page.get_by_role("link", name="新建员工档案").click()

        await page.get_by_label("工号").fill("E001")
        await page.get_by_label("姓名").fill("刘电工")
        await page.get_by_label("部门", exact=True).fill("工程部")
        await page.get_by_label("岗位").fill("电工")
        await page.get_by_label("外包").check()
        await page.get_by_label("入职日期").fill("2021-03-01")
        await page.get_by_label("学历").select_option("vocational")
        await page.get_by_label("小区1号").check()
        await page.get_by_label("证书 1：类型").fill("电工证")
        await page.get_by_label("证书 1：编号").fill("T-1234")
        await page.get_by_label("证书 1：有效期至").fill(soon.isoformat())
        await page.screenshot(path=ARTIFACTS / "console-staff-record-form.png", full_page=True)
        async with page.expect_navigation():
            await page.get_by_role("button", name="创建员工档案").click()
        assert "已保存" in await page.get_by_role("status").inner_text()
        flagged = page.get_by_test_id("record-certificates").locator("[data-certificate-state]")
        assert await flagged.count() == 1
        assert "即将到期" in await flagged.inner_text()

        await page.get_by_label("小区2号").check()
        await page.get_by_label("证书 2：类型").fill("消防设施操作员证")
        await page.get_by_label("证书 2：编号").fill("F-9")
        async with page.expect_navigation():
            await page.get_by_role("button", name="保存").click()
        assert "F-9" in await page.get_by_test_id("record-certificates").inner_text()

        await page.goto(f"{live_server.url}/console/staff-records")
        await page.get_by_label("用工类型").select_option("outsourced")
        async with page.expect_navigation():
            await page.get_by_role("button", name="筛选").click()
        row = page.get_by_test_id("staff-records").locator("tbody tr")
        assert await row.count() == 1
        text = await row.inner_text()
        assert "刘电工" in text and "小区1号" in text and "小区2号" in text and "即将到期" in text
        await page.screenshot(path=ARTIFACTS / "console-staff-records.png", full_page=True)
    finally:
        await context.close()


async def test_building_house_move_in_and_resident_profile_in_english(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=1)
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/console/login")
        await page.get_by_label("Company code").fill(company.slug)
        await page.get_by_label("Username or phone").fill("admin")
        await page.get_by_label("Password").fill(PASSWORD)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Sign in").click()
        nav = page.get_by_role("navigation", name="Main navigation")
        await nav.get_by_role("link", name="Estate", exact=True).click()
        await page.wait_for_url(f"{live_server.url}/console/estate")

        await page.get_by_label("Building number").fill("3")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Create building").click()
        await page.get_by_label("New unit number").fill("2")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Add unit").click()
        form = page.get_by_test_id("new-house")
        await form.get_by_label("Unit", exact=True).select_option(label="Unit 2")
        await form.get_by_label("House number").fill("1201")
        await form.get_by_label("Floor").fill("12")
        await form.get_by_label("Building area (m²)").fill("98.5")
        async with page.expect_navigation():
            await form.get_by_role("button", name="Create house").click()
        assert await page.get_by_role("heading", name="House 3-2-1201").count() == 1

        await page.get_by_label("Full name").fill("Zhou Ba")
        await page.get_by_label("Mobile number").fill("13712345678")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Move in", exact=True).click()
        members = page.get_by_test_id("members")
        assert "Zhou Ba" in await members.inner_text()
        await members.get_by_role("link", name="Zhou Ba").click()
        await page.wait_for_url(f"{live_server.url}/console/residents/**")
        await page.get_by_text("Edit profile").click()
        await page.get_by_label("Tags (separated by commas)").fill("elderly, lives alone")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save").click()
        assert "elderly, lives alone" in await page.locator(".facts").inner_text()
        assert "3-2-1201" in await page.get_by_test_id("resident-houses").inner_text()
        await page.screenshot(path=ARTIFACTS / "console-resident.png", full_page=True)
    finally:
        await context.close()

"""A repair in real browsers: the resident reports with a photo, front desk dispatches,
the technician works it on a phone, the resident confirms and rates."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer
from tests.workorders.helpers import login_of, make_desk, png_bytes

pytestmark = pytest.mark.e2e

PHONE_SCREEN = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def resident_signs_in(
    page: Any, server: LiveServer, gateway: FakeSmsGateway, phone: str
) -> None:
    await page.goto(f"{server.url}/portal/login")
    await page.get_by_label("手机号").fill(phone)
    async with page.expect_navigation():
        await page.get_by_role("button", name="获取验证码").click()
    code = gateway.last_code(f"+86{phone}")
    assert code is not None and re.fullmatch(r"\d{6}", code)
    await page.get_by_label("短信验证码").fill(code)
    async with page.expect_navigation():
        await page.get_by_role("button", name="登录", exact=True).click()
    assert page.url == f"{server.url}/portal"


async def staff_signs_in(page: Any, server: LiveServer, company: str, login: str) -> None:
    await page.goto(f"{server.url}/console/login")
    await page.get_by_label("公司代码").fill(company)
    await page.get_by_label("用户名或手机号").fill(login)
    await page.get_by_label("密码").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="登录").click()


async def test_resident_reports_desk_dispatches_technician_finishes_resident_rates(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    desk = await make_desk(routing=False)
    technician_login = await login_of(desk.company, desk.technician_id)
    resident = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    technician = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    staff = await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    portal, phone, console = (
        await resident.new_page(),
        await technician.new_page(),
        await staff.new_page(),
    )
    photo = ARTIFACTS / "leak.png"
    photo.write_bytes(png_bytes((64, 48)))
    try:
        await resident_signs_in(portal, live_server, sms_gateway, desk.resident_phone)
        await portal.get_by_role("link", name="报修").click()
        await portal.wait_for_url(f"{live_server.url}/portal/repairs")
        await portal.get_by_role("link", name="我要报修").click()
        await portal.get_by_label("描述").fill("卫生间天花板渗水")
        await portal.get_by_label("照片（每张不超过 900 KB）").set_input_files(str(photo))
        await portal.screenshot(path=ARTIFACTS / "portal-repair-form.png", full_page=True)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="提交").click()
        status = portal.get_by_test_id("my-orders").get_by_test_id("order-status")
        assert await status.inner_text() == "待派单"

        await staff_signs_in(console, live_server, desk.company.slug, "admin")
        await (
            console.get_by_role("navigation", name="主导航")
            .get_by_role("link", name="工单", exact=True)
            .click()
        )
        await console.wait_for_url(f"{live_server.url}/console/workorders")
        rows = console.get_by_test_id("orders").locator("tbody tr")
        assert await rows.count() == 1
        async with console.expect_navigation():
            await rows.first.get_by_role("link").click()
        await console.get_by_label("维修工", exact=True).select_option(str(desk.technician_id))
        async with console.expect_navigation():
            await console.get_by_role("button", name="派单").click()
        assert await console.get_by_test_id("order-status").inner_text() == "已派单"
        assert await console.locator(".wo-photos img").count() == 1
        await console.screenshot(path=ARTIFACTS / "console-workorder.png", full_page=True)

        await staff_signs_in(phone, live_server, desk.company.slug, technician_login)
        await phone.goto(f"{live_server.url}/console/tech")
        queue = phone.get_by_test_id("queue")
        assert "卫生间天花板渗水" in await queue.inner_text()
        async with phone.expect_navigation():
            await queue.get_by_role("button", name="接单").click()
        assert re.search(r"/console/tech/[0-9a-f-]+$", phone.url)  # accepted: the order opens
        await phone.get_by_label("施工内容").fill("更换防水层")
        async with phone.expect_navigation():
            await phone.get_by_role("button", name="保存").click()
        await phone.get_by_label("项目").fill("防水涂料")
        await phone.get_by_label("单价（元）").fill("48.00")
        async with phone.expect_navigation():
            await phone.get_by_role("button", name="添加").click()
        await phone.screenshot(path=ARTIFACTS / "tech-order.png", full_page=True)
        async with phone.expect_navigation():
            await phone.get_by_role("button", name="完工").click()
        assert await phone.get_by_test_id("order-status").inner_text() == "已完工，待确认"

        await portal.reload()
        card = portal.get_by_test_id("my-orders")
        assert await card.get_by_test_id("order-status").inner_text() == "已完工，待确认"
        await portal.get_by_label("4★").check()
        await portal.get_by_label("评价内容").fill("师傅很专业")
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="确认并评价").click()
        assert await card.get_by_test_id("order-status").inner_text() == "已关闭"
        await portal.screenshot(path=ARTIFACTS / "portal-repairs-rated.png", full_page=True)

        await console.reload()
        timeline = await console.get_by_test_id("timeline").inner_text()
        for step in ("已提交", "已派单", "已接单", "已记录施工", "已记录费用", "已完工", "已评价"):
            assert step in timeline
    finally:
        await resident.close()
        await technician.close()
        await staff.close()

"""The house claim flow in a real browser: a resident claims, staff approve, the home appears."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_houses
from tests.factories import PASSWORD, make_company
from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

PHONE_SCREEN = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def _resident_signs_in(page: Any, server: LiveServer, gateway: FakeSmsGateway) -> None:
    phone = f"137{secrets.randbelow(10**8):08d}"
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


async def test_resident_claims_staff_approve_and_the_home_appears(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    company = await make_company(communities=1)
    await make_houses(company, buildings=3, units=2, floors=2, per_floor=2)

    resident = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    staff = await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    portal, console = await resident.new_page(), await staff.new_page()
    try:
        await _resident_signs_in(portal, live_server, sms_gateway)
        await portal.get_by_role("link", name="我的房屋").click()
        await portal.wait_for_url(f"{live_server.url}/portal/homes")
        await portal.get_by_label("公司代码").fill(company.slug)
        await portal.get_by_label("小区代码").fill("C01")
        await portal.get_by_label("房屋", exact=True).fill("3-2-201")
        await portal.get_by_label("您的姓名").fill("周八")
        await portal.screenshot(path=ARTIFACTS / "portal-claim-form.png", full_page=True)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="提交认证").click()
        assert "待审核" in await portal.get_by_test_id("my-claims").inner_text()
        assert await portal.get_by_test_id("home").count() == 0

        await console.goto(f"{live_server.url}/console/login")
        await console.get_by_label("公司代码").fill(company.slug)
        await console.get_by_label("用户名或手机号").fill("admin")
        await console.get_by_label("密码").fill(PASSWORD)
        async with console.expect_navigation():
            await console.get_by_role("button", name="登录").click()
        nav = console.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="业主认证").click()
        await console.wait_for_url(f"{live_server.url}/console/claims")
        row = console.get_by_test_id("claims").locator("tbody tr")
        assert await row.count() == 1
        assert "3-2-201" in await row.inner_text() and "周八" in await row.inner_text()
        await console.screenshot(path=ARTIFACTS / "console-claims.png", full_page=True)
        async with console.expect_navigation():
            await row.get_by_role("button", name="通过").click()
        assert await console.get_by_test_id("claims").count() == 0

        await nav.get_by_role("link", name="房产车位").click()
        await console.wait_for_url(f"{live_server.url}/console/estate")
        assert await console.get_by_test_id("estate-tree").locator("details").count() == 3
        await console.screenshot(path=ARTIFACTS / "console-estate.png", full_page=True)

        await portal.reload()
        homes = portal.get_by_test_id("home")
        assert await homes.count() == 1
        text = await homes.inner_text()
        assert "3-2-201" in text and "业主" in text and "周八" in text
        assert "已通过" in await portal.get_by_test_id("my-claims").inner_text()
        await portal.screenshot(path=ARTIFACTS / "portal-homes.png", full_page=True)
    finally:
        await resident.close()
        await staff.close()

"""Staff and residents sign in with a real browser; screenshots land in tests/e2e/artifacts/."""

from __future__ import annotations

import importlib
import re
import secrets
from typing import Any

import pytest

from linli.app import PAGE_ROUTERS
from linli.web import nav
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.factories import PASSWORD, make_company
from tests.fakes.sms import FakeSmsGateway

pytestmark = pytest.mark.e2e

MOBILE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36"
        " (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
    ),
}


async def test_staff_signs_in_switches_community_and_language(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=2)
    context = await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/console")
        assert page.url.startswith(f"{live_server.url}/console/login")
        await page.get_by_label("公司代码").fill(company.slug)
        await page.get_by_label("用户名或手机号").fill("admin")
        await page.get_by_label("密码").fill(PASSWORD)
        await page.screenshot(path=ARTIFACTS / "console-login.png")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_url(f"{live_server.url}/console")

        current = page.get_by_test_id("current-community")
        assert await current.inner_text() == "小区1号"
        assert f"物业公司 {company.slug}" in await page.locator(".topbar").inner_text()
        nav = page.get_by_role("navigation", name="主导航")
        assert await nav.get_by_role("link", name="审计日志").count() == 1
        await page.screenshot(path=ARTIFACTS / "console.png", full_page=True)

        # The switcher submits itself on change (our small script).
        async with page.expect_navigation():
            await page.select_option("#community-select", str(company.communities[1]))
        assert await page.get_by_test_id("current-community").inner_text() == "小区2号"

        async with page.expect_navigation():
            await page.get_by_role("button", name="English").click()
        assert await page.locator("html").get_attribute("lang") == "en"
        assert await page.get_by_role("heading", level=1).inner_text() == (
            "Good to see you, 管理员"
        )
        assert await page.get_by_test_id("current-community").inner_text() == "小区2号"

        await page.get_by_role("navigation").get_by_role("link", name="Communities").click()
        await page.wait_for_url(f"{live_server.url}/console/communities")
        assert await page.locator("table tbody tr").count() == 2
        await page.screenshot(path=ARTIFACTS / "console-communities-en.png", full_page=True)

        await page.locator("details.menu summary").click()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Sign out").click()
        assert page.url.startswith(f"{live_server.url}/console/login")
    finally:
        await context.close()


async def _resident_signs_in(page: Any, server: LiveServer, gateway: FakeSmsGateway) -> str:
    phone = f"136{secrets.randbelow(10**8):08d}"
    await page.goto(f"{server.url}/portal")
    assert page.url.startswith(f"{server.url}/portal/login")
    await page.get_by_label("手机号").fill(phone)
    async with page.expect_navigation():
        await page.get_by_role("button", name="获取验证码").click()
    code = gateway.last_code(f"+86{phone}")
    assert code is not None and re.fullmatch(r"\d{6}", code)
    await page.get_by_label("短信验证码").fill(code)
    async with page.expect_navigation():
        await page.get_by_role("button", name="登录", exact=True).click()
    assert page.url == f"{server.url}/portal"
    return phone


async def test_resident_signs_in_with_a_code_on_a_phone(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    context = await browser.new_context(locale="zh-CN", **MOBILE)
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/portal/login")
        await page.screenshot(path=ARTIFACTS / "portal-login-mobile.png")
        phone = await _resident_signs_in(page, live_server, sms_gateway)
        for module in PAGE_ROUTERS:  # the pages register their tiles on import
            importlib.import_module(module)
        waiting = [tile for tile in nav.tiles() if tile.path is None]  # still being built
        assert await page.locator(".tile.is-disabled").count() == len(waiting)
        assert f"{phone[:3]}****{phone[-4:]}" in await page.locator("main").inner_text()
        await page.screenshot(path=ARTIFACTS / "portal-mobile.png", full_page=True)

        await page.get_by_role("link", name="我的账号").first.click()
        await page.wait_for_url(f"{live_server.url}/portal/me")
        await page.screenshot(path=ARTIFACTS / "portal-me-mobile.png", full_page=True)
        async with page.expect_navigation():
            await page.get_by_role("button", name="退出登录").click()
        assert page.url.startswith(f"{live_server.url}/portal/login")
    finally:
        await context.close()


async def test_resident_portal_on_a_wide_screen(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = await context.new_page()
    try:
        await _resident_signs_in(page, live_server, sms_gateway)
        await page.screenshot(path=ARTIFACTS / "portal.png", full_page=True)
    finally:
        await context.close()

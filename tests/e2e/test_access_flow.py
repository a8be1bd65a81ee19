"""A resident opens a door from the phone in a real browser; a simulated device answers."""

from __future__ import annotations

from typing import Any

import pytest

from linli.access.simulator import VirtualDevice
from tests.access.helpers import make_site, running_fleet
from tests.e2e.conftest import ARTIFACTS
from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

PHONE_SCREEN = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_resident_opens_their_building_door(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    site = await make_site()
    entrance = VirtualDevice(site.devices["entrance"])
    context = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/portal/login")
        await page.get_by_label("手机号").fill(site.phone)
        async with page.expect_navigation():
            await page.get_by_role("button", name="获取验证码").click()
        code = sms_gateway.last_code(f"+86{site.phone}")
        assert code is not None
        await page.get_by_label("短信验证码").fill(code)
        async with page.expect_navigation():
            await page.get_by_role("button", name="登录", exact=True).click()

        await page.get_by_role("link", name="开门").click()
        await page.wait_for_url(f"{live_server.url}/portal/doors")
        door = page.locator(f'li[data-door="{site.entrance_id}"]')
        assert "1栋单元门" in await door.inner_text()
        assert await page.locator(f'li[data-door="{site.other_entrance_id}"]').count() == 0

        async with running_fleet([entrance]):
            async with page.expect_navigation():
                await door.get_by_role("button", name="开门").click()
            result = page.get_by_test_id("open-result")
            assert "门已打开" in await result.inner_text()
            await page.screenshot(path=ARTIFACTS / "portal-door-opened.png", full_page=True)
        assert len(entrance.opened) == 1

        # The same door with its device gone: the page says so instead of hanging.
        async with page.expect_navigation():
            await (
                page.locator(f'li[data-door="{site.entrance_id}"]')
                .get_by_role("button", name="开门")
                .click()
            )
        assert "未及时响应" in await page.get_by_test_id("open-result").inner_text()

        await page.goto(f"{live_server.url}/portal/doors")
        async with page.expect_navigation():
            await page.get_by_role("link", name="出示我的通行码").click()
        token = await page.get_by_test_id("qr").get_attribute("data-token")
        assert token and entrance.scan(token).ok
    finally:
        await context.close()

"""Announcements in a real browser: front desk drafts, a manager approves, a resident reads it,
and the console shows the read receipt."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from linli.auth.permissions import Role
from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_houses, make_resident
from tests.factories import PASSWORD, Company, make_company, make_staff
from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

PHONE_SCREEN = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1360, "height": 860}, "locale": "zh-CN"}


async def _staff_signs_in(page: Any, server: LiveServer, company: Company, login: str) -> None:
    await page.goto(f"{server.url}/console/login")
    await page.get_by_label("公司代码").fill(company.slug)
    await page.get_by_label("用户名或手机号").fill(login)
    await page.get_by_label("密码").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="登录").click()


async def test_front_desk_drafts_manager_publishes_resident_reads(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    phone = f"137{secrets.randbelow(10**8):08d}"
    await make_resident(company, house_id=houses[0], name="孙九", phone=phone)
    await make_resident(company, house_id=houses[1], name="周十")
    await make_staff(company, roles=[Role.FRONT_DESK], all_communities=True, username="desk")
    await make_staff(company, roles=[Role.COMMUNITY_MANAGER], all_communities=True, username="mgr")

    desk_ctx = await browser.new_context(**DESKTOP)
    mgr_ctx = await browser.new_context(**DESKTOP)
    resident_ctx = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    desk, manager, portal = (
        await desk_ctx.new_page(),
        await mgr_ctx.new_page(),
        await resident_ctx.new_page(),
    )
    try:
        await _staff_signs_in(desk, live_server, company, "desk")
        nav = desk.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="公告").click()
        await desk.wait_for_url(f"{live_server.url}/console/notices")
        await desk.get_by_label("标题").fill("电梯年检")
        await desk.get_by_label("正文").fill("本周五 9:00-11:00 电梯年检,请走楼梯。")
        await desk.get_by_label("置顶").check()
        async with desk.expect_navigation():
            await desk.get_by_role("button", name="保存草稿").click()
        assert "草稿" in await desk.get_by_test_id("notice-status").inner_text()
        async with desk.expect_navigation():
            await desk.get_by_role("button", name="提交审批").click()
        assert "待审批" in await desk.get_by_test_id("notice-status").inner_text()
        assert await desk.get_by_role("button", name="审批并发布").count() == 0
        notice_url = desk.url
        await desk.screenshot(path=ARTIFACTS / "console-notice-pending.png", full_page=True)

        await _staff_signs_in(manager, live_server, company, "mgr")
        await (
            manager.get_by_role("navigation", name="主导航")
            .get_by_role("link", name="公告")
            .click()
        )
        await (
            manager.get_by_test_id("notices")
            .get_by_role("link", name=re.compile("电梯年检"))
            .click()
        )
        await manager.wait_for_url(notice_url)
        async with manager.expect_navigation():
            await manager.get_by_role("button", name="审批并发布").click()
        assert "已发布" in await manager.get_by_test_id("notice-status").inner_text()
        counts = manager.get_by_test_id("receipt-counts")
        assert "2 位住户中已有 0 位阅读" in await counts.inner_text()
        assert "孙九" in await manager.get_by_test_id("unread").inner_text()

        await portal.goto(f"{live_server.url}/portal/login")
        await portal.get_by_label("手机号").fill(phone)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="获取验证码").click()
        code = sms_gateway.last_code(f"+86{phone}")
        assert code is not None
        await portal.get_by_label("短信验证码").fill(code)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="登录", exact=True).click()
        await portal.get_by_role("link", name="公告").first.click()
        await portal.wait_for_url(f"{live_server.url}/portal/notices")
        listed = portal.get_by_test_id("notices")
        assert "电梯年检" in await listed.inner_text() and "未读" in await listed.inner_text()
        await portal.screenshot(path=ARTIFACTS / "portal-notices.png", full_page=True)
        await listed.get_by_role("link", name=re.compile("电梯年检")).click()
        await portal.wait_for_url(re.compile(r".*/portal/notices/.+"))
        assert "请走楼梯" in await portal.get_by_test_id("notice").inner_text()
        await portal.screenshot(path=ARTIFACTS / "portal-notice.png", full_page=True)

        await manager.reload()
        assert (
            "2 位住户中已有 1 位阅读" in await manager.get_by_test_id("receipt-counts").inner_text()
        )
        unread = await manager.get_by_test_id("unread").inner_text()
        assert "孙九" not in unread and "周十" in unread
        await manager.screenshot(path=ARTIFACTS / "console-notice-receipts.png", full_page=True)
    finally:
        await desk_ctx.close()
        await mgr_ctx.close()
        await resident_ctx.close()

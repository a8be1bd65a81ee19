"""In a browser: a partner submits an app in the developer portal, the platform operator
approves it in the operator console, the developer sees the decision, and a company
admin can then install the app from the directory."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from linli.auth import service as auth_service
from linli.db.engine import unit_of_work
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

OPERATOR_PASSWORD = "operator-password-123"


async def test_submit_approve_install(browser: Any, live_server: LiveServer) -> None:
    company = await make_company(communities=1)
    operator_name = f"op-{secrets.token_hex(4)}"
    async with unit_of_work() as session:
        await auth_service.create_operator(
            session, username=operator_name, display_name="运营小王", password=OPERATOR_PASSWORD
        )
    app_name = f"快递柜 {secrets.token_hex(3)}"
    base = live_server.url

    developer = await browser.new_context(locale="zh-CN")
    dev = await developer.new_page()
    operator = await browser.new_context(locale="zh-CN")
    op = await operator.new_page()
    op.on("dialog", lambda dialog: dialog.accept())
    staff = await browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 860})
    console = await staff.new_page()
    try:
        # 1. the partner registers, creates the app and submits it
        await dev.goto(f"{base}/developers/login")
        await dev.locator("#r-company").fill("丰邻科技")
        await dev.locator("#r-name").fill("李工")
        await dev.locator("#r-email").fill(f"dev-{secrets.token_hex(4)}@locker.example")
        await dev.locator("#r-password").fill("a-long-password-1")
        async with dev.expect_navigation():
            await dev.get_by_role("button", name="注册", exact=True).click()
        await dev.locator("#m-name").fill(app_name)
        await dev.locator("#m-desc").fill("每栋楼的智能快递柜")
        await dev.locator("input[name=scope][value='estate:read']").check()
        await dev.locator("input[name=scope][value='residents:read:basic']").check()
        await dev.locator("#m-hook").fill("https://locker.example/hooks")
        await dev.locator("input[name=event][value='residents.resident.moved_in']").check()
        await dev.locator("#m-entry").fill("https://locker.example/h5")
        async with dev.expect_navigation():
            await dev.get_by_role("button", name="创建应用").click()
        assert await dev.get_by_test_id("review-status").inner_text() == "草稿"
        async with dev.expect_navigation():
            await dev.get_by_role("button", name="提交审核").click()
        assert await dev.get_by_test_id("review-status").inner_text() == "待审核"
        app_url = dev.url

        # 2. the operator signs in, finds it in the queue, reads the manifest, approves
        await op.goto(f"{base}/operator/apps")
        await op.wait_for_url(f"{base}/operator/login**")
        await op.get_by_label("运营账号").fill(operator_name)
        await op.get_by_label("密码").fill(OPERATOR_PASSWORD)
        async with op.expect_navigation():
            await op.get_by_role("button", name="登录").click()
        queued = op.get_by_test_id("review-queue-app").filter(has_text=app_name)
        assert await queued.count() == 1
        async with op.expect_navigation():
            await queued.get_by_role("link", name=app_name).click()
        scopes = await op.get_by_test_id("requested-scopes").inner_text()
        assert "estate:read" in scopes and "读取住户姓名" in scopes  # the scopes in words
        assert await op.get_by_test_id("webhook-url").inner_text() == "https://locker.example/hooks"
        assert "residents.resident.moved_in" in await op.get_by_test_id("events").inner_text()
        assert await op.get_by_test_id("entry-url").inner_text() == "https://locker.example/h5"
        await op.screenshot(path=ARTIFACTS / "operator-app-review.png", full_page=True)
        async with op.expect_navigation():
            await op.get_by_test_id("approve").click()
        assert await op.get_by_test_id("review-status").inner_text() == "已通过"

        # 3. the developer sees the decision
        await dev.goto(app_url)
        assert await dev.get_by_test_id("review-status").inner_text() == "已通过"

        # 4. the company admin finds it in the directory and installs it
        await console.goto(f"{base}/console/login")
        await console.get_by_label("公司代码").fill(company.slug)
        await console.get_by_label("用户名或手机号").fill("admin")
        await console.get_by_label("密码").fill(PASSWORD)
        async with console.expect_navigation():
            await console.get_by_role("button", name="登录").click()
        await console.goto(f"{base}/console/apps")
        offer = console.get_by_test_id("directory-app").filter(has_text=app_name)
        assert await offer.count() == 1
        async with console.expect_navigation():
            await offer.get_by_test_id("install").click()
        row = console.get_by_test_id("installation").filter(has_text=app_name)
        assert await row.get_by_test_id("installation-status").inner_text() == "在用"
        granted = await row.get_by_test_id("granted-scope").all_inner_texts()
        assert [g.split()[0] for g in granted] == ["estate:read", "residents:read:basic"]

        # 5. the operator suspends it: the company sees it, the developer reads why
        await op.get_by_label("原因（开发者可见）").fill("多次收到住户投诉")
        async with op.expect_navigation():
            await op.get_by_test_id("suspend").click()
        assert await op.get_by_test_id("review-status").inner_text() == "已下架"
        await console.reload()
        row = console.get_by_test_id("installation").filter(has_text=app_name)
        assert await row.get_by_test_id("installation-status").inner_text() == "已被平台下架"
        await dev.goto(app_url)
        assert await dev.get_by_test_id("review-status").inner_text() == "已下架"
        assert await dev.get_by_test_id("review-note").inner_text() == "多次收到住户投诉"
        await dev.screenshot(path=ARTIFACTS / "developer-app-suspended.png", full_page=True)
    finally:
        await developer.close()
        await operator.close()
        await staff.close()

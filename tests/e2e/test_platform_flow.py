"""A company admin installs a partner app granting fewer scopes than it asks, then revokes it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.estate.factories import make_houses
from tests.factories import PASSWORD, make_company
from tests.live import LiveServer
from tests.platform.factories import make_partner_app

pytestmark = pytest.mark.e2e


async def test_admin_installs_with_fewer_scopes_then_revokes(
    browser: Any, live_server: LiveServer
) -> None:
    company = await make_company(communities=2)
    await make_houses(company)
    name = f"快递柜 {uuid.uuid4().hex[:8]}"
    app = await make_partner_app(
        scopes=["estate:read", "residents:read:basic", "billing:read"], name=name
    )
    staff = await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    console = await staff.new_page()
    console.on("dialog", lambda dialog: dialog.accept())
    try:
        await console.goto(f"{live_server.url}/console/login")
        await console.get_by_label("公司代码").fill(company.slug)
        await console.get_by_label("用户名或手机号").fill("admin")
        await console.get_by_label("密码").fill(PASSWORD)
        async with console.expect_navigation():
            await console.get_by_role("button", name="登录").click()
        nav = console.get_by_role("navigation", name="主导航")
        await nav.get_by_role("link", name="合作伙伴应用").click()
        await console.wait_for_url(f"{live_server.url}/console/apps")

        offer = console.get_by_test_id("directory-app").filter(has_text=name)
        assert await offer.count() == 1
        assert "读取住户姓名" in await offer.inner_text()  # the scopes are shown in words
        await offer.get_by_test_id("scope-residents:read:basic").uncheck()
        await offer.get_by_test_id("scope-billing:read").uncheck()
        await console.screenshot(path=ARTIFACTS / "console-app-install.png", full_page=True)
        async with console.expect_navigation():
            await offer.get_by_test_id("install").click()

        row = console.get_by_test_id("installation")
        assert await row.count() == 1
        granted = await row.get_by_test_id("granted-scope").all_inner_texts()
        assert [g.split()[0] for g in granted] == ["estate:read"]
        assert await row.get_by_test_id("installation-status").inner_text() == "在用"

        installation_id = await _installation_id(live_server, app, company)
        token = _token(live_server, app, company.id, installation_id)
        assert token.status_code == 200, token.text
        assert token.json()["scope"] == "estate:read"

        houses = httpx.get(
            f"{live_server.url}/api/v1/estate/houses",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert houses.status_code == 200
        residents = httpx.get(
            f"{live_server.url}/api/v1/residents",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert residents.status_code == 403  # not granted
        await nav.get_by_role("link", name="应用数据访问").click()
        await console.wait_for_url(f"{live_server.url}/console/app-access")
        chart = console.get_by_test_id("app-chart")
        assert await chart.count() == 1
        assert "1 次被拒绝" in await chart.inner_text()
        assert await chart.locator("svg rect").count() == 1
        calls = await console.get_by_test_id("recent-calls").locator("tbody tr").all_inner_texts()
        assert any("/api/v1/residents" in c and "403" in c for c in calls)
        await console.screenshot(path=ARTIFACTS / "console-app-access.png", full_page=True)
        async with console.expect_download() as download_info:
            await console.get_by_test_id("export").click()
        exported = Path(await (await download_info.value).path()).read_text()
        assert exported.startswith("at,app,app_id") and "/api/v1/residents" in exported
        await nav.get_by_role("link", name="合作伙伴应用").click()
        await console.wait_for_url(f"{live_server.url}/console/apps")
        row = console.get_by_test_id("installation")
        async with console.expect_navigation():
            await row.get_by_test_id("revoke").click()
        assert await row.get_by_test_id("installation-status").inner_text() == "已撤销授权"
        await console.screenshot(path=ARTIFACTS / "console-app-revoked.png", full_page=True)
        refused = _token(live_server, app, company.id, installation_id)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        calls = httpx.get(
            f"{live_server.url}/api/v1/estate/houses",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert calls.status_code == 401
    finally:
        await staff.close()


async def _installation_id(server: LiveServer, app: Any, company: Any) -> str:
    from tests.factories import bearer, staff_token

    listed = httpx.get(
        f"{server.url}/api/v1/platform/installations", headers=bearer(staff_token(company))
    )
    return str(next(i["id"] for i in listed.json() if i["app_id"] == str(app.app_id)))


def _token(server: LiveServer, app: Any, tenant_id: Any, installation_id: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/platform/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "tenant_id": str(tenant_id),
            "installation_id": installation_id,
        },
    )


async def test_resident_consents_to_share_name_and_houses_not_phone(
    browser: Any, live_server: LiveServer, sms_gateway: Any
) -> None:
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    from tests.e2e.test_claim_flow import PHONE_SCREEN
    from tests.estate.factories import make_resident
    from tests.platform.factories import install

    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = f"137{secrets.randbelow(10**8):08d}"
    await make_resident(company, house_id=houses[0], name="孙七", phone=phone)
    app = await make_partner_app()
    await install(company, app, scopes=["estate:read"])
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "tenant_id": str(company.id),
            "redirect_uri": "https://partner.example/callback",
            "scope": "openid profile houses",
            "state": "st-1",
            "nonce": "nc-1",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    resident = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    portal = await resident.new_page()
    landed: list[str] = []

    async def partner_page(route: Any) -> None:
        landed.append(route.request.url)
        await route.fulfill(status=200, body="partner page", content_type="text/plain")

    await portal.route("https://partner.example/**", partner_page)
    try:
        await portal.goto(f"{live_server.url}/portal/login")
        await portal.get_by_label("手机号").fill(phone)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="获取验证码").click()
        code = sms_gateway.last_code(f"+86{phone}")
        await portal.get_by_label("短信验证码").fill(code)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="登录", exact=True).click()
        await portal.goto(f"{live_server.url}/portal/apps/authorize?{query}")
        shared = await portal.get_by_test_id("consent-scopes").inner_text()
        assert "您的昵称" in shared and "您居住的房屋" in shared and "手机号" not in shared
        await portal.screenshot(path=ARTIFACTS / "portal-consent.png", full_page=True)
        await portal.get_by_test_id("allow").click()
        await portal.wait_for_url("https://partner.example/callback**")
    finally:
        await resident.close()
    back = parse_qs(urlsplit(landed[-1]).query)
    assert back["state"] == ["st-1"]
    answer = httpx.post(
        f"{live_server.url}/api/v1/platform/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": "https://partner.example/callback",
            "code_verifier": verifier,
        },
        auth=(app.client_id, app.client_secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["id_token"]

"""The operator console pages: sign-in, the review queue with the manifest, decisions with
CSRF, suspension; nobody but a platform operator gets in."""

from __future__ import annotations

import re
import secrets
import uuid

from linli.auth import service as auth_service
from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.platform import service
from linli.platform.schemas import Manifest
from tests.factories import make_company, staff_token
from tests.platform.factories import make_partner_app

PASSWORD = "operator-password-123"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def _operator(client) -> None:  # type: ignore[no-untyped-def]
    username = f"op-{secrets.token_hex(4)}"
    async with unit_of_work() as session:
        await auth_service.create_operator(
            session, username=username, display_name="运营小王", password=PASSWORD
        )
    signed_in = await client.post(
        "/operator/login",
        data={"username": username, "password": PASSWORD, "next": "/operator/apps"},
    )
    assert signed_in.status_code == 303, signed_in.text[:300]
    assert signed_in.headers["location"] == "/operator/apps"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/operator" in cookie
    client.cookies.set("linli_operator", signed_in.cookies["linli_operator"], path="/operator")


async def _pending_app() -> uuid.UUID:
    made = await make_partner_app(approve=False, name=f"快递柜 {secrets.token_hex(2)}")
    async with unit_of_work() as session:
        await service.update_manifest(
            session,
            made.developer,
            made.app_id,
            Manifest(
                name="快递柜 & 驿站",
                description="每栋楼的快递柜",
                requested_scopes=["estate:read", "residents:read:contact"],
                events=["residents.resident.moved_in"],
                webhook_url="https://locker.example/hooks",
                entry_url="https://locker.example/h5",
                console_url="https://locker.example/console",
                redirect_uris=["https://locker.example/cb"],
            ),
        )
        await service.submit_for_review(session, made.developer, made.app_id)
    return made.app_id


async def test_nobody_but_an_operator_gets_in(client) -> None:
    page = await client.get("/operator/apps")
    assert page.status_code == 303 and page.headers["location"].startswith("/operator/login")
    wrong = await client.post("/operator/login", data={"username": "nobody", "password": "x"})
    assert wrong.status_code == 401 and "alert" in wrong.text
    # a company admin's console cookie and token are nothing here
    company = await make_company()
    client.cookies.set("linli_operator", staff_token(company), path="/operator")
    assert (await client.get("/operator/apps")).status_code == 303
    app_id = await _pending_app()
    refused = await client.post(
        f"/operator/apps/{app_id}/review", data={"decision": "approve", "csrf_token": "x"}
    )
    assert refused.status_code == 401


async def test_queue_manifest_reject_with_reason_then_approve_and_suspend(client) -> None:
    app_id = await _pending_app()
    await _operator(client)
    queue = await client.get("/operator/apps", headers={"Accept-Language": "zh-CN"})
    assert queue.status_code == 200
    assert f"/operator/apps/{app_id}" in queue.text and "待审核" in queue.text
    page = await client.get(f"/operator/apps/{app_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    text = page.text
    assert "快递柜 &amp; 驿站" in text  # escaped
    assert "Read residents' full phone and ID-card numbers" in text  # the scope in words
    for shown in (
        "https://locker.example/hooks",
        "residents.resident.moved_in",
        "https://locker.example/h5",
        "https://locker.example/console",
        "https://locker.example/cb",
        "每栋楼的快递柜",
    ):
        assert shown in text, shown
    token = _csrf(text)
    no_csrf = await client.post(f"/operator/apps/{app_id}/review", data={"decision": "approve"})
    assert no_csrf.status_code == 403
    silent = await client.post(
        f"/operator/apps/{app_id}/review",
        data={"decision": "reject", "note": " ", "csrf_token": token},
    )
    assert silent.status_code == 422 and "请说明驳回原因" in silent.text
    rejected = await client.post(
        f"/operator/apps/{app_id}/review",
        data={"decision": "reject", "note": "请说明为何需要手机号", "csrf_token": token},
    )
    assert rejected.status_code == 303
    async with unit_of_work() as session:
        app = await service.app_for_operator(session, Actor.system(), app_id)
        assert (app.app.review_status, app.app.review_note) == ("rejected", "请说明为何需要手机号")
        await service.submit_for_review(
            session,
            service.DeveloperPrincipal(uuid.uuid4(), app.app.partner_id),
            app_id,
        )
    approved = await client.post(
        f"/operator/apps/{app_id}/review", data={"decision": "approve", "csrf_token": token}
    )
    assert approved.status_code == 303
    page = await client.get(f"/operator/apps/{app_id}", headers={"Accept-Language": "zh-CN"})
    assert "已通过" in page.text and 'data-testid="suspend"' in page.text
    no_reason = await client.post(
        f"/operator/apps/{app_id}/suspend", data={"reason": "", "csrf_token": token}
    )
    assert no_reason.status_code == 422
    suspended = await client.post(
        f"/operator/apps/{app_id}/suspend", data={"reason": "投诉过多", "csrf_token": token}
    )
    assert suspended.status_code == 303
    listed = await client.get("/operator/apps", headers={"Accept-Language": "zh-CN"})
    suspended_section = listed.text.split("已下架应用")[1]
    assert f"/operator/apps/{app_id}" in suspended_section and "投诉过多" in suspended_section
    reinstated = await client.post(f"/operator/apps/{app_id}/reinstate", data={"csrf_token": token})
    assert reinstated.status_code == 303
    async with unit_of_work() as session:
        app = await service.app_for_operator(session, Actor.system(), app_id)
        assert app.app.review_status == "approved"
    signed_out = await client.post("/operator/logout", data={"csrf_token": token})
    assert signed_out.status_code == 303


async def test_an_approved_app_is_not_reviewed_again(client) -> None:
    made = await make_partner_app()
    await _operator(client)
    page = await client.get(f"/operator/apps/{made.app_id}")
    assert 'data-testid="approve"' not in page.text
    again = await client.post(
        f"/operator/apps/{made.app_id}/review",
        data={"decision": "reject", "note": "x", "csrf_token": _csrf(page.text)},
    )
    assert again.status_code == 409


async def test_company_console_links_the_app_console_until_suspended(client) -> None:
    from tests.factories import PASSWORD
    from tests.platform.factories import install
    from tests.web.pageutil import staff_sign_in

    company = await make_company()
    made = await make_partner_app(name=f"快递柜 {secrets.token_hex(2)}")
    async with unit_of_work() as session:
        row = await service.app_for_operator(session, Actor.system(), made.app_id)
        row.app.console_url = "https://locker.example/console"
    inst = await install(company, made, scopes=["estate:read"])
    signed_in = await staff_sign_in(client, company=company.slug, login="admin", password=PASSWORD)
    assert signed_in.status_code == 303
    page = await client.get("/console/apps", headers={"Accept-Language": "zh-CN"})
    link = (
        f"https://locker.example/console?tenant_id={company.id}"
        f"&amp;installation_id={inst.installation_id}"
    )
    assert link in page.text and "在用" in page.text
    async with unit_of_work() as session:
        await service.suspend_app(session, Actor.system(), made.app_id, reason="投诉")
    page = await client.get("/console/apps", headers={"Accept-Language": "zh-CN"})
    assert "https://locker.example/console" not in page.text and "已被平台下架" in page.text

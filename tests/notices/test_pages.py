"""The console and portal pages of announcements and notifications, driven like a browser."""

from __future__ import annotations

import re
import secrets

import httpx

from linli.auth.permissions import Role
from tests.estate.factories import make_houses, make_resident
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, resident_sign_in, staff_sign_in, text_of


async def test_draft_approve_read_through_the_pages(app, browser_like: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company, units=1, floors=1, per_floor=1)
    phone = f"135{secrets.randbelow(10**8):08d}"
    await make_resident(company, house_id=houses[0], name="钱七", phone=phone)
    await make_staff(company, roles=[Role.FRONT_DESK], all_communities=True, username="desk")
    await make_staff(company, roles=[Role.COMMUNITY_MANAGER], all_communities=True, username="mgr")
    http = browser_like

    signed = await staff_sign_in(http, company=company.slug, login="desk", password=PASSWORD)
    assert signed.status_code == 303
    listing = await http.get("/console/notices")
    assert listing.status_code == 200 and "新建公告" in listing.text
    refused = await http.post(
        "/console/notices",
        data={
            "csrf_token": csrf_of(listing),
            "title": "x",
            "body": "y",
            "audience": "houses",
            "houses": "99-9-999",
        },
    )
    assert refused.status_code == 422 and "3-2-1201" in text_of(refused)
    targeted = await http.post(
        "/console/notices",
        data={
            "csrf_token": csrf_of(listing),
            "title": "漏水",
            "body": "y",
            "audience": "houses",
            "houses": "1-1-101，1-1-101",
        },
    )
    assert targeted.status_code == 303, targeted.text
    assert "指定房屋 (1)" in text_of(await http.get(targeted.headers["location"]))
    created = await http.post(
        "/console/notices",
        data={
            "csrf_token": csrf_of(listing),
            "title": "停水通知",
            "body": "周三停水",
            "audience": "community",
            "pinned": "1",
            "publish_at": "",
        },
    )
    assert created.status_code == 303, created.text
    detail_url = created.headers["location"]
    detail = await http.get(detail_url)
    assert "草稿" in text_of(detail)
    submitted = await http.post(f"{detail_url}/submit", data={"csrf_token": csrf_of(detail)})
    assert submitted.status_code == 303
    pending = await http.get(detail_url)
    assert "等待经理审批" in text_of(pending) and "审批并发布" not in pending.text
    log = await http.get("/console/notifications")
    assert log.status_code == 200 and 'data-testid="delivery-chart"' in log.text
    templates = await http.get("/console/notifications/templates")
    assert "announcement.published" in templates.text and "小区公告" in templates.text
    await http.post("/console/logout", data={"csrf_token": csrf_of(templates)})

    await staff_sign_in(http, company=company.slug, login="mgr", password=PASSWORD)
    pending = await http.get(detail_url)
    approved = await http.post(
        f"{detail_url}/approve", data={"csrf_token": csrf_of(pending), "publish_at": ""}
    )
    assert approved.status_code == 303
    published = await http.get(detail_url)
    assert "已发布" in text_of(published)
    assert "1 位住户中已有 0 位阅读" in text_of(published) and "钱七" in text_of(published)
    await http.post("/console/logout", data={"csrf_token": csrf_of(published)})

    signed = await resident_sign_in(http, phone)
    assert signed.status_code == 303
    notices = await http.get("/portal/notices")
    assert "停水通知" in text_of(notices) and "未读" in text_of(notices)
    link = re.search(r'href="(/portal/notices/[^"]+)"', notices.text)
    assert link is not None
    opened = await http.get(link.group(1).replace("&amp;", "&"))
    assert opened.status_code == 200 and "周三停水" in text_of(opened)
    inbox = await http.get("/portal/messages")
    assert "小区公告:停水通知" in text_of(inbox)
    prefs = await http.get("/portal/messages/preferences")
    assert prefs.status_code == 200
    saved = await http.post(
        "/portal/messages/preferences",
        data={"csrf_token": csrf_of(prefs), "locale": "en", "receive": ["billing.reminder:sms"]},
    )
    assert saved.status_code == 303
    after = await http.get("/portal/messages/preferences?saved=1")
    assert 'value="billing.reminder:sms" checked' in after.text
    assert 'value="billing.reminder:wechat" checked' not in after.text
    assert 'value="en" selected' in after.text

    await staff_sign_in(http, company=company.slug, login="mgr", password=PASSWORD)
    receipts = await http.get(detail_url)
    assert "1 位住户中已有 1 位阅读" in text_of(receipts)


async def test_staff_see_their_own_messages_in_the_console(
    app, browser_like: httpx.AsyncClient
) -> None:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.notifications import service as notifications

    company = await make_company(communities=1)
    manager = await make_staff(
        company, roles=[Role.COMMUNITY_MANAGER], all_communities=True, username="mgr"
    )
    other = await make_staff(company, roles=[Role.FRONT_DESK], username="desk")
    async with unit_of_work(company.id) as session:
        await notifications.notify(
            session,
            Actor.system(company.id),
            staff_recipients=[manager],
            template="workorder.sla_warning",
            params={"number": "WO-42", "category": "电梯", "due": "16:00"},
            channels=[],
        )
        await notifications.notify(
            session,
            Actor.system(company.id),
            staff_recipients=[other],
            template="workorder.sla_warning",
            params={"number": "WO-43"},
            channels=[],
        )
    await staff_sign_in(browser_like, company=company.slug, login="mgr", password=PASSWORD)
    first = await browser_like.get("/console/messages")
    assert first.status_code == 200
    assert "工单即将超时:WO-42" in text_of(first) and "WO-43" not in first.text
    assert "新" in text_of(first)
    again = await browser_like.get("/console/messages")
    assert 'class="pill pill-brand"' not in again.text  # opened once: read

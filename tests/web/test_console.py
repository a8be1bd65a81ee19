"""The staff console as a browser sees it: sign-in, cookies, navigation, switcher, CSRF."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from linli.auth.permissions import Permission, Role
from linli.config import get_settings
from linli.core.i18n import gettext
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, set_cookies, staff_sign_in, text_of


async def test_sign_in_sets_http_only_lax_cookies_and_opens_the_dashboard(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company()
    response = await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    cookies = set_cookies(response)
    for name in ("linli_staff_at", "linli_staff_rt", "linli_console_sid"):
        header = cookies[name].lower()
        assert "httponly" in header and "samesite=lax" in header and "path=/console" in header
        assert "secure" not in header  # LINLI_COOKIE_SECURE is off in tests

    dashboard = await web.get("/console")
    assert dashboard.status_code == 200
    assert dashboard.headers["content-type"].startswith("text/html")
    assert dashboard.headers["cache-control"] == "no-store"
    page = text_of(dashboard)
    assert f"物业公司 {company.slug}" in page  # company name in the header
    assert "概览" in page and "管理员" in page
    assert 'lang="zh-CN"' in dashboard.text


async def test_phone_login_works_too(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(company, phone="13912345678", username="desk1")
    response = await staff_sign_in(
        web, company=company.slug, login="139 1234 5678", password=PASSWORD
    )
    assert response.status_code == 303, response.text


async def test_wrong_password_shows_the_error_in_the_page(web: httpx.AsyncClient) -> None:
    company = await make_company()
    response = await staff_sign_in(web, company=company.slug, login="admin", password="nope-nope")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    expected = gettext("The company code, login or password is wrong.", "zh_CN")
    assert expected in text_of(response)
    assert f'value="{company.slug}"' in response.text  # what was typed stays
    assert "nope-nope" not in response.text  # the password never comes back
    assert "linli_staff_at" not in set_cookies(response)


async def test_empty_fields_are_named(web: httpx.AsyncClient) -> None:
    response = await staff_sign_in(web, company="", login="admin", password="")
    assert response.status_code == 422
    assert 'id="company-error"' in response.text and 'id="password-error"' in response.text
    assert 'id="login-error"' not in response.text


async def test_next_stays_on_this_site(web: httpx.AsyncClient) -> None:
    company = await make_company()
    inside = await staff_sign_in(
        web,
        company=company.slug,
        login="admin",
        password=PASSWORD,
        next="/console/communities",
    )
    assert inside.headers["location"] == "/console/communities"
    for evil in ("https://evil.example/console", "//evil.example/console", "/portal", "/\\evil"):
        web.cookies.clear()
        outside = await staff_sign_in(
            web, company=company.slug, login="admin", password=PASSWORD, next=evil
        )
        assert outside.headers["location"] == "/console", evil


async def test_pages_need_a_session_and_send_to_the_sign_in(web: httpx.AsyncClient) -> None:
    response = await web.get("/console/communities?cursor=x")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/console/login"
    assert parse_qs(location.query)["next"] == ["/console/communities?cursor=x"]
    # A token of another audience in the cookie is no session either.
    web.cookies.set("linli_staff_at", "not-a-token", path="/console")
    assert (await web.get("/console")).status_code == 303


async def test_nav_hides_staff_and_audit_for_front_desk(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(
        company,
        roles=[Role.FRONT_DESK],
        username="desk",
        community_ids=[company.communities[0]],
    )
    await staff_sign_in(web, company=company.slug, login="desk", password=PASSWORD)
    page = await web.get("/console")
    assert page.status_code == 200
    assert 'href="/console/communities"' in page.text
    assert 'href="/console/residents"' in page.text  # front desk holds residents.read
    assert 'href="/console/staff"' not in page.text
    assert 'href="/console/audit"' not in page.text
    # Hiding is not the fence: the page itself refuses, as an HTML page.
    refused = await web.get("/console/audit")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "无权访问" in text_of(refused)


async def test_nav_shows_staff_and_audit_to_a_company_admin(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get("/console")
    for path in ("/console/staff", "/console/audit", "/console/communities"):
        assert f'href="{path}"' in page.text
    assert (await web.get("/console/staff")).status_code == 200


async def test_community_switcher_keeps_to_the_grants(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=3)
    other = await make_company()
    granted, not_granted = company.communities[1], company.communities[2]
    await make_staff(company, roles=[Role.FRONT_DESK], username="desk", community_ids=[granted])
    await staff_sign_in(web, company=company.slug, login="desk", password=PASSWORD)
    dashboard = await web.get("/console")
    assert f'value="{granted}"' in dashboard.text
    assert f'value="{not_granted}"' not in dashboard.text
    token = csrf_of(dashboard)

    for refused in (not_granted, other.communities[0], "not-a-uuid"):
        response = await web.post(
            "/console/community", data={"csrf_token": token, "community_id": str(refused)}
        )
        assert response.status_code == 404, refused
        assert response.headers["content-type"].startswith("text/html")
        assert "linli_community" not in set_cookies(response)

    switched = await web.post(
        "/console/community",
        data={"csrf_token": token, "community_id": str(granted), "next": "/console/communities"},
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console/communities"
    assert str(granted) in set_cookies(switched)["linli_community"]

    # A cookie naming a community not granted (set by hand) is not trusted.
    web.cookies.set("linli_community", str(not_granted), path="/console")
    page = await web.get("/console")
    assert "小区2号" in page.text and "小区3号" not in page.text
    assert set_cookies(page)["linli_community"].startswith('linli_community=""')


async def test_switching_community_changes_the_current_one(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=2)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    dashboard = await web.get("/console")
    assert '<p class="stat-value" data-testid="current-community">小区1号</p>' in dashboard.text
    await web.post(
        "/console/community",
        data={"csrf_token": csrf_of(dashboard), "community_id": str(company.communities[1])},
    )
    again = await web.get("/console")
    assert '<p class="stat-value" data-testid="current-community">小区2号</p>' in again.text


async def test_communities_page_lists_only_what_the_person_may_see(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company(communities=3)
    await make_staff(
        company,
        roles=[Role.TECHNICIAN],
        username="tech",
        community_ids=[company.communities[0], company.communities[2]],
    )
    await staff_sign_in(web, company=company.slug, login="tech", password=PASSWORD)
    page = await web.get("/console/communities")
    assert page.status_code == 200
    body = text_of(page)
    assert "小区1号" in body and "小区3号" in body and "小区2号" not in body
    assert "C01" in body and "Asia/Shanghai" in body


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company()
    form = {"company": company.slug, "login": "admin", "password": PASSWORD}
    await web.get("/console/login")  # the browser has a session id cookie

    missing = await web.post("/console/login", data=form)
    assert missing.status_code == 403
    assert missing.headers["content-type"].startswith("text/html")
    assert "表单已过期" in text_of(missing)
    assert "linli_staff_at" not in set_cookies(missing)

    wrong = await web.post("/console/login", data=form | {"csrf_token": "A" * 43})
    assert wrong.status_code == 403

    # A token rendered for another browser (an attacker's own session) does not fit ours.
    theirs = csrf_of(await other_web.get("/console/login"))
    stolen = await web.post("/console/login", data=form | {"csrf_token": theirs})
    assert stolen.status_code == 403

    # Signed in, state-changing forms still need it.
    ok = await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    assert ok.status_code == 303
    switch = await web.post(
        "/console/community", data={"community_id": str(company.communities[0])}
    )
    assert switch.status_code == 403
    logout = await web.post("/console/logout")
    assert logout.status_code == 403
    assert (await web.get("/console")).status_code == 200  # still signed in


async def test_the_token_from_before_sign_in_is_dead_after_it(web: httpx.AsyncClient) -> None:
    company = await make_company()
    before = csrf_of(await web.get("/console/login"))
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    response = await web.post(
        "/console/community",
        data={"csrf_token": before, "community_id": str(company.communities[0])},
    )
    assert response.status_code == 403


async def test_language_switch_renders_english(web: httpx.AsyncClient) -> None:
    company = await make_company()
    login_page = await web.get("/console/login")
    assert "员工登录" in login_page.text and 'lang="zh-CN"' in login_page.text
    switched = await web.post(
        "/console/locale",
        data={"csrf_token": csrf_of(login_page), "locale": "en", "next": "/console/login"},
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/console/login"
    assert "path=/" in set_cookies(switched)["linli_locale"].lower()
    english = await web.get("/console/login")
    assert "Staff sign-in" in english.text and 'lang="en"' in english.text
    assert "员工登录" not in english.text

    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    dashboard = text_of(await web.get("/console"))
    assert "Overview" in dashboard and "Communities you can see" in dashboard
    assert "Company admin" in dashboard


async def test_unknown_language_is_refused(web: httpx.AsyncClient) -> None:
    token = csrf_of(await web.get("/console/login"))
    response = await web.post("/console/locale", data={"csrf_token": token, "locale": "xx"})
    assert response.status_code == 400
    assert "linli_locale" not in set_cookies(response)


async def test_an_expired_access_token_is_refreshed_without_a_new_sign_in(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company()
    signed_in = await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    access = web.cookies.get("linli_staff_at", path="/console")
    assert access is not None
    old_refresh = web.cookies.get("linli_staff_rt", path="/console")
    claims = jwt.decode(access, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 60
    expired = jwt.encode(claims, get_settings().signing_key(), algorithm="HS256")
    web.cookies.set("linli_staff_at", expired, path="/console")

    page = await web.get("/console")
    assert page.status_code == 200, page.text
    renewed = set_cookies(page)
    assert "linli_staff_at" in renewed and "linli_staff_rt" in renewed
    assert web.cookies.get("linli_staff_rt", path="/console") != old_refresh
    assert signed_in.status_code == 303


async def test_a_spent_refresh_token_ends_the_session(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    token = csrf_of(await web.get("/console"))
    logout = await web.post("/console/logout", data={"csrf_token": token})
    assert logout.status_code == 303 and logout.headers["location"] == "/console/login"
    cleared = set_cookies(logout)
    assert cleared["linli_staff_at"].startswith('linli_staff_at=""')
    assert cleared["linli_staff_rt"].startswith('linli_staff_rt=""')
    assert (await web.get("/console")).status_code == 303


async def test_errors_are_pages_under_console_and_problems_under_api(
    web: httpx.AsyncClient,
) -> None:
    page = await web.get("/console/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in text_of(page)
    api = await web.get("/api/v1/no-such-endpoint")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_every_page_route_declares_a_permission() -> None:
    from linli.web.pages import router

    routes: list[Any] = [
        route
        for route in router.routes
        if str(getattr(route, "path", "")).startswith(("/console", "/portal"))
    ]
    assert len(routes) >= 15
    known = {p.value for p in Permission}
    for route in routes:
        declared = (route.openapi_extra or {}).get("x-linli-permission")
        assert declared in known, f"{route.path} declares no permission"


async def test_two_requests_with_one_expired_token_share_one_refresh(
    web: httpx.AsyncClient,
) -> None:
    """Two tabs at once must not look like refresh-token theft (which signs everyone out)."""
    import asyncio

    company = await make_company()
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    access = web.cookies.get("linli_staff_at", path="/console")
    assert access is not None
    claims = jwt.decode(access, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 60
    expired = jwt.encode(claims, get_settings().signing_key(), algorithm="HS256")
    web.cookies.set("linli_staff_at", expired, path="/console")
    first, second = await asyncio.gather(web.get("/console"), web.get("/console/communities"))
    assert first.status_code == second.status_code == 200
    assert (await web.get("/console")).status_code == 200  # the family was not revoked


async def test_an_unexpected_error_is_an_html_page_with_the_request_id() -> None:
    from linli.app import create_app

    app = create_app()

    async def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/console/boom", boom)
    app.add_api_route("/api/v1/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        page = await http.get("/console/boom", headers={"X-Request-ID": "req-123"})
        api = await http.get("/api/v1/boom")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "出错了" in text_of(page) and "req-123" in page.text and "kaput" not in page.text
    assert api.headers["content-type"].startswith("application/problem+json")

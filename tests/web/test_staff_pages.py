"""Staff management (员工) and audit log (审计日志) console pages, as a browser uses them."""

from __future__ import annotations

import re

import httpx

from linli.auth.permissions import Role
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, staff_sign_in, text_of

NEW_PASSWORD = "a-new-long-password"


async def test_admin_creates_staff_who_can_sign_in_and_the_audit_shows_it(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company()
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    page = await web.get("/console/staff")
    assert page.status_code == 200, page.text
    assert 'href="/console/staff"' in page.text  # the nav item is the real page now
    assert "/console/soon/staff" not in page.text
    assert "管理员" in text_of(page)  # the admin is listed, with the role label
    assert "公司管理员" in page.text.split('data-testid="staff"', 1)[1]

    form = {
        "username": "Desk2",
        "display_name": "前台小李",
        "phone": "",
        "password": NEW_PASSWORD,
        "roles": [Role.FRONT_DESK.value],
        "community_ids": [str(company.communities[0])],
    }
    # Without the CSRF token the form is refused and nobody is created.
    forged = await web.post("/console/staff", data=form)
    assert forged.status_code == 403
    created = await web.post("/console/staff", data=form | {"csrf_token": csrf_of(page)})
    assert created.status_code == 303, created.text
    member_path = created.headers["location"]
    assert re.fullmatch(r"/console/staff/[0-9a-f-]{36}", member_path)

    member = await web.get(member_path)
    assert member.status_code == 200
    text = text_of(member)
    assert "前台小李" in text and "desk2" in text and "小区1号" in text

    listed = await web.get("/console/staff")
    assert "前台小李" in text_of(listed)

    # The new person signs in with what the admin typed.
    signed_in = await staff_sign_in(
        other_web, company=company.slug, login="desk2", password=NEW_PASSWORD
    )
    assert signed_in.status_code == 303
    assert (await other_web.get("/console")).status_code == 200

    audit = await web.get("/console/audit")
    assert audit.status_code == 200
    table = audit.text.split('data-testid="audit"', 1)[1]
    assert "staff.create" in table
    staff_id = member_path.rsplit("/", 1)[1]
    assert staff_id in table
    # Filtering by action keeps only that action; by another principal, nothing.
    only_creates = await web.get("/console/audit", params={"action": "staff.create"})
    rows = only_creates.text.split('data-testid="audit"', 1)[1]
    assert "staff.create" in rows and "staff.login" not in rows
    nobody = await web.get("/console/audit", params={"principal": "no-such-principal"})
    assert 'data-testid="audit"' not in nobody.text


async def test_refusals_are_shown_in_the_page_translated(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(company, username="taken", community_ids=[company.communities[0]])
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/staff")
    token = csrf_of(page)
    base = {
        "csrf_token": token,
        "display_name": "重复",
        "password": NEW_PASSWORD,
        "roles": [Role.FRONT_DESK.value],
    }

    taken = await web.post("/console/staff", data=base | {"username": "TAKEN"})
    assert taken.status_code == 409
    assert "该用户名或手机号在本公司已被使用" in text_of(taken)
    assert 'value="TAKEN"' in taken.text  # what was typed is kept

    short = await web.post(
        "/console/staff", data=base | {"username": "fine.name", "password": "short"}
    )
    assert short.status_code == 422
    assert "密码至少需要 10 个字符" in text_of(short)

    # The admin cannot take away their own roles.
    me = f"/console/staff/{company.admin_id}"
    own = await web.post(
        me,
        data={
            "csrf_token": token,
            "display_name": "管理员",
            "roles": [Role.FRONT_DESK.value],
            "all_communities": "1",
            "is_active": "1",
        },
    )
    assert own.status_code == 409
    assert "不能修改自己的角色" in text_of(own)


async def test_granting_beyond_own_scope_is_refused_in_the_page(web: httpx.AsyncClient) -> None:
    company = await make_company()
    # An admin of one community only: may manage staff, but not hand out the whole company.
    await make_staff(
        company,
        roles=[Role.COMPANY_ADMIN],
        username="localadmin",
        community_ids=[company.communities[0]],
    )
    await staff_sign_in(web, company=company.slug, login="localadmin", password=PASSWORD)
    page = await web.get("/console/staff")
    assert page.status_code == 200
    refused = await web.post(
        "/console/staff",
        data={
            "csrf_token": csrf_of(page),
            "username": "boss2",
            "display_name": "新管理员",
            "password": NEW_PASSWORD,
            "roles": [Role.FRONT_DESK.value],
            "all_communities": "1",
        },
    )
    assert refused.status_code == 403
    assert "只有负责全公司的员工才能授予全部小区" in text_of(refused)
    assert "新管理员" not in text_of(await web.get("/console/staff"))


async def test_a_manager_reads_staff_but_gets_no_form(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(
        company,
        roles=[Role.COMMUNITY_MANAGER],
        username="mgr",
        community_ids=[company.communities[0]],
    )
    await staff_sign_in(web, company=company.slug, login="mgr", password=PASSWORD)
    page = await web.get("/console/staff")
    assert page.status_code == 200
    assert 'method="post" action="/console/staff"' not in page.text
    table = page.text.split('data-testid="staff"', 1)[1]
    assert "<code>mgr</code>" in table
    assert "<code>admin</code>" not in table  # company-wide staff are not in their communities


async def test_admin_edits_and_resets_password(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company()
    desk = await make_staff(company, username="desk", community_ids=[company.communities[0]])
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    member = await web.get(f"/console/staff/{desk}")
    token = csrf_of(member)

    saved = await web.post(
        f"/console/staff/{desk}",
        data={
            "csrf_token": token,
            "display_name": "前台",
            "roles": [Role.FRONT_DESK.value, Role.CASHIER.value],
            "community_ids": [str(c) for c in company.communities],
        },  # no is_active: the checkbox is cleared, so the login is disabled
    )
    assert saved.status_code == 303
    after = await web.get(saved.headers["location"])
    assert "小区2号" in text_of(after) and "已停用" in text_of(after)
    assert (
        await staff_sign_in(other_web, company=company.slug, login="desk", password=PASSWORD)
    ).status_code != 303

    reset = await web.post(
        f"/console/staff/{desk}/password", data={"csrf_token": token, "password": NEW_PASSWORD}
    )
    assert reset.status_code == 303
    audit = await web.get("/console/audit", params={"action": "staff.password_reset"})
    assert str(desk) in audit.text


async def test_front_desk_gets_403_and_no_nav_items(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(company, username="desk", community_ids=[company.communities[0]])
    await staff_sign_in(web, company=company.slug, login="desk", password=PASSWORD)
    home = await web.get("/console")
    assert home.status_code == 200
    assert 'href="/console/staff"' not in home.text
    assert 'href="/console/audit"' not in home.text
    for path in ("/console/staff", "/console/audit", f"/console/staff/{company.admin_id}"):
        refused = await web.get(path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
    posted = await web.post(
        "/console/staff",
        data={
            "csrf_token": csrf_of(home),
            "username": "sneaky",
            "display_name": "x",
            "password": NEW_PASSWORD,
            "roles": [Role.FRONT_DESK.value],
        },
    )
    assert posted.status_code == 403


async def test_another_company_cannot_see_or_edit_our_staff(web: httpx.AsyncClient) -> None:
    company_a = await make_company()
    desk = await make_staff(company_a, username="desk", community_ids=[company_a.communities[0]])
    company_b = await make_company()
    await staff_sign_in(web, company=company_b.slug, login="admin", password=PASSWORD)
    page = await web.get("/console/staff")
    token = csrf_of(page)

    assert (await web.get(f"/console/staff/{desk}")).status_code == 404
    edit = await web.post(
        f"/console/staff/{desk}",
        data={
            "csrf_token": token,
            "display_name": "被改",
            "roles": [Role.COMPANY_ADMIN.value],
            "all_communities": "1",
            "is_active": "1",
        },
    )
    assert edit.status_code == 404
    reset = await web.post(
        f"/console/staff/{desk}/password", data={"csrf_token": token, "password": NEW_PASSWORD}
    )
    assert reset.status_code == 404
    assert (await web.get("/console/staff/not-a-uuid")).status_code == 404
    # B's audit log holds nothing of A's staff.
    audit = await web.get("/console/audit")
    assert str(desk) not in audit.text

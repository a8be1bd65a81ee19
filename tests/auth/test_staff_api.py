"""Staff management by company admins, read-only for community managers, and the audit log."""

from __future__ import annotations

import uuid

from linli.auth.permissions import Role
from tests.auth.staff_helpers import audit_actions, problem, sign_in, staff_row
from tests.factories import PASSWORD, bearer, make_company, make_staff, staff_token

NEW_PASSWORD = "a-brand-new-password"


def _new_staff(company_communities: list[uuid.UUID], **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "username": f"zhang{uuid.uuid4().hex[:6]}",
        "display_name": "张师傅",
        "password": PASSWORD,
        "phone": "13800138000",
        "roles": ["technician"],
        "community_ids": [str(c) for c in company_communities],
    }
    body.update(overrides)
    return body


async def test_admin_creates_reads_and_lists_staff(client) -> None:
    company = await make_company(communities=2)
    admin = bearer(staff_token(company))
    created = await client.post(
        "/api/v1/staff-users",
        headers=admin,
        json=_new_staff(company.communities[:1], username="Zhang.Wei"),
    )
    assert created.status_code == 201, created.text
    staff = created.json()
    assert staff["username"] == "zhang.wei"
    assert staff["phone"] == "138****8000"
    assert staff["roles"] == ["technician"]
    assert staff["community_ids"] == [str(company.communities[0])]
    assert staff["is_active"] is True and staff["locked"] is False

    fetched = await client.get(f"/api/v1/staff-users/{staff['id']}", headers=admin)
    assert fetched.json() == staff
    # The new person can sign in by phone straight away.
    assert (await sign_in(client, company, "13800138000")).status_code == 200
    assert "staff.create" in await audit_actions(company, target_id=staff["id"])

    for n in range(3):
        await make_staff(company, roles=(Role.SECURITY_GUARD,), username=f"guard{n}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/staff-users", headers=admin, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5  # admin, Zhang and three guards
    guards = (
        await client.get("/api/v1/staff-users", headers=admin, params={"role": "security_guard"})
    ).json()
    assert sorted(i["username"] for i in guards["items"]) == ["guard0", "guard1", "guard2"]


async def test_create_refuses_bad_input_with_named_fields(client) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    admin = bearer(staff_token(a))
    foreign = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff(b.communities)
    )
    body = problem(foreign, 422, "unknown_community")
    assert body["errors"][0]["field"] == "community_ids"

    bad_role = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], roles=["king"])
    )
    assert {e["field"] for e in problem(bad_role, 422, "validation_failed")["errors"]} == {
        "roles.0"
    }
    phone_name = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], username="13900001111")
    )
    assert problem(phone_name, 422, "validation_failed")["errors"][0]["field"] == "username"
    bad_phone = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], phone="12345")
    )
    assert problem(bad_phone, 422, "validation_failed")["errors"][0]["field"] == "phone"
    short = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], password="short")
    )
    assert problem(short, 422, "validation_failed")["errors"][0]["field"] == "password"

    first = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], username="same")
    )
    assert first.status_code == 201
    again = await client.post(
        "/api/v1/staff-users", headers=admin, json=_new_staff([], username="SAME")
    )
    problem(again, 409, "staff_taken")


async def test_front_desk_cannot_manage_staff(client) -> None:
    company = await make_company(communities=1)
    desk_id = await make_staff(company, roles=(Role.FRONT_DESK,), community_ids=company.communities)
    desk = bearer(
        staff_token(
            company,
            desk_id,
            roles=(Role.FRONT_DESK,),
            all_communities=False,
            community_ids=company.communities,
        )
    )
    problem(
        await client.post("/api/v1/staff-users", headers=desk, json=_new_staff([])),
        403,
        "forbidden",
    )
    problem(
        await client.patch(
            f"/api/v1/staff-users/{company.admin_id}", headers=desk, json={"is_active": False}
        ),
        403,
        "forbidden",
    )
    problem(await client.get("/api/v1/staff-users", headers=desk), 403, "forbidden")
    problem(await client.get("/api/v1/audit", headers=desk), 403, "forbidden")
    assert (await staff_row(company, company.admin_id)).is_active


async def test_community_manager_reads_own_communities_staff_only_and_cannot_write(client) -> None:
    company = await make_company(communities=2)
    north, south = company.communities
    manager_id = await make_staff(company, roles=(Role.COMMUNITY_MANAGER,), community_ids=[north])
    mine = await make_staff(
        company, roles=(Role.TECHNICIAN,), community_ids=[north], username="mine"
    )
    theirs = await make_staff(
        company, roles=(Role.TECHNICIAN,), community_ids=[south], username="theirs"
    )
    manager = bearer(
        staff_token(
            company,
            manager_id,
            roles=(Role.COMMUNITY_MANAGER,),
            all_communities=False,
            community_ids=[north],
        )
    )
    listed = (await client.get("/api/v1/staff-users", headers=manager)).json()
    assert {i["id"] for i in listed["items"]} == {str(manager_id), str(mine)}
    assert (await client.get(f"/api/v1/staff-users/{mine}", headers=manager)).status_code == 200
    problem(
        await client.get(f"/api/v1/staff-users/{theirs}", headers=manager), 404, "staff_not_found"
    )
    problem(
        await client.patch(
            f"/api/v1/staff-users/{mine}", headers=manager, json={"display_name": "x"}
        ),
        403,
        "forbidden",
    )


async def test_changing_roles_or_deactivating_ends_sessions(client) -> None:
    company = await make_company(communities=1)
    staff_id = await make_staff(company, roles=(Role.FRONT_DESK,), username="desk")
    admin = bearer(staff_token(company))
    session = (await sign_in(client, company, "desk")).json()
    renamed = await client.patch(
        f"/api/v1/staff-users/{staff_id}", headers=admin, json={"display_name": "前台小王"}
    )
    assert renamed.status_code == 200
    # A change that does not touch access keeps the session.
    rotated = await client.post(
        "/api/v1/auth/staff/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert rotated.status_code == 200

    changed = await client.patch(
        f"/api/v1/staff-users/{staff_id}",
        headers=admin,
        json={"roles": ["cashier"], "community_ids": []},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["cashier"]
    problem(
        await client.post(
            "/api/v1/auth/staff/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
        ),
        401,
        "refresh_token_revoked",
    )
    again = (await sign_in(client, company, "desk")).json()
    me = (await client.get("/api/v1/auth/me", headers=bearer(again["access_token"]))).json()
    assert me["roles"] == ["cashier"]

    off = await client.patch(
        f"/api/v1/staff-users/{staff_id}", headers=admin, json={"is_active": False}
    )
    assert off.json()["is_active"] is False
    problem(
        await client.post(
            "/api/v1/auth/staff/refresh", json={"refresh_token": again["refresh_token"]}
        ),
        401,
        "refresh_token_revoked",
    )
    problem(await sign_in(client, company, "desk"), 401, "account_disabled")
    actions = await audit_actions(company, target_id=staff_id)
    assert "staff.update" in actions and "staff.deactivate" in actions


async def test_admin_cannot_lock_themselves_out(client) -> None:
    company = await make_company(communities=1)
    admin = bearer(staff_token(company))
    problem(
        await client.patch(
            f"/api/v1/staff-users/{company.admin_id}", headers=admin, json={"is_active": False}
        ),
        409,
        "cannot_change_self",
    )
    problem(
        await client.patch(
            f"/api/v1/staff-users/{company.admin_id}", headers=admin, json={"roles": ["cashier"]}
        ),
        409,
        "cannot_change_self",
    )
    renamed = await client.patch(
        f"/api/v1/staff-users/{company.admin_id}", headers=admin, json={"display_name": "老板"}
    )
    assert renamed.status_code == 200


async def test_password_reset_lifts_lock_and_ends_sessions(client) -> None:
    company = await make_company(communities=0)
    staff_id = await make_staff(company, username="forgetful")
    session = (await sign_in(client, company, "forgetful")).json()
    for _ in range(5):
        await sign_in(client, company, "forgetful", "wrong-wrong")
    assert (await staff_row(company, staff_id)).locked_until is not None
    admin = bearer(staff_token(company))
    reset = await client.post(
        f"/api/v1/staff-users/{staff_id}/password", headers=admin, json={"password": NEW_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    problem(await sign_in(client, company, "forgetful"), 401, "invalid_credentials")
    assert (await sign_in(client, company, "forgetful", NEW_PASSWORD)).status_code == 200
    problem(
        await client.post(
            "/api/v1/auth/staff/refresh", json={"refresh_token": session["refresh_token"]}
        ),
        401,
        "refresh_token_revoked",
    )


async def test_other_company_ids_are_not_found(client) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    staff_a = await make_staff(a, username="victim")
    admin_b = bearer(staff_token(b))
    for response in (
        await client.get(f"/api/v1/staff-users/{staff_a}", headers=admin_b),
        await client.patch(
            f"/api/v1/staff-users/{staff_a}", headers=admin_b, json={"is_active": False}
        ),
        await client.post(
            f"/api/v1/staff-users/{staff_a}/password",
            headers=admin_b,
            json={"password": NEW_PASSWORD},
        ),
    ):
        problem(response, 404, "staff_not_found")
        assert "victim" not in response.text
    assert (await sign_in(client, a, "victim")).status_code == 200
    listed = (await client.get("/api/v1/staff-users", headers=admin_b)).json()
    assert {i["id"] for i in listed["items"]} == {str(b.admin_id)}


async def test_audit_log_is_paged_filtered_and_private(client) -> None:
    a = await make_company(communities=0)
    b = await make_company(communities=0)
    admin = bearer(staff_token(a))
    for n in range(3):
        assert (
            await client.post(
                "/api/v1/staff-users",
                headers=admin,
                json=_new_staff([], username=f"staff{n}", phone=None),
            )
        ).status_code == 201
    await sign_in(client, a, "admin", "wrong-password")

    created = (
        await client.get("/api/v1/audit", headers=admin, params={"action": "staff.create"})
    ).json()
    usernames_created = [e for e in created["items"] if e["principal_id"] == str(a.admin_id)]
    assert len(usernames_created) == 3
    ids = [e["id"] for e in created["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert all(e["ip"] == "127.0.0.1" and e["principal_kind"] == "staff" for e in usernames_created)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2, "principal_id": str(a.admin_id)} | (
            {"cursor": cursor} if cursor else {}
        )
        page = (await client.get("/api/v1/audit", headers=admin, params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)

    failed = (
        await client.get("/api/v1/audit", headers=admin, params={"action": "staff.login_failed"})
    ).json()
    assert [e["detail"]["reason"] for e in failed["items"]] == ["wrong_password"]

    from_b = (await client.get("/api/v1/audit", headers=bearer(staff_token(b)))).json()
    assert all(e["id"] not in seen for e in from_b["items"])
    problem(
        await client.get("/api/v1/audit", headers=admin, params={"cursor": "!!"}),
        422,
        "validation_failed",
    )

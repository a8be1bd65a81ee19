"""Staff sign-in: by username or phone, wrong answers, lock-out, rate limits, disabled accounts."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from linli.auth import service
from linli.auth.passwords import needs_rehash
from linli.auth.permissions import Role
from linli.config import get_settings
from linli.db.engine import unit_of_work
from linli.tenancy.models import Tenant, TenantStatus
from tests.auth.staff_helpers import (
    audit_actions,
    client_from,
    new_ip,
    problem,
    set_staff,
    sign_in,
    staff_row,
)
from tests.factories import PASSWORD, bearer, make_company, make_staff

PHONE = "13912345678"


async def test_sign_in_by_username_then_by_phone(client) -> None:
    company = await make_company(communities=2)
    staff_id = await make_staff(
        company,
        roles=(Role.FRONT_DESK, Role.CASHIER),
        community_ids=[company.communities[1]],
        username="Desk.Li",
        phone=PHONE,
    )

    by_name = await sign_in(client, company.slug.upper(), "desk.li")
    assert by_name.status_code == 200, by_name.text
    body = by_name.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().access_token_minutes * 60
    assert body["refresh_token"].startswith(f"{company.id}.")
    assert by_name.headers["cache-control"] == "no-store"

    me = await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    who = me.json()
    assert who["kind"] == "staff"
    assert who["id"] == str(staff_id)
    assert who["tenant"]["slug"] == company.slug
    assert who["roles"] == ["cashier", "front_desk"]
    assert "auth.staff.write" not in who["permissions"]
    assert "residents.read" in who["permissions"]
    assert [c["id"] for c in who["communities"]] == [str(company.communities[1])]

    # The phone in any usual spelling finds the same person.
    by_phone = await sign_in(client, company, "+86 139-1234-5678")
    assert by_phone.status_code == 200, by_phone.text
    row = await staff_row(company, staff_id)
    assert row.last_login_at is not None
    actions = await audit_actions(company, target_id=staff_id)
    assert actions.count("staff.login") == 2


async def test_wrong_password_unknown_login_and_unknown_company_answer_alike(client) -> None:
    company = await make_company(communities=0)
    wrong_password = problem(
        await sign_in(client, company, "admin", "not-the-password"), 401, "invalid_credentials"
    )
    unknown_login = problem(await sign_in(client, company, "nobody"), 401, "invalid_credentials")
    unknown_company = problem(await sign_in(client, "no-such-company"), 401, "invalid_credentials")
    assert wrong_password["detail"] == unknown_login["detail"] == unknown_company["detail"]
    # The failures outlive the refused request's rollback: counted and audited.
    row = await staff_row(company, company.admin_id)
    assert row.failed_logins == 1
    actions = await audit_actions(company)
    assert actions.count("staff.login_failed") == 2


async def test_lock_out_after_repeated_failures_refuses_even_the_right_password(client) -> None:
    company = await make_company(communities=0)
    limit = get_settings().login_max_failures
    for _ in range(limit - 1):
        problem(await sign_in(client, company, "admin", "guess-guess"), 401, "invalid_credentials")
    locked = problem(await sign_in(client, company, "admin", "guess-guess"), 401, "account_locked")
    assert locked["detail"]

    refused = await sign_in(client, company, "admin", PASSWORD)
    problem(refused, 401, "account_locked")
    retry_after = int(refused.headers["retry-after"])
    assert 0 < retry_after <= get_settings().login_lock_minutes * 60
    assert "staff.locked" in await audit_actions(company, target_id=company.admin_id)

    # Once the lock has run out, the right password works and the count starts afresh.
    await set_staff(
        company, company.admin_id, locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    assert (await sign_in(client, company)).status_code == 200
    row = await staff_row(company, company.admin_id)
    assert row.failed_logins == 0
    assert row.locked_until is None


async def test_per_ip_rate_limit_answers_429_with_retry_after(
    app, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await make_company(communities=0)
    monkeypatch.setattr(get_settings(), "login_rate_per_ip", "3/minute")
    attacker = new_ip()
    async with client_from(app, attacker) as http:
        for n in range(3):
            problem(await sign_in(http, company, f"user{n}", "x"), 401, "invalid_credentials")
        blocked = await sign_in(http, company)  # even the right password: the address is blocked
        problem(blocked, 429, "rate_limited")
        assert 0 < int(blocked.headers["retry-after"]) <= 60
    async with client_from(app, new_ip()) as other:
        assert (await sign_in(other, company)).status_code == 200


async def test_per_account_rate_limit_stops_a_spread_out_guesser(
    app, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await make_company(communities=0)
    monkeypatch.setattr(get_settings(), "login_rate_per_account", "3/minute")
    monkeypatch.setattr(get_settings(), "login_max_failures", 100)
    for _ in range(3):
        async with client_from(app, new_ip()) as http:
            problem(
                await sign_in(http, company, "ADMIN", "guess-guess"), 401, "invalid_credentials"
            )
    async with client_from(app, new_ip()) as http:
        problem(await sign_in(http, company, "admin"), 429, "rate_limited")
        # Another login of the same company is counted apart.
        other = await make_staff(company, username="other")
        assert (await sign_in(http, company, "other")).status_code == 200, other


async def test_inactive_staff_and_suspended_company_cannot_sign_in(client) -> None:
    company = await make_company(communities=0)
    staff_id = await make_staff(company, username="leaver")
    await set_staff(company, staff_id, is_active=False)
    problem(await sign_in(client, company, "leaver"), 401, "account_disabled")
    # Without the password nobody learns the account exists but is disabled.
    problem(await sign_in(client, company, "leaver", "wrong-password"), 401, "invalid_credentials")

    assert (await sign_in(client, company)).status_code == 200
    async with unit_of_work() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == company.id).values(status=TenantStatus.SUSPENDED)
        )
    problem(await sign_in(client, company), 401, "account_disabled")


async def test_weak_stored_hash_is_upgraded_at_sign_in(client) -> None:
    company = await make_company(communities=0)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    assert needs_rehash(weak)
    await set_staff(company, company.admin_id, password_hash=weak)
    assert (await sign_in(client, company)).status_code == 200
    upgraded = (await staff_row(company, company.admin_id)).password_hash
    assert upgraded != weak
    assert not needs_rehash(upgraded)
    assert (await sign_in(client, company)).status_code == 200


async def test_operator_sign_in(client) -> None:
    username = f"op-{uuid.uuid4().hex[:8]}"
    async with unit_of_work() as session:
        await service.create_operator(
            session, username=username, display_name="运营", password="operator-password-1"
        )
    problem(
        await client.post(
            "/api/v1/auth/operator/token", json={"username": username, "password": "nope"}
        ),
        401,
        "invalid_credentials",
    )
    signed = await client.post(
        "/api/v1/auth/operator/token",
        json={"username": username.upper(), "password": "operator-password-1"},
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["refresh_token"] is None
    token = signed.json()["access_token"]
    assert (await client.get("/api/v1/operator/tenants", headers=bearer(token))).status_code == 200
    me = (await client.get("/api/v1/auth/me", headers=bearer(token))).json()
    assert me["kind"] == "operator"
    assert me["tenant"] is None
    assert me["permissions"] == ["operator.apps.review", "operator.tenants.manage"]
    # Operators see no company data by default.
    problem(await client.get("/api/v1/staff-users", headers=bearer(token)), 403, "forbidden")

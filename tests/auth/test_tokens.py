"""Access tokens that must be refused, and rotating refresh tokens with reuse detection."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import jwt
from sqlalchemy import insert, update

from linli.auth.models import StaffCommunityGrant, StaffRefreshToken
from linli.auth.permissions import Role
from linli.auth.tokens import ALGORITHM, ISSUER
from linli.config import get_settings
from linli.db.engine import unit_of_work
from linli.tenancy.models import Tenant, TenantStatus
from tests.auth.staff_helpers import audit_actions, problem, sign_in
from tests.factories import Company, bearer, make_company, make_staff, staff_token

STAFF_ENDPOINT = "/api/v1/staff-users"


def _claims(company: Company, **overrides: Any) -> dict[str, Any]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "linli:staff",
        "sub": str(company.admin_id),
        "tid": str(company.id),
        "iat": now,
        "exp": now + 600,
        "roles": ["company_admin"],
        "ac": True,
        "cids": [],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: str | None = None) -> str:
    return jwt.encode(claims, key or get_settings().signing_key(), algorithm=ALGORITHM)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_a_well_formed_token_is_accepted(client) -> None:
    """The control: the refusals below are about the token, not the endpoint."""
    company = await make_company(communities=0)
    response = await client.get(STAFF_ENDPOINT, headers=bearer(_sign(_claims(company))))
    assert response.status_code == 200, response.text


async def test_expired_token(client) -> None:
    company = await make_company(communities=0)
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    token = _sign(_claims(company, iat=past - 900, exp=past))
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(token)), 401, "token_expired")


async def test_tampered_tokens(client) -> None:
    company = await make_company(communities=0)
    front_desk = await make_staff(company)
    token = staff_token(company, front_desk, roles=(Role.FRONT_DESK,), all_communities=False)
    header, payload, signature = token.split(".")

    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    problem(
        await client.get(STAFF_ENDPOINT, headers=bearer(f"{header}.{payload}.{flipped}")),
        401,
        "token_invalid",
    )

    # Promoting oneself in the payload breaks the signature.
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    promoted = _b64(claims | {"roles": ["company_admin"], "ac": True})
    problem(
        await client.get(STAFF_ENDPOINT, headers=bearer(f"{header}.{promoted}.{signature}")),
        401,
        "token_invalid",
    )

    # Signed alike but with someone else's key.
    other_key = _sign(_claims(company), key="another-installation-key-0123456789abcdef")
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(other_key)), 401, "token_invalid")


async def test_alg_none_and_garbage(client) -> None:
    company = await make_company(communities=0)
    unsigned = jwt.encode(_claims(company), None, algorithm="none")
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(unsigned)), 401, "token_invalid")
    # alg=none with the original signature kept on.
    forged = _b64({"alg": "none", "typ": "JWT"}) + "." + _sign(_claims(company)).split(".", 1)[1]
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(forged)), 401, "token_invalid")
    for garbage in ("garbage", "a.b.c", "eyJ.eyJ.", "x" * 2000):
        problem(await client.get(STAFF_ENDPOINT, headers=bearer(garbage)), 401, "token_invalid")
    missing_exp = _sign(_claims(company, exp=None))
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(missing_exp)), 401, "token_invalid")
    problem(await client.get(STAFF_ENDPOINT), 401, "unauthorized")


async def test_wrong_audience(client) -> None:
    company = await make_company(communities=0)
    foreign = _sign(_claims(company, aud="https://partner.example/api"))
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(foreign)), 401, "token_invalid")
    no_issuer = _sign(_claims(company, iss="someone-else"))
    problem(await client.get(STAFF_ENDPOINT, headers=bearer(no_issuer)), 401, "token_invalid")
    # A resident-audience token carrying staff claims stays a resident's: staff endpoints refuse it
    # (403, the team's rule for a valid principal of the wrong kind) and show nothing.
    resident = _sign(_claims(company, aud="linli:resident"))
    refused = await client.get(STAFF_ENDPOINT, headers=bearer(resident))
    problem(refused, 403, "forbidden")
    assert str(company.admin_id) not in refused.text


async def _pair(client, company: Company, login: str = "admin") -> dict[str, Any]:
    response = await sign_in(client, company, login)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refresh(client, refresh_token: str):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/auth/staff/refresh", json={"refresh_token": refresh_token})


async def test_refresh_rotates_and_reuse_revokes_the_family(client) -> None:
    company = await make_company(communities=0)
    first = await _pair(client, company)
    second_response = await _refresh(client, first["refresh_token"])
    assert second_response.status_code == 200, second_response.text
    second = second_response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))
    ).status_code == 200
    third = (await _refresh(client, second["refresh_token"])).json()

    # The first token again: someone holds a copy. The whole family ends.
    problem(await _refresh(client, first["refresh_token"]), 401, "refresh_token_reused")
    problem(await _refresh(client, third["refresh_token"]), 401, "refresh_token_revoked")
    assert "staff.refresh_reused" in await audit_actions(company, target_id=company.admin_id)

    # Another session of the same person is another family and lives on.
    other = await _pair(client, company)
    assert (await _refresh(client, other["refresh_token"])).status_code == 200


async def test_refresh_reads_roles_and_grants_afresh(client) -> None:
    company = await make_company(communities=2)
    staff_id = await make_staff(
        company, roles=(Role.FRONT_DESK,), community_ids=[company.communities[0]], username="desk"
    )
    pair = await _pair(client, company, "desk")
    async with unit_of_work(company.id) as session:
        await session.execute(
            insert(StaffCommunityGrant).values(
                tenant_id=company.id, staff_id=staff_id, community_id=company.communities[1]
            )
        )
    fresh = (await _refresh(client, pair["refresh_token"])).json()
    me = (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).json()
    assert {c["id"] for c in me["communities"]} == {str(c) for c in company.communities}


async def test_logout_ends_the_session(client) -> None:
    company = await make_company(communities=0)
    pair = await _pair(client, company)
    rotated = (await _refresh(client, pair["refresh_token"])).json()
    out = await client.post(
        "/api/v1/auth/staff/logout", json={"refresh_token": rotated["refresh_token"]}
    )
    assert out.status_code == 204
    problem(await _refresh(client, rotated["refresh_token"]), 401, "refresh_token_revoked")
    again = await client.post(
        "/api/v1/auth/staff/logout", json={"refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 204
    assert "staff.logout" in await audit_actions(company, target_id=company.admin_id)


async def test_bad_expired_and_cross_company_refresh_tokens(client) -> None:
    a = await make_company(communities=0)
    b = await make_company(communities=0)
    pair = await _pair(client, a)
    for garbage in ("nonsense", f"{uuid.uuid4()}.abc", "not-a-uuid.secret", "."):
        problem(await _refresh(client, garbage), 401, "refresh_token_invalid")
    # The same secret presented as company B's finds nothing.
    secret = pair["refresh_token"].split(".", 1)[1]
    problem(await _refresh(client, f"{b.id}.{secret}"), 401, "refresh_token_invalid")

    async with unit_of_work(a.id) as session:
        await session.execute(
            update(StaffRefreshToken)
            .where(StaffRefreshToken.staff_id == a.admin_id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    problem(await _refresh(client, pair["refresh_token"]), 401, "refresh_token_expired")


async def test_suspended_company_cannot_refresh(client) -> None:
    company = await make_company(communities=0)
    pair = await _pair(client, company)
    async with unit_of_work() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == company.id).values(status=TenantStatus.SUSPENDED)
        )
    problem(await _refresh(client, pair["refresh_token"]), 401, "account_disabled")

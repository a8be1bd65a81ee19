"""Resident single sign-on into a partner's H5 page: code + PKCE, consent, OpenID Connect."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import bearer, make_company
from tests.platform.factories import install, make_partner_app

REDIRECT = "https://partner.example/callback"


async def _setup(scopes: str = "openid profile houses"):  # type: ignore[no-untyped-def]
    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="李四", phone=phone)
    _, resident_token = await make_resident_account(phone, "李四")
    app = await make_partner_app()
    await install(company, app, scopes=["estate:read"])
    verifier = secrets.token_urlsafe(48)
    params = {
        "tenant_id": str(company.id),
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": scopes,
        "state": "s-123",
        "nonce": "n-456",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return company, houses, app, resident_token, verifier, params


async def _code(client, resident_token: str, params: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    answer = await client.post(
        "/api/v1/platform/oauth/authorize", params=params, headers=bearer(resident_token)
    )
    assert answer.status_code == 200, answer.text
    target = urlsplit(answer.json()["redirect_to"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
    query = parse_qs(target.query)
    assert query["state"] == ["s-123"]
    return query["code"][0]


def _exchange(app, code: str, verifier: str | None, redirect: str = REDIRECT) -> dict[str, str]:  # type: ignore[no-untyped-def]
    data = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "redirect_uri": redirect,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return data


async def test_code_pkce_gives_id_token_with_only_consented_claims(client) -> None:
    company, houses, app, resident_token, verifier, params = await _setup()
    code = await _code(client, resident_token, params)
    answer = await client.post("/api/v1/platform/oauth/token", data=_exchange(app, code, verifier))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = jwt.decode(
        body["id_token"], app.webhook_secret, algorithms=["HS256"], audience=app.client_id
    )
    assert claims["nonce"] == "n-456" and claims["name"] == "李四"
    assert claims["tenant_id"] == str(company.id)
    assert [h["house_id"] for h in claims["houses"]] == [str(houses[0])]
    assert "phone_number" not in claims  # not asked, not shared
    info = await client.get("/api/v1/platform/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    # the resident token opens no staff endpoint
    houses_call = await client.get("/api/v1/estate/houses", headers=bearer(body["access_token"]))
    assert houses_call.status_code == 401


async def test_replayed_code_is_refused_and_revokes_its_token(client) -> None:
    _, _, app, resident_token, verifier, params = await _setup()
    code = await _code(client, resident_token, params)
    first = await client.post("/api/v1/platform/oauth/token", data=_exchange(app, code, verifier))
    assert first.status_code == 200
    replay = await client.post("/api/v1/platform/oauth/token", data=_exchange(app, code, verifier))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    info = await client.get(
        "/api/v1/platform/oauth/userinfo", headers=bearer(first.json()["access_token"])
    )
    assert info.status_code == 401


async def test_missing_or_wrong_verifier_is_refused(client) -> None:
    _, _, app, resident_token, verifier, params = await _setup()
    code = await _code(client, resident_token, params)
    missing = await client.post("/api/v1/platform/oauth/token", data=_exchange(app, code, None))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    code = await _code(client, resident_token, params)
    wrong = await client.post(
        "/api/v1/platform/oauth/token", data=_exchange(app, code, verifier + "x")
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    other_redirect = await client.post(
        "/api/v1/platform/oauth/token",
        data=_exchange(app, code, verifier, "https://partner.example/other"),
    )
    assert other_redirect.status_code == 400


async def test_unregistered_redirect_uri_and_plain_pkce_are_refused(client) -> None:
    _, _, _, resident_token, _, params = await _setup()
    evil = {**params, "redirect_uri": "https://evil.example/steal"}
    answer = await client.post(
        "/api/v1/platform/oauth/authorize", params=evil, headers=bearer(resident_token)
    )
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_redirect_uri"
    assert "evil.example" not in answer.text
    plain = {**params, "code_challenge_method": "plain"}
    answer = await client.post(
        "/api/v1/platform/oauth/authorize", params=plain, headers=bearer(resident_token)
    )
    assert answer.status_code == 400


async def test_resident_without_a_home_there_cannot_consent(client) -> None:
    _, _, _, _, _, params = await _setup()
    _, stranger = await make_resident_account(random_phone(), "路人")
    answer = await client.post(
        "/api/v1/platform/oauth/authorize", params=params, headers=bearer(stranger)
    )
    assert answer.status_code == 403


async def test_portal_entries_follow_installation_and_revocation(client) -> None:
    from linli.auth.actor import Actor, PrincipalKind
    from linli.db.engine import unit_of_work
    from linli.platform import service
    from linli.platform.models import PartnerApp

    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="赵六", phone=phone)
    account_id, _ = await make_resident_account(phone, "赵六")
    app = await make_partner_app()
    async with unit_of_work() as session:
        row = await session.get(PartnerApp, app.app_id)
        assert row is not None
        row.entry_url = "https://locker.example/h5"
    inst = await install(company, app, scopes=["estate:read"])
    resident = Actor(kind=PrincipalKind.RESIDENT, id=account_id)
    async with unit_of_work() as session:
        entries = await service.portal_entries(session, resident)
    assert [e.app.id for e in entries] == [app.app_id]
    admin = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(company.id) as session:
        await service.revoke_installation(session, admin, inst.installation_id)
    async with unit_of_work() as session:
        assert await service.portal_entries(session, resident) == []


async def test_resident_token_stops_when_revoked_or_suspended(client) -> None:
    import uuid

    from linli.auth.actor import Actor, PrincipalKind
    from linli.auth.tokens import issue_access_token
    from tests.factories import staff_token

    async def signed_in() -> str:
        code = await _code(client, resident_token, params)
        answer = await client.post(
            "/api/v1/platform/oauth/token", data=_exchange(app, code, verifier)
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        info = await client.get("/api/v1/platform/oauth/userinfo", headers=bearer(token))
        assert info.status_code == 200
        return token

    company, _, app, resident_token, verifier, params = await _setup()
    token = await signed_in()
    operator = bearer(issue_access_token(Actor(kind=PrincipalKind.OPERATOR, id=uuid.uuid4()))[0])
    suspended = await client.post(
        f"/api/v1/platform/review/{app.app_id}/suspend", headers=operator, json={"reason": "x"}
    )
    assert suspended.status_code == 200
    info = await client.get("/api/v1/platform/oauth/userinfo", headers=bearer(token))
    assert info.status_code == 401 and info.json()["code"] == "token_revoked"
    await client.post(f"/api/v1/platform/review/{app.app_id}/reinstate", headers=operator)
    assert (
        await client.get("/api/v1/platform/oauth/userinfo", headers=bearer(token))
    ).status_code == 200

    admin = bearer(staff_token(company))
    listed = await client.get("/api/v1/platform/installations", headers=admin)
    installation_id = listed.json()[0]["id"]
    await client.post(f"/api/v1/platform/installations/{installation_id}/revoke", headers=admin)
    info = await client.get("/api/v1/platform/oauth/userinfo", headers=bearer(token))
    assert info.status_code == 401
    introspected = await client.post(
        "/api/v1/platform/oauth/introspect",
        data={"token": token},
        auth=(app.client_id, app.client_secret),
    )
    assert introspected.json() == {"active": False}

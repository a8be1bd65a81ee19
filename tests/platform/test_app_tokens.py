"""Client-credentials tokens of partner apps on the existing endpoints: scopes and fences."""

from __future__ import annotations

from linli.platform import access_log
from tests.estate.factories import make_houses
from tests.factories import bearer, make_company, staff_token
from tests.platform.factories import app_token, install, make_partner_app


async def _token(client, app, inst, scope=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = await app_token(client, app, inst, scope)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 600
    return bearer(body["access_token"])


async def test_token_reads_granted_scope_in_granted_communities_only(client) -> None:
    company = await make_company(communities=2)
    first = await make_houses(company, community=0)
    second = await make_houses(company, community=1)
    app = await make_partner_app()
    inst = await install(company, app, scopes=["estate:read"], communities=[company.communities[0]])
    token = await _token(client, app, inst)

    listed = await client.get("/api/v1/estate/houses", headers=token, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    assert {h["id"] for h in listed.json()["items"]} == {str(h) for h in first}
    assert "RateLimit-Remaining" in listed.headers and "RateLimit-Policy" in listed.headers
    # a house of a community not granted: as if it did not exist
    outside = await client.get(f"/api/v1/estate/houses/{second[0]}", headers=token)
    assert outside.status_code == 404
    # an endpoint outside the granted scopes
    residents = await client.get("/api/v1/residents", headers=token)
    assert residents.status_code == 403
    # staff-only endpoints stay closed whatever the scopes
    staff = await client.get("/api/v1/staff-users", headers=token)
    assert staff.status_code == 403

    await access_log.flush()
    admin = bearer(staff_token(company))
    export = await client.get("/api/v1/platform/access-log/export", headers=admin)
    assert export.status_code == 200
    lines = export.text.strip().splitlines()[1:]
    assert len(lines) == 4
    by_endpoint = {line.split(",")[5]: line.split(",") for line in lines}
    assert by_endpoint["/api/v1/estate/houses"][8] == str(len(first))
    assert by_endpoint["/api/v1/residents"][9] == "403"
    assert by_endpoint["/api/v1/estate/houses/{house_id}"][9] == "404"


async def test_another_company_is_out_of_reach_and_logged(client) -> None:
    a = await make_company()
    b = await make_company()
    houses_b = await make_houses(b)
    app = await make_partner_app()
    inst = await install(a, app, scopes=["estate:read"])
    token = await _token(client, app, inst)
    response = await client.get(f"/api/v1/estate/houses/{houses_b[0]}", headers=token)
    assert response.status_code == 404
    # and the installation of company A cannot get a token for company B
    forged = await app_token(
        client, app, type(inst)(tenant_id=b.id, installation_id=inst.installation_id)
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"
    await access_log.flush()
    export = await client.get("/api/v1/platform/access-log/export", headers=bearer(staff_token(a)))
    assert ",404" in export.text


async def test_scope_must_be_granted_and_secret_right(client) -> None:
    company = await make_company()
    app = await make_partner_app()
    inst = await install(company, app, scopes=["estate:read"])
    wider = await app_token(client, app, inst, scope="estate:read residents:read:basic")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    app.client_secret = "wrong"
    bad = await app_token(client, app, inst)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_revoked_installation_token_stops_at_once(client) -> None:
    company = await make_company()
    await make_houses(company)
    app = await make_partner_app()
    inst = await install(company, app, scopes=["estate:read"])
    token = await _token(client, app, inst)
    assert (await client.get("/api/v1/estate/houses", headers=token)).status_code == 200
    admin = bearer(staff_token(company))
    revoked = await client.post(
        f"/api/v1/platform/installations/{inst.installation_id}/revoke", headers=admin
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    again = await client.get("/api/v1/estate/houses", headers=token)
    assert again.status_code == 401 and again.json()["code"] == "token_revoked"
    assert (await app_token(client, app, inst)).status_code == 400
    await access_log.flush()
    export = await client.get("/api/v1/platform/access-log/export", headers=admin)
    statuses = [line.split(",")[9] for line in export.text.strip().splitlines()[1:]]
    assert statuses == ["200", "401"]  # the refused call is in the company's log too


async def test_introspection_and_revocation(client) -> None:
    company = await make_company()
    app = await make_partner_app()
    other = await make_partner_app()
    inst = await install(company, app, scopes=["estate:read"])
    token = (await app_token(client, app, inst)).json()["access_token"]
    creds = {"client_id": app.client_id, "client_secret": app.client_secret}
    seen = await client.post("/api/v1/platform/oauth/introspect", data={"token": token, **creds})
    assert seen.json()["active"] is True and seen.json()["scope"] == "estate:read"
    assert seen.json()["installation_id"] == str(inst.installation_id)
    # another app learns nothing about this token
    foreign = await client.post(
        "/api/v1/platform/oauth/introspect",
        data={"token": token, "client_id": other.client_id, "client_secret": other.client_secret},
    )
    assert foreign.json() == {"active": False}
    assert (
        await client.post("/api/v1/platform/oauth/revoke", data={"token": token, **creds})
    ).status_code == 200
    gone = await client.post("/api/v1/platform/oauth/introspect", data={"token": token, **creds})
    assert gone.json() == {"active": False}
    call = await client.get("/api/v1/estate/houses", headers=bearer(token))
    assert call.status_code == 401


async def test_live_credentials_of_unapproved_app_are_refused(client) -> None:
    company = await make_company()
    approved = await make_partner_app()
    inst = await install(company, approved, scopes=["estate:read"])
    pending = await make_partner_app(approve=False)
    pending.app_id = approved.app_id
    response = await app_token(client, pending, inst)
    assert response.status_code == 400 and response.json()["error"] == "app_not_approved"


async def test_rate_limit_answers_429_with_headers(client, monkeypatch) -> None:
    from linli.platform import ratelimit

    monkeypatch.setattr(ratelimit, "PER_INSTALLATION", "3/minute")
    company = await make_company()
    app = await make_partner_app()
    inst = await install(company, app, scopes=["estate:read"])
    token = await _token(client, app, inst)
    statuses = [
        (await client.get("/api/v1/estate/houses", headers=token)).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    refused = await client.get("/api/v1/estate/houses", headers=token)
    assert refused.headers["Retry-After"] and refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["content-type"].startswith("application/problem+json")

"""Developer portal API: registering, malicious manifests, credentials, operator review,
the company's directory and grants."""

from __future__ import annotations

import base64
import secrets

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.tokens import issue_access_token
from linli.platform.schemas import MAX_ICON_BYTES
from tests.factories import bearer, make_company, staff_token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _developer(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/platform/partners",
        json={
            "company_name": "丰巢测试",
            "email": f"d{secrets.token_hex(4)}@locker.example",
            "display_name": "开发者",
            "password": "a-long-password-1",
        },
    )
    assert response.status_code == 201, response.text
    return bearer(response.json()["access_token"])


def _manifest(**over: object) -> dict[str, object]:
    return {
        "name": "快递柜",
        "description": "Parcel lockers for every building",
        "requested_scopes": ["estate:read", "residents:read:basic", "access:passes:write"],
        "events": ["residents.resident.moved_in"],
        "webhook_url": "https://locker.example/hooks",
        "entry_url": "https://locker.example/h5",
        "redirect_uris": ["https://locker.example/callback"],
        **over,
    }


async def test_malicious_manifests_are_refused(client) -> None:
    dev = await _developer(client)
    bad = [
        {"name": "<script>alert(1)</script>"},
        {"name": "x" * 61},
        {"requested_scopes": ["everything:write"]},
        {"events": ["secret.stuff"]},
        {"webhook_url": "http://partner.example/hook"},  # plain http off loopback
        {"webhook_url": "javascript:alert(1)"},
        {"redirect_uris": ["https://u:p@locker.example/cb"]},
        {
            "icon_base64": base64.b64encode(b"<svg onload=alert(1)>").decode(),
            "icon_type": "image/svg+xml",
        },
        {
            "icon_base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * MAX_ICON_BYTES).decode(),
            "icon_type": "image/png",
        },
        {"icon_base64": base64.b64encode(b"GIF89a....").decode(), "icon_type": "image/png"},
    ]
    for over in bad:
        response = await client.post("/api/v1/platform/apps", headers=dev, json=_manifest(**over))
        assert response.status_code == 422, (over, response.status_code, response.text[:200])
    good = await client.post(
        "/api/v1/platform/apps",
        headers=dev,
        json=_manifest(icon_base64=base64.b64encode(PNG).decode(), icon_type="image/png"),
    )
    assert good.status_code == 201, good.text
    assert good.json()["webhook_secret"].startswith("whsec_")
    assert good.json()["review_status"] == "draft"


async def test_review_directory_install_fewer_scopes(client) -> None:
    dev = await _developer(client)
    app = (await client.post("/api/v1/platform/apps", headers=dev, json=_manifest())).json()
    creds = await client.post(
        f"/api/v1/platform/apps/{app['id']}/credentials",
        headers=dev,
        params={"environment": "live"},
    )
    assert creds.status_code == 201 and creds.json()["client_id"].startswith("live_")
    company = await make_company()
    admin = bearer(staff_token(company))
    directory = await client.get("/api/v1/platform/directory", headers=admin)
    assert app["id"] not in {a["id"] for a in directory.json()}  # not reviewed yet

    submitted = await client.post(f"/api/v1/platform/apps/{app['id']}/submit", headers=dev)
    assert submitted.json()["review_status"] == "pending"
    operator = bearer(
        issue_access_token(Actor(kind=PrincipalKind.OPERATOR, id=company.admin_id))[0]
    )
    queue = await client.get("/api/v1/platform/review", headers=operator)
    assert app["id"] in {a["id"] for a in queue.json()}
    # a company admin is no operator
    assert (
        await client.post(
            f"/api/v1/platform/review/{app['id']}", headers=admin, json={"approve": True}
        )
    ).status_code == 403
    approved = await client.post(
        f"/api/v1/platform/review/{app['id']}", headers=operator, json={"approve": True}
    )
    assert approved.json()["review_status"] == "approved"

    directory = await client.get("/api/v1/platform/directory", headers=admin)
    assert app["id"] in {a["id"] for a in directory.json()}
    too_much = await client.post(
        "/api/v1/platform/installations",
        headers=admin,
        json={
            "app_id": app["id"],
            "community_ids": [str(company.communities[0])],
            "scopes": ["estate:read", "billing:read"],
        },
    )
    assert too_much.status_code == 422
    installed = await client.post(
        "/api/v1/platform/installations",
        headers=admin,
        json={
            "app_id": app["id"],
            "community_ids": [str(company.communities[0])],
            "scopes": ["estate:read"],
        },
    )
    assert installed.status_code == 201, installed.text
    assert installed.json()["granted_scopes"] == ["estate:read"]
    other = await make_company()
    foreign_community = await client.post(
        "/api/v1/platform/installations",
        headers=bearer(staff_token(other)),
        json={
            "app_id": app["id"],
            "community_ids": [str(company.communities[0])],
            "scopes": ["estate:read"],
        },
    )
    assert foreign_community.status_code == 404
    # the developer's token is nothing outside the developer portal
    assert (await client.get("/api/v1/platform/installations", headers=dev)).status_code == 401
    # and another developer cannot touch this app
    intruder = await _developer(client)
    assert (
        await client.get(f"/api/v1/platform/apps/{app['id']}", headers=intruder)
    ).status_code == 404


async def test_developer_sign_in(client) -> None:
    email = f"d{secrets.token_hex(4)}@locker.example"
    await client.post(
        "/api/v1/platform/partners",
        json={
            "company_name": "伙伴",
            "email": email,
            "display_name": "开发者",
            "password": "a-long-password-1",
        },
    )
    ok = await client.post(
        "/api/v1/platform/developer/token", json={"email": email, "password": "a-long-password-1"}
    )
    assert ok.status_code == 200
    wrong = await client.post(
        "/api/v1/platform/developer/token", json={"email": email, "password": "nope-nope-nope"}
    )
    assert wrong.status_code == 401


async def test_demo_partner_seed_is_idempotent() -> None:
    from linli.platform.seed import seed_demo_partner

    first = await seed_demo_partner()
    second = await seed_demo_partner()
    assert first.app_id == second.app_id
    assert first.client_id != second.client_id  # fresh credentials each run

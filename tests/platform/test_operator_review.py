"""The platform operator's review and suspension of partner apps, through the API:
the queue's rules, a rejection's reason reaching the developer, and a suspension
taking effect at once on tokens, webhooks, resident sign-in and portal entries."""

from __future__ import annotations

import secrets
import uuid

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.tokens import issue_access_token
from linli.core import outbox
from linli.core.tasks import deliver_to
from linli.db.engine import unit_of_work
from linli.platform import access_log, service, webhooks
from linli.platform.api import issue_developer_token
from linli.platform.models import PartnerApp
from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import bearer, make_company, staff_token
from tests.platform.factories import app_token, install, make_partner_app
from tests.platform.receiver import Receiver

WORKORDER = "workorder.created"


def _operator() -> dict[str, str]:
    return bearer(issue_access_token(Actor(kind=PrincipalKind.OPERATOR, id=uuid.uuid4()))[0])


async def _draft(client) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    registered = await client.post(
        "/api/v1/platform/partners",
        json={
            "company_name": "丰邻",
            "email": f"d{secrets.token_hex(4)}@locker.example",
            "display_name": "开发者",
            "password": "a-long-password-1",
        },
    )
    dev = bearer(registered.json()["access_token"])
    created = await client.post(
        "/api/v1/platform/apps",
        headers=dev,
        json={"name": "快递柜", "requested_scopes": ["estate:read"]},
    )
    assert created.status_code == 201, created.text
    return dev, created.json()["id"]


async def test_operator_decides_only_on_the_queue_and_a_rejection_needs_a_reason(client) -> None:
    dev, app_id = await _draft(client)
    operator = _operator()
    # a draft is not in the queue and cannot be approved behind the developer's back
    early = await client.post(
        f"/api/v1/platform/review/{app_id}", headers=operator, json={"approve": True}
    )
    assert early.status_code == 409 and early.json()["code"] == "app_not_pending"
    await client.post(f"/api/v1/platform/apps/{app_id}/submit", headers=dev)
    silent = await client.post(
        f"/api/v1/platform/review/{app_id}", headers=operator, json={"approve": False}
    )
    assert silent.status_code == 422
    rejected = await client.post(
        f"/api/v1/platform/review/{app_id}",
        headers=operator,
        json={"approve": False, "note": "图标不清晰"},
    )
    assert rejected.status_code == 200 and rejected.json()["review_status"] == "rejected"
    seen = (await client.get(f"/api/v1/platform/apps/{app_id}", headers=dev)).json()
    assert seen["review_status"] == "rejected" and seen["review_note"] == "图标不清晰"
    # fixed and resubmitted: back in the queue, approved this time
    await client.post(f"/api/v1/platform/apps/{app_id}/submit", headers=dev)
    queue = (await client.get("/api/v1/platform/review", headers=operator)).json()
    assert app_id in {a["id"] for a in queue}
    approved = await client.post(
        f"/api/v1/platform/review/{app_id}", headers=operator, json={"approve": True}
    )
    assert approved.json()["review_status"] == "approved"
    twice = await client.post(
        f"/api/v1/platform/review/{app_id}",
        headers=operator,
        json={"approve": False, "note": "changed my mind"},
    )
    assert twice.status_code == 409  # suspension, not rejection, pulls a live app


async def test_only_operators_suspend(client) -> None:
    company = await make_company()
    app = await make_partner_app()
    body = {"reason": "x"}
    url = f"/api/v1/platform/review/{app.app_id}/suspend"
    assert (await client.post(url, json=body)).status_code == 401
    admin = bearer(staff_token(company))
    assert (await client.post(url, headers=admin, json=body)).status_code == 403
    dev = bearer(issue_developer_token(app.developer.id, app.developer.partner_id, "d"))
    assert (await client.post(url, headers=dev, json=body)).status_code == 401
    _, resident = await make_resident_account(random_phone(), "住户")
    assert (await client.post(url, headers=bearer(resident), json=body)).status_code == 403
    assert (await client.post(url, headers=_operator(), json={"reason": ""})).status_code == 422


async def test_suspension_stops_tokens_webhooks_sign_in_and_entries_at_once(
    client, owner_dsn: str
) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="钱八", phone=phone)
    account_id, resident_token = await make_resident_account(phone, "钱八")
    with Receiver("x") as receiver:
        app = await make_partner_app(events=[WORKORDER], webhook_url=receiver.url)
        receiver.secret = app.webhook_secret
        async with unit_of_work() as session:
            row = await session.get(PartnerApp, app.app_id)
            assert row is not None
            row.entry_url = "https://locker.example/h5"
        inst = await install(company, app, scopes=["estate:read"])
        issued = await app_token(client, app, inst)
        token = bearer(issued.json()["access_token"])
        assert (await client.get("/api/v1/estate/houses", headers=token)).status_code == 200
        # a delivery already waiting when the app is suspended
        async with unit_of_work(company.id) as session:
            before = await outbox.emit(
                session, Actor.system(company.id), WORKORDER, {"order_id": "before"}
            )
        assert await deliver_to(company.id, before, webhooks.WebhookConsumer())

        suspended = await client.post(
            f"/api/v1/platform/review/{app.app_id}/suspend",
            headers=_operator(),
            json={"reason": "泄露住户数据"},
        )
        assert suspended.status_code == 200 and suspended.json()["review_status"] == "suspended"

        # the token in hand stops on its next call
        again = await client.get("/api/v1/estate/houses", headers=token)
        assert again.status_code == 401 and again.json()["code"] == "token_revoked"
        # no new token, no introspection
        refused = await app_token(client, app, inst)
        assert refused.status_code == 400 and refused.json()["error"] == "app_suspended"
        introspect = await client.post(
            "/api/v1/platform/oauth/introspect",
            data={"token": issued.json()["access_token"]},
            auth=(app.client_id, app.client_secret),
        )
        assert introspect.status_code == 400
        # no webhook: the waiting delivery is dropped, a new event makes none
        assert await webhooks.dispatch_installation(company.id, inst.installation_id) == 0
        async with unit_of_work(company.id) as session:
            after = await outbox.emit(
                session, Actor.system(company.id), WORKORDER, {"order_id": "after"}
            )
        assert await deliver_to(company.id, after, webhooks.WebhookConsumer())
        async with unit_of_work(company.id) as session:
            rows = await webhooks.delivery_rows(session, inst.installation_id)
        assert [(r.status, r.last_error) for r in rows] == [("failed", "app suspended")]
        assert receiver.received == []
        # no resident sign-in, no portal entry
        params = {
            "tenant_id": str(company.id),
            "client_id": app.client_id,
            "redirect_uri": "https://partner.example/callback",
            "scope": "openid profile",
            "state": "s",
            "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
            "code_challenge_method": "S256",
        }
        consent = await client.post(
            "/api/v1/platform/oauth/authorize", params=params, headers=bearer(resident_token)
        )
        assert consent.status_code == 403 and consent.json()["code"] == "app_suspended"
        resident = Actor(kind=PrincipalKind.RESIDENT, id=account_id)
        async with unit_of_work() as session:
            assert await service.portal_entries(session, resident) == []
        # the developer sees why, and cannot resubmit their way out
        dev = bearer(issue_developer_token(app.developer.id, app.developer.partner_id, "d"))
        seen = (await client.get(f"/api/v1/platform/apps/{app.app_id}", headers=dev)).json()
        assert seen["review_status"] == "suspended" and seen["review_note"] == "泄露住户数据"
        resubmit = await client.post(f"/api/v1/platform/apps/{app.app_id}/submit", headers=dev)
        assert resubmit.status_code == 409 and resubmit.json()["code"] == "app_suspended"
        # the company still has its installation and sees the app suspended
        listed = await client.get(
            "/api/v1/platform/installations", headers=bearer(staff_token(company))
        )
        assert [i["revoked_at"] for i in listed.json()] == [None]

        listed_suspended = await client.get(
            "/api/v1/platform/review", headers=_operator(), params={"status": "suspended"}
        )
        assert str(app.app_id) in {a["id"] for a in listed_suspended.json()}
        reinstated = await client.post(
            f"/api/v1/platform/review/{app.app_id}/reinstate", headers=_operator()
        )
        assert reinstated.json()["review_status"] == "approved"
        fresh = await app_token(client, app, inst)
        assert fresh.status_code == 200
        houses_again = await client.get(
            "/api/v1/estate/houses", headers=bearer(fresh.json()["access_token"])
        )
        assert houses_again.status_code == 200
        async with unit_of_work() as session:
            assert [e.app.id for e in await service.portal_entries(session, resident)] == [
                app.app_id
            ]


async def test_company_b_cannot_see_company_a_installations_or_log(client) -> None:
    a = await make_company()
    b = await make_company()
    app = await make_partner_app()
    inst = await install(a, app, scopes=["estate:read"])
    admin_b = bearer(staff_token(b))
    listed = await client.get("/api/v1/platform/installations", headers=admin_b)
    assert listed.status_code == 200 and listed.json() == []
    revoke = await client.post(
        f"/api/v1/platform/installations/{inst.installation_id}/revoke", headers=admin_b
    )
    assert revoke.status_code == 404
    # A's app calls are in A's access log only
    token = await app_token(client, app, inst)
    headers_app = bearer(token.json()["access_token"])
    assert (await client.get("/api/v1/estate/houses", headers=headers_app)).status_code == 200
    await access_log.flush()
    export_b = await client.get("/api/v1/platform/access-log/export", headers=admin_b)
    assert export_b.status_code == 200 and len(export_b.text.strip().splitlines()) == 1
    daily_b = await client.get("/api/v1/platform/access-log/daily", headers=admin_b)
    assert daily_b.json() == []
    export_a = await client.get(
        "/api/v1/platform/access-log/export", headers=bearer(staff_token(a))
    )
    assert "/api/v1/estate/houses" in export_a.text
    listed_a = await client.get("/api/v1/platform/installations", headers=bearer(staff_token(a)))
    assert [i["id"] for i in listed_a.json()] == [str(inst.installation_id)]
    assert listed_a.json()[0]["revoked_at"] is None
    # B may install the same app for itself: its own row, A's untouched
    mine = await install(b, app, scopes=["estate:read"])
    assert mine.installation_id != inst.installation_id
    listed = await client.get("/api/v1/platform/installations", headers=admin_b)
    assert [i["id"] for i in listed.json()] == [str(mine.installation_id)]

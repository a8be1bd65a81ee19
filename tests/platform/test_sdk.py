"""The Python SDK (sdk/python): its paths exist in linli's OpenAPI, its verifier accepts
linli's signatures and nothing else, its async client works against the app."""

from __future__ import annotations

import datetime as dt
import sys

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import ROOT
from tests.estate.factories import make_houses
from tests.factories import make_company
from tests.platform.factories import install, make_partner_app

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from linli_sdk import (
    ApiError,
    AsyncLinliClient,
    Installation,
    InvalidWebhook,
    verify_webhook,
)
from linli_sdk.client import PATHS


def test_every_sdk_path_is_in_the_openapi(app) -> None:
    paths = app.openapi()["paths"]
    for name, (method, path) in PATHS.items():
        assert path in paths, name
        assert method in paths[path], (name, method)


def test_verifier_accepts_linli_signatures_only() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"id":"e1","type":"workorder.created","tenant_id":"t","timestamp":"x","data":{"n":1}}'
    now = dt.datetime.now(dt.UTC)
    headers = {
        "Webhook-Id": "msg_e1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("msg_e1", now, body),
        "linli-installation-id": "i1",
    }
    event = verify_webhook(secret, body, headers)
    assert (event.id, event.type, event.data, event.installation_id) == (
        "msg_e1",
        "workorder.created",
        {"n": 1},
        "i1",
    )
    with pytest.raises(InvalidWebhook):
        verify_webhook(secret, body.replace('"n":1', '"n":2'), headers)
    old = now - dt.timedelta(minutes=10)
    stale = {
        **headers,
        "Webhook-Timestamp": str(int(old.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("msg_e1", old, body),
    }
    with pytest.raises(InvalidWebhook):
        verify_webhook(secret, body, stale)


async def test_async_client_gets_a_token_and_reads(app) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    partner = await make_partner_app()
    inst = await install(company, partner, scopes=["estate:read"])
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    async with AsyncLinliClient(
        "http://testserver",
        partner.client_id,
        partner.client_secret,
        Installation(inst.tenant_id, inst.installation_id),
        http=http,
    ) as linli:
        listed = await linli.houses(limit=200)
        assert {h["id"] for h in listed} == {str(h) for h in houses}
        token = await linli.access_token()
        assert await linli.access_token() == token  # cached until close to expiry
        with pytest.raises(ApiError) as refused:
            await linli.residents()
        assert refused.value.status == 403

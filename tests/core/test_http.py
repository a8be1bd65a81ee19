"""Cross-cutting HTTP behaviour: request ids, health, metrics, logs without personal data."""

from __future__ import annotations

import json

import pytest

from linli.core.logging import redact_processor
from tests.factories import bearer, make_company, staff_token


async def test_request_id_is_echoed_or_generated(client) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "req-abc.123"})
    assert echoed.headers["x-request-id"] == "req-abc.123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"})
    assert generated.headers["x-request-id"] != "bad id with spaces\n"
    assert len(generated.headers["x-request-id"]) == 32


async def test_problem_carries_request_id_and_locale(client) -> None:
    response = await client.get(
        "/api/v1/communities", headers={"X-Request-ID": "trace-1", "Accept-Language": "en"}
    )
    assert response.status_code == 401
    body = response.json()
    assert body["request_id"] == "trace-1"
    assert body["type"] == "urn:linli:problem:unauthorized"
    assert body["detail"] == "Sign-in is required."


async def test_readyz_checks_database_and_broker(client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "mqtt": "ok"}


async def test_readyz_reports_a_dead_broker(client, monkeypatch: pytest.MonkeyPatch) -> None:
    from linli.config import get_settings

    monkeypatch.setattr(get_settings(), "mqtt_url", "mqtt://127.0.0.1:1")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["mqtt"].startswith("error")


async def test_metrics_count_requests_by_route_template(client) -> None:
    company = await make_company(communities=1)
    await client.get(
        f"/api/v1/communities/{company.communities[0]}", headers=bearer(staff_token(company))
    )
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/communities/{community_id}"' in text
    assert str(company.communities[0]) not in text


def test_logs_never_carry_phones_tokens_or_id_numbers() -> None:
    event = {
        "event": "sign-in for 13912345678 failed",
        "phone": "13912345678",
        "headers": {
            "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sgnaturexx"
        },
        "note": "id 11010519491231002X, token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk",
        "status_code": 401,
    }
    rendered = json.dumps(redact_processor(None, "info", event))
    for secret in ("13912345678", "11010519491231002X", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in rendered
    assert '"status_code": 401' in rendered

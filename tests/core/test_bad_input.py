"""Bad input gets a clear RFC 9457 problem with a stable code, never a 500 or a silent drop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from linli.config import get_settings
from tests.factories import bearer, make_company, staff_token

LOGIN = "/api/v1/auth/staff/token"
STAFF = "/api/v1/staff-users"
JSON = {"content-type": "application/json"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["type"] == f"urn:linli:problem:{code}"
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def _staff(**overrides: Any) -> dict[str, Any]:
    return {
        "username": "wang.fang",
        "display_name": "王芳",
        "password": "long-enough-password",
        "roles": ["cashier"],
    } | overrides


async def test_unknown_fields_are_refused_by_name(client) -> None:
    company = await make_company(communities=0)
    response = await client.post(
        STAFF, headers=bearer(staff_token(company)), json=_staff(is_superuser=True, colour="red")
    )
    assert _fields(_problem(response, 422, "validation_failed")) == {"is_superuser", "colour"}
    login = await client.post(
        LOGIN, json={"company": "x", "login": "a", "password": "b", "otp": "1"}
    )
    assert _fields(_problem(login, 422, "validation_failed")) == {"otp"}


async def test_wrong_types_name_the_field(client) -> None:
    company = await make_company(communities=0)
    admin = bearer(staff_token(company))
    cases = {
        "display_name": _staff(display_name=5),
        "roles": _staff(roles="cashier"),
        "roles.0": _staff(roles=["emperor"]),
        "community_ids.0": _staff(community_ids=["not-a-uuid"]),
        "all_communities": _staff(all_communities="sometimes"),
    }
    for field, body in cases.items():
        response = await client.post(STAFF, headers=admin, json=body)
        assert field in _fields(_problem(response, 422, "validation_failed")), (
            field,
            response.text,
        )
    page = await client.get(STAFF, headers=admin, params={"limit": "lots"})
    assert _fields(_problem(page, 422, "validation_failed")) == {"limit"}
    bad_id = await client.get(f"{STAFF}/not-a-uuid", headers=admin)
    assert _fields(_problem(bad_id, 422, "validation_failed")) == {"staff_user_id"}


async def test_oversized_bodies_get_413_whether_declared_or_streamed(client) -> None:
    limit = get_settings().max_body_bytes
    padding = "x" * (limit + 1)
    declared = await client.post(LOGIN, json={"company": "x", "login": "a", "password": padding})
    _problem(declared, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"company": "x", "login": "a", "password": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    streamed = await client.post(LOGIN, content=chunks(), headers=JSON)
    assert "content-length" not in streamed.request.headers
    _problem(streamed, 413, "payload_too_large")

    # Just under the limit the body is read and judged on its content (password too long).
    under = '{"company": "x", "login": "a", "password": "' + "z" * (limit - 100) + '"}'
    assert len(under.encode()) <= limit
    judged = await client.post(LOGIN, content=under.encode(), headers=JSON)
    assert _fields(_problem(judged, 422, "validation_failed")) == {"password"}


async def test_unreadable_bodies_are_422_not_500(client) -> None:
    bodies = {
        "invalid utf-8": b'{"company": "\xff\xfe", "login": "a", "password": "b"}',
        "truncated json": b'{"company": ',
        "not json at all": b"company=x&login=a",
        "too deeply nested": b"[" * 100_000,
        "empty": b"",
    }
    for name, raw in bodies.items():
        response = await client.post(LOGIN, content=raw, headers=JSON)
        body = _problem(response, 422, "validation_failed")
        assert body["errors"], name


async def test_json_of_the_wrong_shape_or_media_type(client) -> None:
    as_list = await client.post(LOGIN, json=["company", "login"])
    _problem(as_list, 422, "validation_failed")
    text = await client.post(
        LOGIN,
        content=b'{"company": "x", "login": "a", "password": "b"}',
        headers={"content-type": "text/plain"},
    )
    assert _fields(_problem(text, 422, "validation_failed")) == {"body"}
    form = await client.post(LOGIN, data={"company": "x", "login": "a", "password": "b"})
    assert _fields(_problem(form, 422, "validation_failed")) == {"body"}


async def test_nul_characters_are_refused_by_name(client) -> None:
    company = await make_company(communities=0)
    login = await client.post(
        LOGIN, json={"company": company.slug, "login": "adm\u0000in", "password": "b"}
    )
    assert _fields(_problem(login, 422, "validation_failed")) == {"login"}
    created = await client.post(
        STAFF, headers=bearer(staff_token(company)), json=_staff(display_name="王\u0000芳")
    )
    assert _fields(_problem(created, 422, "validation_failed")) == {"display_name"}
    audit = await client.get(
        "/api/v1/audit", headers=bearer(staff_token(company)), params={"action": "a\u0000b"}
    )
    assert _fields(_problem(audit, 422, "validation_failed")) == {"action"}

"""Resident sign-in with phone + one-time code, and the attacks on it.

Every test uses its own phone numbers and its own client IP, so the per-phone and
per-IP counters of one test never help or hurt another.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import structlog
from pydantic import SecretStr

from linli.auth import residents, sms
from linli.auth.tokens import hash_secret
from linli.config import get_settings
from linli.core import crypto
from linli.core.errors import ServiceUnavailable
from linli.core.logging import redact_processor
from linli.db.engine import unit_of_work
from tests.auth.rotation import age_rotation
from tests.factories import bearer, make_company, staff_token
from tests.fakes.sms import FakeSmsGateway

_ips = itertools.count(1)


def new_phone() -> str:
    return f"139{secrets.randbelow(10**8):08d}"


def new_ip() -> str:
    n = next(_ips)
    return f"10.71.{n // 250}.{n % 250 + 1}"


@pytest.fixture
async def resident_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(new_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def ask_code(http: httpx.AsyncClient, phone: str) -> str:
    response = await http.post("/api/v1/auth/resident/otp", json={"phone": phone})
    assert response.status_code == 202, response.text
    normalized = crypto.normalize_phone(phone)
    assert normalized is not None
    return sms.dev_outbox()[normalized]


async def sign_in(http: httpx.AsyncClient, phone: str) -> dict[str, Any]:
    code = await ask_code(http, phone)
    response = await http.post("/api/v1/auth/resident/token", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_full_otp_path_signs_in_and_shows_the_masked_phone(
    resident_client: httpx.AsyncClient, owner_dsn: str
) -> None:
    phone = new_phone()
    # Spaces and +86 as people type them.
    typed = f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    code = await ask_code(resident_client, typed)
    assert len(code) == 6 and code.isdigit()

    response = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": typed, "code": code}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == get_settings().access_token_minutes * 60
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "linli:resident" and "tid" not in claims

    me = await resident_client.get("/api/v1/resident/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert body["id"] == claims["sub"]
    assert body["wechat_linked"] is False

    # At rest: no plain phone, no plain code; the sign-in is audited on the platform log.
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute(
            "SELECT phone_enc FROM resident_accounts WHERE id = %s", (body["id"],)
        ).fetchone()
        assert row is not None
        enc = row[0]
        assert phone.encode() not in bytes(enc)
        hashes = [bytes(r[0]) for r in conn.execute("SELECT code_hash FROM otp_codes").fetchall()]
        assert all(code.encode() not in h for h in hashes)
        audit = conn.execute(
            "SELECT principal_kind, action, detail, host(ip) FROM platform_audit_log"
            " WHERE principal_id = %s AND action = 'resident.sign_in'",
            (body["id"],),
        ).fetchall()
    assert len(audit) == 1
    kind, _, detail, ip = audit[0]
    assert kind == "resident" and detail == {"method": "otp", "new_account": True}
    assert ip.startswith("10.71.")


async def test_full_width_digits_are_the_same_phone_and_code(
    resident_client: httpx.AsyncClient,
) -> None:
    phone = new_phone()
    full_width = phone.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    first = await sign_in(resident_client, phone)
    code = await ask_code(resident_client, full_width)
    response = await resident_client.post(
        "/api/v1/auth/resident/token",
        json={
            "phone": full_width,
            "code": code.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        },
    )
    assert response.status_code == 200, response.text
    first_sub = jwt.decode(first["access_token"], options={"verify_signature": False})["sub"]
    second_sub = jwt.decode(response.json()["access_token"], options={"verify_signature": False})[
        "sub"
    ]
    assert first_sub == second_sub  # one person, one account


async def test_request_answers_alike_with_or_without_an_account(
    resident_client: httpx.AsyncClient,
) -> None:
    known = new_phone()
    await sign_in(resident_client, known)
    unknown = new_phone()
    a = await resident_client.post("/api/v1/auth/resident/otp", json={"phone": known})
    b = await resident_client.post("/api/v1/auth/resident/otp", json={"phone": unknown})
    assert a.status_code == b.status_code == 202
    assert a.json() == b.json() == {"expires_in": get_settings().otp_ttl_seconds}


async def test_a_used_code_cannot_be_used_again(resident_client: httpx.AsyncClient) -> None:
    phone = new_phone()
    code = await ask_code(resident_client, phone)
    ok = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    assert ok.status_code == 200
    again = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    problem(again, 401, "otp_invalid")


async def test_an_expired_code_is_refused(
    resident_client: httpx.AsyncClient, owner_dsn: str
) -> None:
    phone = new_phone()
    code = await ask_code(resident_client, phone)
    phone_hash = crypto.blind_index(phone)
    with psycopg.connect(owner_dsn) as conn:
        moved = conn.execute(
            "UPDATE otp_codes SET expires_at = now() - interval '1 second'"
            " WHERE phone_hash = %s AND used_at IS NULL",
            (phone_hash,),
        ).rowcount
    assert moved >= 1
    response = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    problem(response, 401, "otp_expired")


async def test_a_new_code_replaces_the_old_one(resident_client: httpx.AsyncClient) -> None:
    phone = new_phone()
    old = await ask_code(resident_client, phone)
    new = await ask_code(resident_client, phone)
    while new == old:  # one chance in a million
        new = await ask_code(resident_client, phone)
    stale = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": old}
    )
    problem(stale, 401, "otp_invalid")
    fresh = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": new}
    )
    assert fresh.status_code == 200


async def test_wrong_guesses_burn_the_code(resident_client: httpx.AsyncClient) -> None:
    limit = get_settings().otp_max_attempts
    phone = new_phone()
    code = await ask_code(resident_client, phone)
    for _ in range(limit - 1):
        r = await resident_client.post(
            "/api/v1/auth/resident/token", json={"phone": phone, "code": wrong(code)}
        )
        problem(r, 401, "otp_invalid")
    last = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": wrong(code)}
    )
    problem(last, 401, "otp_attempts_exceeded")
    # Burnt: even the right code no longer works.
    right = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    problem(right, 401, "otp_attempts_exceeded")
    # A fresh code does.
    assert (await sign_in(resident_client, phone))["access_token"]


async def test_a_right_code_after_a_few_wrong_guesses_still_works(
    resident_client: httpx.AsyncClient,
) -> None:
    phone = new_phone()
    code = await ask_code(resident_client, phone)
    for _ in range(get_settings().otp_max_attempts - 1):
        r = await resident_client.post(
            "/api/v1/auth/resident/token", json={"phone": phone, "code": wrong(code)}
        )
        problem(r, 401, "otp_invalid")
    ok = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    assert ok.status_code == 200, ok.text


async def test_codes_sent_to_one_phone_are_rate_limited(resident_client: httpx.AsyncClient) -> None:
    per_phone = int(get_settings().otp_rate_per_phone.split("/")[0])
    phone = new_phone()
    for _ in range(per_phone):
        assert (
            await resident_client.post("/api/v1/auth/resident/otp", json={"phone": phone})
        ).status_code == 202
    sent = sms.dev_outbox()[phone]
    blocked = await resident_client.post("/api/v1/auth/resident/otp", json={"phone": phone})
    problem(blocked, 429, "rate_limited")
    assert int(blocked.headers["Retry-After"]) > 0
    assert sms.dev_outbox()[phone] == sent  # nothing was sent
    # The limit is the phone's, not this client's: another IP is refused too.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=resident_client._transport.app, client=(new_ip(), 1)),  # type: ignore[attr-defined]
        base_url="http://testserver",
    ) as other:
        problem(
            await other.post("/api/v1/auth/resident/otp", json={"phone": phone}),
            429,
            "rate_limited",
        )


async def test_codes_sent_from_one_ip_are_rate_limited(resident_client: httpx.AsyncClient) -> None:
    per_ip = int(get_settings().otp_rate_per_ip.split("/")[0])
    for _ in range(per_ip):
        r = await resident_client.post("/api/v1/auth/resident/otp", json={"phone": new_phone()})
        assert r.status_code == 202
    blocked = await resident_client.post("/api/v1/auth/resident/otp", json={"phone": new_phone()})
    problem(blocked, 429, "rate_limited")
    assert int(blocked.headers["Retry-After"]) > 0


async def test_guessing_across_fresh_codes_hits_the_per_phone_check_limit(
    resident_client: httpx.AsyncClient,
) -> None:
    settings = get_settings()
    checks = int(settings.otp_verify_rate_per_phone.split("/")[0])
    phone = new_phone()
    done = 0
    while done < checks:
        code = await ask_code(resident_client, phone)
        for _ in range(min(settings.otp_max_attempts, checks - done)):
            r = await resident_client.post(
                "/api/v1/auth/resident/token", json={"phone": phone, "code": wrong(code)}
            )
            assert r.status_code == 401
            done += 1
    blocked = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": "000000"}
    )
    problem(blocked, 429, "rate_limited")
    assert int(blocked.headers["Retry-After"]) > 0


async def test_guessing_from_one_ip_hits_the_per_ip_check_limit(
    resident_client: httpx.AsyncClient,
) -> None:
    checks = int(get_settings().otp_verify_rate_per_ip.split("/")[0])
    for _ in range(checks):
        r = await resident_client.post(
            "/api/v1/auth/resident/token", json={"phone": new_phone(), "code": "123456"}
        )
        problem(r, 401, "otp_invalid")
    blocked = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": new_phone(), "code": "123456"}
    )
    problem(blocked, 429, "rate_limited")


@pytest.mark.parametrize("phone", ["12345", "+1 650 253 0000", "2380013800", "1381234567x", ""])
async def test_an_invalid_phone_is_422_naming_phone(
    resident_client: httpx.AsyncClient, phone: str
) -> None:
    for path, body in (
        ("/api/v1/auth/resident/otp", {"phone": phone}),
        ("/api/v1/auth/resident/token", {"phone": phone, "code": "123456"}),
    ):
        response = await resident_client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["phone"]


async def test_a_malformed_code_is_422_naming_code(resident_client: httpx.AsyncClient) -> None:
    for code in ("12ab56", "12345", "1234567", ""):
        response = await resident_client.post(
            "/api/v1/auth/resident/token", json={"phone": new_phone(), "code": code}
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["code"]


async def test_unknown_fields_and_wrong_types_are_refused(
    resident_client: httpx.AsyncClient,
) -> None:
    r = await resident_client.post(
        "/api/v1/auth/resident/otp", json={"phone": new_phone(), "tenant": "x"}
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"tenant"}
    r = await resident_client.post(
        "/api/v1/auth/resident/token", json={"phone": 13900000000, "code": 123456}
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"phone", "code"}
    r = await resident_client.post(
        "/api/v1/auth/resident/otp",
        content=b'{"phone": "\xff"}',
        headers={"content-type": "application/json"},
    )
    # Invalid UTF-8 is refused by the shared body parsing (core/http.py) before our route runs.
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_refresh_rotates_and_reuse_revokes_the_family(
    resident_client: httpx.AsyncClient, owner_dsn: str
) -> None:
    first = await sign_in(resident_client, new_phone())
    rotated = await resident_client.post(
        "/api/v1/auth/resident/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await resident_client.get("/api/v1/resident/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200

    # Within the reuse interval the old token is a racing tab: it gets the same successor.
    again = await resident_client.post(
        "/api/v1/auth/resident/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == second["refresh_token"]

    # Later, the old token comes back (stolen copy): refused, and the whole family dies.
    age_rotation(first["refresh_token"], table="resident_refresh_tokens")
    reuse = await resident_client.post(
        "/api/v1/auth/resident/refresh", json={"refresh_token": first["refresh_token"]}
    )
    problem(reuse, 401, "refresh_token_reused")
    after = await resident_client.post(
        "/api/v1/auth/resident/refresh", json={"refresh_token": second["refresh_token"]}
    )
    problem(after, 401, "refresh_token_invalid")
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM platform_audit_log"
            " WHERE action = 'resident.refresh_reuse' AND principal_id = %s",
            (me.json()["id"],),
        ).fetchone()
    assert rows == (1,)


async def test_unknown_and_expired_refresh_tokens_are_refused(
    resident_client: httpx.AsyncClient, owner_dsn: str
) -> None:
    problem(
        await resident_client.post(
            "/api/v1/auth/resident/refresh", json={"refresh_token": "not-a-token"}
        ),
        401,
        "refresh_token_invalid",
    )
    tokens = await sign_in(resident_client, new_phone())
    with psycopg.connect(owner_dsn) as conn:
        conn.execute(
            "UPDATE resident_refresh_tokens SET expires_at = now() - interval '1 second'"
            " WHERE token_hash = %s",
            (hash_secret(tokens["refresh_token"]),),
        )
    problem(
        await resident_client.post(
            "/api/v1/auth/resident/refresh", json={"refresh_token": tokens["refresh_token"]}
        ),
        401,
        "refresh_token_expired",
    )


async def test_logout_ends_the_refresh_family(resident_client: httpx.AsyncClient) -> None:
    tokens = await sign_in(resident_client, new_phone())
    out = await resident_client.post(
        "/api/v1/auth/resident/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 204
    problem(
        await resident_client.post(
            "/api/v1/auth/resident/refresh", json={"refresh_token": tokens["refresh_token"]}
        ),
        401,
        "refresh_token_invalid",
    )
    again = await resident_client.post(
        "/api/v1/auth/resident/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 204


async def test_resident_and_staff_tokens_do_not_cross(resident_client: httpx.AsyncClient) -> None:
    tokens = await sign_in(resident_client, new_phone())
    company = await make_company(communities=1)
    problem(
        await resident_client.get("/api/v1/resident/me", headers=bearer(staff_token(company))),
        403,
        "forbidden",
    )
    problem(
        await resident_client.get("/api/v1/communities", headers=bearer(tokens["access_token"])),
        403,
        "forbidden",
    )
    problem(await resident_client.get("/api/v1/resident/me"), 401, "unauthorized")
    tampered = tokens["access_token"][:-3] + (
        "abc" if not tokens["access_token"].endswith("abc") else "xyz"
    )
    problem(
        await resident_client.get("/api/v1/resident/me", headers=bearer(tampered)),
        401,
        "token_invalid",
    )


async def test_every_resident_endpoint_declares_its_permission(app: Any) -> None:
    paths = app.openapi()["paths"]
    ours = {
        p: ops
        for p, ops in paths.items()
        if p.startswith("/api/v1/auth/resident/") or p == "/api/v1/resident/me"
    }
    assert len(ours) == 7
    for path, operations in ours.items():
        for method, operation in operations.items():
            assert operation.get("x-linli-permission"), (method, path)
    assert paths["/api/v1/resident/me"]["get"]["x-linli-permission"] == "resident.self"


async def test_the_dev_code_log_line_masks_the_phone(resident_client: httpx.AsyncClient) -> None:
    phone = new_phone()
    with structlog.testing.capture_logs() as logs:
        code = await ask_code(resident_client, phone)
    lines = [json.dumps(redact_processor(None, "info", dict(e))) for e in logs]
    dev = [line for line in lines if '"otp.dev_code"' in line]
    assert len(dev) == 1 and code in dev[0]
    assert all(phone not in line for line in lines)
    assert [line for line in lines if code in line] == dev  # the only line carrying the code


async def test_http_sms_provider_signs_requests_the_gateway_accepts() -> None:
    phone = new_phone()
    with FakeSmsGateway() as gateway:
        settings = get_settings().model_copy(
            update={
                "sms_provider": "http",
                "sms_http_url": gateway.url,
                "sms_http_key_id": gateway.key_id,
                "sms_http_secret": SecretStr(gateway.secret),
            }
        )
        provider = sms.get_sms_provider(settings)
        assert isinstance(provider, sms.HttpSmsProvider)
        async with unit_of_work() as session:
            await residents.request_otp(
                session, phone=phone, ip=new_ip(), sms=provider, settings=settings
            )
        assert gateway.rejected == []
        code = gateway.last_code(f"+86{phone}")
        assert code is not None and phone not in sms.dev_outbox()
        async with unit_of_work() as session:
            tokens = await residents.verify_otp(
                session, phone=phone, code=code, ip=None, request_id=None
            )
        assert tokens.actor.kind == "resident"

        # A wrong secret is refused by the gateway and becomes a clear 503 for the caller.
        forged = sms.HttpSmsProvider(
            settings.model_copy(update={"sms_http_secret": SecretStr("guess")})
        )
        with pytest.raises(ServiceUnavailable) as refused:
            await forged.send_code(phone, "123456")
        assert refused.value.instance_code == "sms_unavailable"
        assert gateway.rejected == ["bad_signature"]

        gateway.fail_with = 500
        with pytest.raises(ServiceUnavailable):
            async with unit_of_work() as session:
                await residents.request_otp(
                    session, phone=new_phone(), ip=new_ip(), sms=provider, settings=settings
                )
    assert not gateway.running


async def test_http_sms_provider_reports_an_unreachable_gateway() -> None:
    gateway = FakeSmsGateway().start()
    url = gateway.url
    gateway.stop()  # nothing listens there now
    settings = get_settings().model_copy(
        update={
            "sms_http_url": url,
            "sms_http_secret": SecretStr("x"),
            "sms_http_timeout_seconds": 2.0,
        }
    )
    with pytest.raises(ServiceUnavailable) as failed:
        await sms.HttpSmsProvider(settings).send_code(new_phone(), "123456")
    assert failed.value.instance_code == "sms_unavailable"


async def test_ensure_resident_account_is_one_account_per_phone() -> None:
    phone = new_phone()
    async with unit_of_work() as session:
        a = await residents.ensure_resident_account(session, phone=phone, display_name="张三")
        b = await residents.ensure_resident_account(session, phone=f"+86{phone}")
    assert a.id == b.id and b.display_name == "张三"


async def test_problems_speak_chinese_by_default_and_english_on_request(
    resident_client: httpx.AsyncClient,
) -> None:
    body = {"phone": new_phone(), "code": "123456"}
    zh = await resident_client.post("/api/v1/auth/resident/token", json=body)
    assert problem(zh, 401, "otp_invalid")["detail"] == "验证码错误或已失效。"
    en = await resident_client.post(
        "/api/v1/auth/resident/token", json=body, headers={"Accept-Language": "en"}
    )
    assert problem(en, 401, "otp_invalid")["detail"] == "The code is wrong or has expired."

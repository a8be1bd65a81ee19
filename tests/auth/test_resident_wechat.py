"""Resident sign-in through WeChat public-account OAuth, against a local fake of WeChat.

The fake runs as a real HTTP server on a loopback port; the app's WeChat client
is pointed at it through the ``wechat_client`` dependency, with settings passed
explicitly (no process-wide settings are changed).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import psycopg
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr

from linli.auth import residents
from linli.auth.resident_api import wechat_client
from linli.auth.wechat import WechatOAuthClient
from linli.config import Settings, get_settings
from linli.core.errors import BadRequest, ServiceUnavailable
from linli.db.engine import unit_of_work
from tests.auth.rotation import age_rotation
from tests.factories import bearer
from tests.fakes.wechat import FakeWechat, WechatUser

SECOND_APP = "wx-fake-second-app"


@pytest.fixture(scope="module")
def fake_wechat() -> Iterator[FakeWechat]:
    fake = FakeWechat(apps={"wx-fake-app": "fake-app-secret", SECOND_APP: "second-secret"})
    with fake:
        yield fake
    assert not fake.running, "the fake WeChat server thread must stop"


def settings_for(fake: FakeWechat, appid: str | None = None) -> Settings:
    appid = appid or fake.appid
    return get_settings().model_copy(
        update={
            "wechat_api_base": fake.base_url,
            "wechat_open_base": fake.base_url,
            "wechat_appid": appid,
            "wechat_secret": SecretStr(fake.apps[appid]),
            "public_url": "https://linli.example.test",
        }
    )


@pytest.fixture
def wechat_settings(app: Any, fake_wechat: FakeWechat) -> Iterator[Settings]:
    settings = settings_for(fake_wechat)
    app.dependency_overrides[wechat_client] = lambda: WechatOAuthClient(settings)
    fake_wechat.signed_in = None
    fake_wechat.deny = False
    yield settings
    app.dependency_overrides.pop(wechat_client, None)


@pytest.fixture
async def http(app: Any, wechat_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("10.72.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def new_user(**kwargs: Any) -> WechatUser:
    return WechatUser(openid=f"o{secrets.token_hex(12)}", **kwargs)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def through_wechat(
    http: httpx.AsyncClient,
    fake: FakeWechat,
    *,
    redirect: str = "/portal",
    scope: str = "snsapi_base",
) -> httpx.Response:
    """Walk the browser's path: our authorize → WeChat (fake) → our callback."""
    start = await http.get(
        "/api/v1/auth/resident/wechat/authorize", params={"redirect": redirect, "scope": scope}
    )
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert location.startswith(f"{fake.base_url}/connect/oauth2/authorize?")
    assert location.endswith("#wechat_redirect")
    async with httpx.AsyncClient() as browser:
        at_wechat = await browser.get(location.removesuffix("#wechat_redirect"))
    assert at_wechat.status_code == 302, at_wechat.text
    back = urlsplit(at_wechat.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == "https://linli.example.test"
    return await http.get(f"{back.path}?{back.query}")


async def test_authorize_redirects_to_wechat_with_a_signed_state(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    response = await http.get(
        "/api/v1/auth/resident/wechat/authorize",
        params={"redirect": "/portal/bills?x=1", "scope": "snsapi_userinfo"},
    )
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    assert url.fragment == "wechat_redirect"
    assert url.path == "/connect/oauth2/authorize"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert list(params) == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert params["appid"] == fake_wechat.appid
    assert (
        params["redirect_uri"] == "https://linli.example.test/api/v1/auth/resident/wechat/callback"
    )
    assert params["response_type"] == "code" and params["scope"] == "snsapi_userinfo"
    state = residents.read_wechat_state(params["state"], settings=settings_for(fake_wechat))
    assert state.redirect == "/portal/bills?x=1" and state.scope == "snsapi_userinfo"


async def test_snsapi_base_flow_signs_in_and_the_same_openid_is_the_same_account(
    http: httpx.AsyncClient, fake_wechat: FakeWechat, owner_dsn: str
) -> None:
    fake_wechat.signed_in = new_user()
    first = await through_wechat(http, fake_wechat, redirect="/portal/home")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["redirect"] == "/portal/home" and body["token_type"] == "Bearer"
    me = await http.get("/api/v1/resident/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    profile = me.json()
    assert profile["wechat_linked"] is True and profile["phone"] is None
    assert profile["display_name"] == ""  # snsapi_base reveals no profile

    second = await through_wechat(http, fake_wechat)
    assert second.status_code == 200
    sub = jwt.decode(second.json()["access_token"], options={"verify_signature": False})["sub"]
    assert sub == profile["id"]
    with psycopg.connect(owner_dsn) as conn:
        identities = conn.execute(
            "SELECT count(*) FROM resident_wechat_identities WHERE openid = %s",
            (fake_wechat.signed_in.openid,),
        ).fetchone()
        audits = conn.execute(
            "SELECT detail FROM platform_audit_log"
            " WHERE principal_id = %s AND action = 'resident.sign_in' ORDER BY created_at",
            (profile["id"],),
        ).fetchall()
    assert identities == (1,)
    assert [a[0] for a in audits] == [
        {"method": "wechat", "new_account": True, "scope": "snsapi_base"},
        {"method": "wechat", "new_account": False, "scope": "snsapi_base"},
    ]


async def test_snsapi_userinfo_flow_fills_the_profile(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = new_user(
        nickname="小区居民",
        headimgurl="https://thirdwx.qlogo.cn/mmopen/abc/132",
        unionid=f"u{secrets.token_hex(8)}",
    )
    response = await through_wechat(http, fake_wechat, scope="snsapi_userinfo")
    assert response.status_code == 200, response.text
    profile = (
        await http.get("/api/v1/resident/me", headers=bearer(response.json()["access_token"]))
    ).json()
    assert profile["display_name"] == "小区居民"
    assert profile["avatar_url"] == "https://thirdwx.qlogo.cn/mmopen/abc/132"
    assert (
        "/sns/userinfo",
        {
            "access_token": fake_wechat.calls[-1][1]["access_token"],
            "openid": fake_wechat.signed_in.openid,
            "lang": "zh_CN",
        },
    ) == fake_wechat.calls[-1]


async def test_unionid_links_a_second_public_account_to_the_same_person(
    http: httpx.AsyncClient, app: Any, fake_wechat: FakeWechat
) -> None:
    unionid = f"u{secrets.token_hex(8)}"
    fake_wechat.signed_in = new_user(nickname="老王", unionid=unionid)
    first = await through_wechat(http, fake_wechat, scope="snsapi_userinfo")
    assert first.status_code == 200, first.text
    # The same person in another public account of the platform: another openid, same unionid.
    other = settings_for(fake_wechat, SECOND_APP)
    client = WechatOAuthClient(other)
    code = fake_wechat.issue_code(
        new_user(unionid=unionid), scope="snsapi_userinfo", appid=SECOND_APP
    )
    async with unit_of_work() as session:
        tokens = await residents.login_wechat(
            session, code=code, ip="10.72.0.2", request_id=None, client=client
        )
    first_sub = jwt.decode(first.json()["access_token"], options={"verify_signature": False})["sub"]
    assert str(tokens.actor.id) == first_sub


async def test_a_forged_state_is_refused(http: httpx.AsyncClient, fake_wechat: FakeWechat) -> None:
    fake_wechat.signed_in = new_user()
    code = fake_wechat.issue_code(fake_wechat.signed_in)
    good, _ = residents.new_wechat_state(redirect="/portal", settings=settings_for(fake_wechat))
    forged_payload = URLSafeTimedSerializer(
        "someone-elses-key", salt=residents.WECHAT_STATE_SALT
    ).dumps({"r": "/portal", "s": "snsapi_base", "n": "x"})
    other_purpose = URLSafeTimedSerializer(
        settings_for(fake_wechat).signing_key(), salt="another-purpose"
    ).dumps({"r": "/portal", "s": "snsapi_base", "n": "x"})
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for state in (tampered, forged_payload, other_purpose, "", "garbage"):
        response = await http.get(
            "/api/v1/auth/resident/wechat/callback", params={"code": code, "state": state}
        )
        problem(response, 400, "wechat_state_invalid")
    # The code was never spent on a refused state.
    assert code in fake_wechat._codes


async def test_an_expired_state_is_refused(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    settings = settings_for(fake_wechat)

    class EarlierSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - settings.wechat_state_max_age_seconds - 5

    old = URLSafeTimedSerializer(
        settings.signing_key(), salt=residents.WECHAT_STATE_SALT, signer=EarlierSigner
    ).dumps({"r": "/portal", "s": "snsapi_base", "n": "x"})
    fake_wechat.signed_in = new_user()
    code = fake_wechat.issue_code(fake_wechat.signed_in)
    response = await http.get(
        "/api/v1/auth/resident/wechat/callback", params={"code": code, "state": old}
    )
    problem(response, 400, "wechat_state_expired")


async def test_a_signed_state_with_a_foreign_redirect_is_refused(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    settings = settings_for(fake_wechat)
    # Signed with our key: only the content check stands between this and an open redirect.
    evil = URLSafeTimedSerializer(settings.signing_key(), salt=residents.WECHAT_STATE_SALT).dumps(
        {"r": "https://evil.example", "s": "snsapi_base", "n": "x"}
    )
    response = await http.get(
        "/api/v1/auth/resident/wechat/callback", params={"code": "c", "state": evil}
    )
    problem(response, 400, "wechat_state_invalid")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/portal",
        "//evil.example/portal",
        "/\\evil.example",
        "javascript:alert(1)",
        "portal",
        "/portal\r\nSet-Cookie: x=1",
        "/ portal",
    ],
)
async def test_open_redirects_are_refused(http: httpx.AsyncClient, target: str) -> None:
    response = await http.get("/api/v1/auth/resident/wechat/authorize", params={"redirect": target})
    body = problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["redirect"]
    assert body["errors"][0]["code"] == "redirect_not_allowed"


async def test_an_unknown_scope_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/api/v1/auth/resident/wechat/authorize", params={"scope": "snsapi_login"}
    )
    body = problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["scope"]


async def test_an_invalid_code_is_a_clear_problem(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    state, _ = residents.new_wechat_state(redirect="/portal", settings=settings_for(fake_wechat))
    response = await http.get(
        "/api/v1/auth/resident/wechat/callback", params={"code": "not-a-real-code", "state": state}
    )
    problem(response, 400, "wechat_code_invalid")


async def test_a_reused_code_is_a_clear_problem(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = new_user()
    first = await through_wechat(http, fake_wechat)
    assert first.status_code == 200
    replay = str(first.request.url)  # the same callback URL, code and state, a second time
    response = await http.get(replay.removeprefix("http://testserver"))
    problem(response, 400, "wechat_code_used")


async def test_a_refusal_at_wechat_is_a_clear_problem(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = new_user()
    fake_wechat.deny = True
    response = await through_wechat(http, fake_wechat, scope="snsapi_userinfo")
    problem(response, 400, "wechat_denied")


async def test_a_wrong_app_secret_is_reported_as_unavailable(fake_wechat: FakeWechat) -> None:
    settings = settings_for(fake_wechat).model_copy(update={"wechat_secret": SecretStr("wrong")})
    code = fake_wechat.issue_code(new_user())
    with pytest.raises(ServiceUnavailable) as failed:
        await WechatOAuthClient(settings).exchange_code(code)
    assert failed.value.instance_code == "wechat_unavailable"


async def test_userinfo_without_the_userinfo_scope_is_refused(fake_wechat: FakeWechat) -> None:
    client = WechatOAuthClient(settings_for(fake_wechat))
    token = await client.exchange_code(fake_wechat.issue_code(new_user(nickname="x")))
    assert token.scope == "snsapi_base" and token.unionid is None
    with pytest.raises(BadRequest) as refused:
        await client.fetch_userinfo(token)
    assert refused.value.instance_code == "wechat_scope_missing"


async def test_wechat_refresh_rotation_and_reuse_revoke(
    http: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = new_user()
    tokens = (await through_wechat(http, fake_wechat)).json()
    rotated = await http.post(
        "/api/v1/auth/resident/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    age_rotation(tokens["refresh_token"], table="resident_refresh_tokens")
    problem(
        await http.post(
            "/api/v1/auth/resident/refresh", json={"refresh_token": tokens["refresh_token"]}
        ),
        401,
        "refresh_token_reused",
    )
    problem(
        await http.post(
            "/api/v1/auth/resident/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
        ),
        401,
        "refresh_token_invalid",
    )

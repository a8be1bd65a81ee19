"""The resident portal as a phone browser sees it: code sign-in, WeChat sign-in, home, sign-out."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from linli.auth import sms
from linli.auth.resident_api import wechat_client
from linli.auth.wechat import WechatOAuthClient
from linli.config import get_settings
from linli.core import crypto
from linli.web import nav
from tests.fakes.wechat import FakeWechat, WechatUser
from tests.web.pageutil import csrf_of, resident_sign_in, set_cookies, text_of

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI"
)


def new_phone() -> str:
    return f"137{secrets.randbelow(10**8):08d}"


async def test_phone_and_code_sign_in_opens_the_home_page(web: httpx.AsyncClient) -> None:
    phone = new_phone()
    form = await web.get("/portal/login")
    assert form.status_code == 200
    assert "住户登录" in form.text and 'name="code"' not in form.text
    sent = await web.post("/portal/login/code", data={"csrf_token": csrf_of(form), "phone": phone})
    assert sent.status_code == 200
    assert 'name="code"' in sent.text and 'role="status"' in sent.text
    code = sms.dev_outbox()[phone]
    assert code not in sent.text

    signed_in = await web.post(
        "/portal/login", data={"csrf_token": csrf_of(sent), "phone": phone, "code": code}
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal"
    cookies = set_cookies(signed_in)
    for name in ("linli_resident_at", "linli_resident_rt"):
        header = cookies[name].lower()
        assert "httponly" in header and "samesite=lax" in header and "path=/portal" in header

    home = await web.get("/portal")
    assert home.status_code == 200
    page = text_of(home)
    for tile in ("缴费", "开门", "访客", "报修", "快递", "投票"):
        assert tile in page
    # A tile is live once its domain registered its page; the others say "coming soon".
    waiting = [tile for tile in nav.tiles() if tile.path is None]
    assert page.count("即将上线") == len(waiting)
    assert crypto.mask_phone(phone) in page
    # The staff console knows nothing of this session.
    assert (await web.get("/console")).status_code == 303


async def test_a_wrong_code_shows_the_error_and_no_session(web: httpx.AsyncClient) -> None:
    phone = new_phone()
    form = await web.get("/portal/login")
    sent = await web.post("/portal/login/code", data={"csrf_token": csrf_of(form), "phone": phone})
    code = sms.dev_outbox()[phone]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    response = await web.post(
        "/portal/login", data={"csrf_token": csrf_of(sent), "phone": phone, "code": wrong}
    )
    assert response.status_code == 401
    assert 'role="alert"' in response.text and 'name="code"' in response.text
    assert "linli_resident_at" not in set_cookies(response)


async def test_an_invalid_phone_is_named_on_the_field(web: httpx.AsyncClient) -> None:
    form = await web.get("/portal/login")
    response = await web.post(
        "/portal/login/code", data={"csrf_token": csrf_of(form), "phone": "12345"}
    )
    assert response.status_code == 422
    assert 'id="phone-error"' in response.text and 'aria-invalid="true"' in response.text


async def test_portal_forms_need_the_csrf_token(web: httpx.AsyncClient) -> None:
    await web.get("/portal/login")
    response = await web.post("/portal/login/code", data={"phone": new_phone()})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    # A console token is not a portal token.
    console_token = csrf_of(await web.get("/console/login"))
    response = await web.post(
        "/portal/login/code", data={"csrf_token": console_token, "phone": new_phone()}
    )
    assert response.status_code == 403


async def test_account_page_and_sign_out(web: httpx.AsyncClient) -> None:
    phone = new_phone()
    assert (await resident_sign_in(web, phone)).status_code == 303
    me = await web.get("/portal/me")
    assert me.status_code == 200
    assert crypto.mask_phone(phone) in text_of(me) and phone not in me.text
    out = await web.post("/portal/logout", data={"csrf_token": csrf_of(me)})
    assert out.status_code == 303 and out.headers["location"] == "/portal/login"
    after = await web.get("/portal")
    assert after.status_code == 303
    assert urlsplit(after.headers["location"]).path == "/portal/login"


async def test_portal_switches_to_english(web: httpx.AsyncClient) -> None:
    form = await web.get("/portal/login")
    await web.post(
        "/portal/locale",
        data={"csrf_token": csrf_of(form), "locale": "en", "next": "/portal/login"},
    )
    english = await web.get("/portal/login")
    assert "Resident sign-in" in english.text and "Get code" in english.text


async def test_the_wechat_button_shows_only_inside_wechat(web: httpx.AsyncClient) -> None:
    plain = await web.get("/portal/login")
    assert "/portal/wechat/start" not in plain.text
    inside = await web.get("/portal/login", headers={"User-Agent": WECHAT_UA})
    assert "/portal/wechat/start" in inside.text and "微信一键登录" in inside.text


@pytest.fixture
def fake_wechat(app: Any) -> Iterator[FakeWechat]:
    fake = FakeWechat()
    with fake:
        settings = get_settings().model_copy(
            update={
                "wechat_api_base": fake.base_url,
                "wechat_open_base": fake.base_url,
                "wechat_appid": fake.appid,
                "wechat_secret": SecretStr(fake.secret),
                "public_url": "https://linli.example.test",
            }
        )
        app.dependency_overrides[wechat_client] = lambda: WechatOAuthClient(settings)
        try:
            yield fake
        finally:
            app.dependency_overrides.pop(wechat_client, None)


async def _to_wechat_and_back(web: httpx.AsyncClient, fake: FakeWechat) -> str:
    """Start on our page, let (fake) WeChat approve, return our callback path + query."""
    start = await web.get("/portal/wechat/start", headers={"User-Agent": WECHAT_UA})
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert location.startswith(f"{fake.base_url}/connect/oauth2/authorize?")
    params = parse_qs(urlsplit(location).query)
    assert params["redirect_uri"] == ["https://linli.example.test/portal/wechat/callback"]
    async with httpx.AsyncClient() as wechat_app:
        approved = await wechat_app.get(location.removesuffix("#wechat_redirect"))
    assert approved.status_code == 302
    back = urlsplit(approved.headers["location"])
    return f"{back.path}?{back.query}"


async def test_wechat_sign_in_through_the_portal(
    web: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = WechatUser(openid=f"o{secrets.token_hex(12)}")
    callback = await _to_wechat_and_back(web, fake_wechat)
    done = await web.get(callback)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal"
    assert "linli_resident_at" in set_cookies(done)
    home = await web.get("/portal")
    assert home.status_code == 200 and "邻居，您好" in text_of(home)


async def test_a_wechat_callback_in_another_browser_is_refused(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    """Login CSRF: an attacker's finished WeChat sign-in forced onto someone else's browser."""
    fake_wechat.signed_in = WechatUser(openid=f"o{secrets.token_hex(12)}")
    callback = await _to_wechat_and_back(other_web, fake_wechat)
    response = await web.get(callback)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "linli_resident_at" not in set_cookies(response)


async def test_a_refused_wechat_sign_in_returns_to_the_form(
    web: httpx.AsyncClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.signed_in = WechatUser(openid=f"o{secrets.token_hex(12)}")
    fake_wechat.deny = True
    callback = await _to_wechat_and_back(web, fake_wechat)
    response = await web.get(callback)
    assert response.status_code == 400
    assert "微信登录已取消" in text_of(response) and 'name="phone"' in response.text

"""A local fake of WeChat's public-account web OAuth (公众号网页授权), spoken over real HTTP.

Endpoints and shapes follow WeChat's documentation:

- ``GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state`` —
  the page a person sees in WeChat; here it approves at once as :attr:`FakeWechat.signed_in`
  and answers 302 to ``redirect_uri?code=…&state=…`` (``state`` alone if :attr:`deny`).
- ``GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`` —
  ``{access_token, expires_in, refresh_token, openid, scope[, unionid]}``.
- ``GET /sns/userinfo?access_token&openid&lang`` — ``{openid, nickname, sex, province,
  city, country, headimgurl, privilege, unionid}``.

Errors are HTTP 200 with ``{"errcode", "errmsg"}`` and bodies are ``text/plain``, as
WeChat sends them. Codes are single-use (40163 the second time) and unknown codes
are 40029.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.server import LoopbackServer, QuietHandler

INVALID_CREDENTIAL = 40001
INVALID_APPID = 40013
INVALID_CODE = 40029
INVALID_OPENID = 40003
MISSING_CODE = 41008
INVALID_APPSECRET = 40125
CODE_BEEN_USED = 40163
API_UNAUTHORIZED = 48001


@dataclass
class WechatUser:
    openid: str
    nickname: str = ""
    headimgurl: str = ""
    unionid: str | None = None


@dataclass
class _Grant:
    user: WechatUser
    scope: str
    appid: str


@dataclass
class FakeWechat:
    """One WeChat, possibly with several public accounts (appid → secret)."""

    apps: dict[str, str] = field(default_factory=lambda: {"wx-fake-app": "fake-app-secret"})
    signed_in: WechatUser | None = None
    deny: bool = False
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _tokens: dict[str, _Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    @property
    def appid(self) -> str:
        return next(iter(self.apps))

    @property
    def secret(self) -> str:
        return self.apps[self.appid]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    def start(self) -> FakeWechat:
        self._server = LoopbackServer(_Handler, self)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeWechat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def issue_code(
        self, user: WechatUser, *, scope: str = "snsapi_base", appid: str | None = None
    ) -> str:
        """What WeChat hands the browser after the person agrees."""
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Grant(user=user, scope=scope, appid=appid or self.appid)
        return code

    def code_count(self) -> int:
        with self._lock:
            return len(self._codes)

    # --- endpoint behaviour (called from the server thread) -----------------------------------

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        appid = params.get("appid", "")
        redirect_uri = params.get("redirect_uri", "")
        scope = params.get("scope", "")
        if appid not in self.apps or params.get("response_type") != "code":
            return 400, {}, "参数错误 (invalid appid or response_type)".encode()
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            return 400, {}, "scope参数错误或没有scope权限".encode()
        if not redirect_uri.startswith(("http://", "https://")):
            return 400, {}, "redirect_uri参数错误".encode()
        if self.signed_in is None:
            return 400, {}, "请在微信客户端打开链接".encode()
        state = params.get("state", "")
        if self.deny:
            query = urlencode({"state": state})
        else:
            code = self.issue_code(self.signed_in, scope=scope, appid=appid)
            query = urlencode({"code": code, "state": state})
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return 302, {"Location": f"{redirect_uri}{joiner}{query}"}, b""

    def access_token(self, params: dict[str, str]) -> dict[str, Any]:
        appid, secret, code = (
            params.get("appid", ""),
            params.get("secret", ""),
            params.get("code", ""),
        )
        if appid not in self.apps:
            return _error(INVALID_APPID, "invalid appid")
        if self.apps[appid] != secret:
            return _error(INVALID_APPSECRET, "invalid appsecret")
        if params.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        if not code:
            return _error(MISSING_CODE, "missing code")
        with self._lock:
            if code in self._used:
                return _error(CODE_BEEN_USED, "code been used")
            grant = self._codes.pop(code, None)
            if grant is None or grant.appid != appid:
                return _error(INVALID_CODE, "invalid code")
            self._used.add(code)
            token = secrets.token_urlsafe(24)
            self._tokens[token] = grant
        answer: dict[str, Any] = {
            "access_token": token,
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(24),
            "openid": grant.user.openid,
            "scope": grant.scope,
            "is_snapshotuser": 0,
        }
        # unionid appears here only once the person granted their profile.
        if grant.user.unionid and grant.scope == "snsapi_userinfo":
            answer["unionid"] = grant.user.unionid
        return answer

    def userinfo(self, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            grant = self._tokens.get(params.get("access_token", ""))
        if grant is None:
            return _error(
                INVALID_CREDENTIAL, "invalid credential, access_token is invalid or not latest"
            )
        if params.get("openid") != grant.user.openid:
            return _error(INVALID_OPENID, "invalid openid")
        if grant.scope != "snsapi_userinfo":
            return _error(API_UNAUTHORIZED, "api unauthorized")
        answer: dict[str, Any] = {
            "openid": grant.user.openid,
            "nickname": grant.user.nickname,
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": grant.user.headimgurl,
            "privilege": [],
        }
        if grant.user.unionid:
            answer["unionid"] = grant.user.unionid
        return answer


def _error(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(12)}"}


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fake: FakeWechat = self.owner
        with fake._lock:
            fake.calls.append((parts.path, params))
        if parts.path == "/connect/oauth2/authorize":
            status, headers, body = fake.authorize(params)
            self.send_body(status, body, "text/html; charset=utf-8", headers)
            return
        if parts.path == "/sns/oauth2/access_token":
            payload = fake.access_token(params)
        elif parts.path == "/sns/userinfo":
            payload = fake.userinfo(params)
        else:
            self.send_body(404, b"not found", "text/plain")
            return
        # WeChat labels its JSON text/plain; clients must not rely on the content type.
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_body(200, body, "text/plain")

"""WeChat public-account web sign-in (公众号网页授权): authorize URL, code exchange, user info.

WeChat answers errors with HTTP 200 and ``{"errcode": ..., "errmsg": ...}``,
often with ``Content-Type: text/plain``; bodies are parsed whatever the content
type says, and errcodes become domain errors with stable codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import structlog

from linli.config import Settings, get_settings
from linli.core.errors import BadRequest, DomainError, ServiceUnavailable

log = structlog.get_logger("linli.auth.wechat")

Scope = Literal["snsapi_base", "snsapi_userinfo"]
SCOPES: tuple[Scope, ...] = ("snsapi_base", "snsapi_userinfo")

# errcodes of the OAuth endpoints that mean "this code/token is no good" (the user's
# problem, 400) rather than "WeChat or our configuration is broken" (503).
CODE_INVALID = 40029
CODE_USED = 40163
ACCESS_TOKEN_INVALID = 40001
ACCESS_TOKEN_EXPIRED = 42001
SCOPE_MISSING = 48001


class WechatError(BadRequest):
    code = "wechat_error"
    default_message = "WeChat sign-in failed."

    def __init__(
        self, message: str | None = None, *, code: str | None = None, errcode: int = 0
    ) -> None:
        super().__init__(message, code=code)
        self.errcode = errcode


@dataclass(frozen=True)
class WechatAccessToken:
    """What ``/sns/oauth2/access_token`` returns: the web sign-in token, not the API token."""

    access_token: str
    expires_in: int
    refresh_token: str
    openid: str
    scope: str
    unionid: str | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.scope.split(",") if s.strip())


@dataclass(frozen=True)
class WechatUserInfo:
    openid: str
    nickname: str
    headimgurl: str
    unionid: str | None = None


def authorize_url(
    settings: Settings, *, redirect_uri: str, state: str, scope: Scope = "snsapi_base"
) -> str:
    """The page WeChat shows (or silently passes, for ``snsapi_base``) before calling back."""
    if scope not in SCOPES:
        raise ValueError(f"unknown WeChat scope {scope!r}")
    # WeChat checks the parameter order and needs the fragment; build it by hand.
    query = urlencode(
        [
            ("appid", settings.wechat_appid),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ]
    )
    return (
        f"{settings.wechat_open_base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"
    )


class WechatOAuthClient:
    """Server-side half of the flow: exchanges a code, reads the user's profile."""

    def __init__(
        self, settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.transport = transport

    @property
    def appid(self) -> str:
        return self.settings.wechat_appid

    def authorize_url(self, *, redirect_uri: str, state: str, scope: Scope = "snsapi_base") -> str:
        return authorize_url(self.settings, redirect_uri=redirect_uri, state=state, scope=scope)

    async def exchange_code(self, code: str) -> WechatAccessToken:
        payload = await self._get(
            "/sns/oauth2/access_token",
            {
                "appid": self.settings.wechat_appid,
                "secret": self.settings.wechat_secret.get_secret_value(),
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        try:
            return WechatAccessToken(
                access_token=str(payload["access_token"]),
                expires_in=int(payload.get("expires_in", 7200)),
                refresh_token=str(payload.get("refresh_token", "")),
                openid=str(payload["openid"]),
                scope=str(payload.get("scope", "snsapi_base")),
                unionid=_optional(payload.get("unionid")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _unavailable("malformed_token_answer") from exc

    async def fetch_userinfo(self, token: WechatAccessToken) -> WechatUserInfo:
        payload = await self._get(
            "/sns/userinfo",
            {"access_token": token.access_token, "openid": token.openid, "lang": "zh_CN"},
        )
        try:
            return WechatUserInfo(
                openid=str(payload["openid"]),
                nickname=str(payload.get("nickname", "")),
                headimgurl=str(payload.get("headimgurl", "")),
                unionid=_optional(payload.get("unionid")),
            )
        except (KeyError, TypeError) as exc:
            raise _unavailable("malformed_userinfo_answer") from exc

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.settings.wechat_api_base.rstrip('/')}{path}"
        try:
            async with httpx.AsyncClient(
                timeout=self.settings.wechat_timeout_seconds, transport=self.transport
            ) as http:
                response = await http.get(url, params=params)
        except httpx.HTTPError as exc:
            log.error("wechat.request_failed", path=path, reason=type(exc).__name__)
            raise _unavailable("unreachable") from exc
        if not response.is_success:
            log.error("wechat.request_failed", path=path, status=response.status_code)
            raise _unavailable(f"http_{response.status_code}")
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            raise _unavailable("unreadable_answer") from exc
        if not isinstance(payload, dict):
            raise _unavailable("unreadable_answer")
        errcode = payload.get("errcode")
        if errcode not in (None, 0):
            raise _error_for(int(errcode), path=path)
        return payload


def _optional(value: object) -> str | None:
    return str(value) if value else None


def _unavailable(reason: str) -> ServiceUnavailable:
    log.warning("wechat.unavailable", reason=reason)
    return ServiceUnavailable(
        "WeChat cannot be reached right now. Please try again later.", code="wechat_unavailable"
    )


def _error_for(errcode: int, *, path: str) -> DomainError:
    # errmsg is WeChat's English text and may echo request values; log the number only.
    log.warning("wechat.error", path=path, errcode=errcode)
    if errcode == CODE_INVALID:
        return WechatError(
            "The WeChat sign-in code is invalid. Please sign in again.",
            code="wechat_code_invalid",
            errcode=errcode,
        )
    if errcode == CODE_USED:
        return WechatError(
            "The WeChat sign-in code was already used. Please sign in again.",
            code="wechat_code_used",
            errcode=errcode,
        )
    if errcode in (ACCESS_TOKEN_INVALID, ACCESS_TOKEN_EXPIRED):
        return WechatError(
            "The WeChat authorization expired. Please sign in again.",
            code="wechat_token_invalid",
            errcode=errcode,
        )
    if errcode == SCOPE_MISSING:
        return WechatError(
            "WeChat did not grant access to the profile. Please sign in again.",
            code="wechat_scope_missing",
            errcode=errcode,
        )
    # Wrong appid/secret (40013, 40125), quota (45011), system busy (-1): not the user's fault.
    return _unavailable(f"errcode_{errcode}")

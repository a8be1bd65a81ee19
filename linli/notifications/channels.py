"""Outside channels: text messages through the SMS provider, WeChat template messages.

**SMS** reuses the provider chosen by ``LINLI_SMS_PROVIDER`` (:mod:`linli.auth.sms`):
``http`` sends ``{"to", "template", "params"}`` to the same gateway with the same
signed headers as one-time codes, naming the gateway template of the notification
(``linli_<template>``); ``log`` keeps messages in memory for development
(:func:`dev_sms_outbox`) and logs the masked number only.

**WeChat** speaks the public-account API (公众号模板消息):

- ``GET {api}/cgi-bin/token?grant_type=client_credential&appid&secret`` →
  ``{"access_token", "expires_in"}``. The token is cached per account until five
  minutes before it expires; fetching a new one invalidates the old one at
  WeChat, so concurrent senders share one fetch.
- ``POST {api}/cgi-bin/message/template/send?access_token=…`` with
  ``{"touser", "template_id", "url", "client_msg_id", "data": {"k": {"value": "…"}}}``
  → ``{"errcode": 0, "errmsg": "ok", "msgid": …}``. ``client_msg_id`` (our delivery id)
  lets WeChat drop a repeat of the same message after a retry.

Errors are :class:`SendError`; ``permanent`` ones (unknown number, person does not
follow the account, bad template) are not retried. Reasons are short codes:
nothing personal goes into them or the log.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from linli.auth.sms import HttpSmsProvider
from linli.config import Settings, get_settings
from linli.core.crypto import mask_phone

log = structlog.get_logger("linli.notifications.channels")


class SendError(Exception):
    """A channel did not take the message. ``reason`` is a short code for the delivery log."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:200]
        self.permanent = permanent


# --- SMS -------------------------------------------------------------------------------------


class TemplateSms(Protocol):
    async def send_template(self, phone: str, template: str, params: dict[str, str]) -> str:
        """Send ``template`` with ``params`` to the 11-digit ``phone``; returns the message id."""


@dataclass(frozen=True)
class DevSms:
    to: str  # masked
    template: str
    params: dict[str, str]


_dev_sms: list[DevSms] = []
_dev_lock = threading.Lock()


def dev_sms_outbox() -> list[DevSms]:
    with _dev_lock:
        return list(_dev_sms)


class LogTemplateSms:
    """Development: keeps the message in memory, logs the masked number and template name."""

    async def send_template(self, phone: str, template: str, params: dict[str, str]) -> str:
        with _dev_lock:
            _dev_sms.append(DevSms(mask_phone(phone), template, dict(params)))
            del _dev_sms[:-1000]
        log.info("notify.sms_dev", to=mask_phone(phone), template=template)
        return f"dev-{len(_dev_sms)}"


class HttpTemplateSms(HttpSmsProvider):
    """The ``http`` SMS provider sending notification templates instead of one-time codes."""

    async def send_template(self, phone: str, template: str, params: dict[str, str]) -> str:
        body = json.dumps(
            {"to": f"+86{phone}", "template": template, "params": params},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
                response = await http.post(
                    self.url, content=body, headers=self.signed_headers(body)
                )
        except httpx.HTTPError as exc:
            raise SendError(f"sms_unreachable:{type(exc).__name__}") from exc
        if response.is_success:
            try:
                return str(response.json().get("message_id", ""))[:100]
            except (ValueError, AttributeError):
                return ""
        code = _json_field(response, "error")
        # 400/404/422: this message will never pass (bad number, unknown template).
        permanent = response.status_code in (400, 404, 422)
        raise SendError(f"sms_http_{response.status_code}:{code}", permanent=permanent)


def _json_field(response: httpx.Response, name: str) -> str:
    try:
        payload = json.loads(response.content)
    except ValueError:
        return "unreadable"
    return str(payload.get(name, "unknown"))[:60] if isinstance(payload, dict) else "unknown"


def get_template_sms(settings: Settings | None = None) -> TemplateSms:
    settings = settings or get_settings()
    if settings.sms_provider == "http":
        return HttpTemplateSms(settings)
    if settings.sms_provider == "log":
        if settings.env == "prod":
            raise RuntimeError("sms_provider=log is refused when LINLI_ENV=prod")
        return LogTemplateSms()
    raise RuntimeError(f"unknown LINLI_SMS_PROVIDER {settings.sms_provider!r} (log or http)")


# --- WeChat template messages ----------------------------------------------------------------

TOKEN_INVALID = frozenset({40001, 40014, 42001})  # invalid / malformed / expired access_token
PERMANENT_ERRCODES = frozenset(
    {
        40003,  # invalid openid
        40036,  # invalid template_id size
        40037,  # invalid template_id
        43004,  # the person does not follow the account (require subscribe)
        43101,  # the person refused this message
        47003,  # argument invalid (template data)
    }
)
TOKEN_MARGIN_SECONDS = 300


@dataclass
class _CachedToken:
    value: str
    expires_at: float  # time.monotonic()


_tokens: dict[tuple[str, str], _CachedToken] = {}
_token_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def forget_tokens() -> None:
    """Drop cached access tokens (tests; after rotating the AppSecret)."""
    _tokens.clear()


def _token_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _token_locks.get(loop)
    if lock is None:
        lock = _token_locks[loop] = asyncio.Lock()
    return lock


class WechatTemplateClient:
    """Sends template messages of the configured public account."""

    def __init__(
        self, settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.transport = transport

    @property
    def _base(self) -> str:
        return self.settings.wechat_api_base.rstrip("/")

    @property
    def _cache_key(self) -> tuple[str, str]:
        return (self._base, self.settings.wechat_appid)

    async def access_token(self, *, refresh: bool = False, stale: str | None = None) -> str:
        """The cached API token; ``refresh`` fetches a new one unless another caller already
        replaced ``stale`` (the token that was refused) in the meantime."""
        async with _token_lock():
            cached = _tokens.get(self._cache_key)
            usable = cached is not None and cached.expires_at > time.monotonic()
            if usable and cached is not None and (not refresh or cached.value != stale):
                return cached.value
            payload = await self._call(
                "GET",
                "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.settings.wechat_appid,
                    "secret": self.settings.wechat_secret.get_secret_value(),
                },
            )
            errcode = int(payload.get("errcode") or 0)
            if errcode or not payload.get("access_token"):
                # Wrong appid/secret or IP not whitelisted: configuration, so retried later.
                raise SendError(f"wechat_token_errcode:{errcode}")
            expires_in = int(payload.get("expires_in") or 7200)
            token = str(payload["access_token"])
            _tokens[self._cache_key] = _CachedToken(
                token, time.monotonic() + max(60, expires_in - TOKEN_MARGIN_SECONDS)
            )
            return token

    async def send(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str = "",
        client_msg_id: str = "",
    ) -> str:
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value[:200]} for key, value in data.items()},
        }
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id[:64]
        token = await self.access_token()
        for attempt in range(2):
            payload = await self._call(
                "POST",
                "/cgi-bin/message/template/send",
                params={"access_token": token},
                content=json.dumps(body, ensure_ascii=False).encode(),
            )
            errcode = int(payload.get("errcode") or 0)
            if errcode == 0:
                return str(payload.get("msgid", ""))[:100]
            if errcode in TOKEN_INVALID and attempt == 0:
                token = await self.access_token(refresh=True, stale=token)
                continue
            log.warning("notify.wechat_refused", errcode=errcode)
            raise SendError(f"wechat_errcode:{errcode}", permanent=errcode in PERMANENT_ERRCODES)
        raise SendError("wechat_token_rejected")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        content: bytes | None = None,
    ) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(
                timeout=self.settings.wechat_timeout_seconds, transport=self.transport
            ) as http:
                response = await http.request(
                    method,
                    f"{self._base}{path}",
                    params=params,
                    content=content,
                    headers={"Content-Type": "application/json"} if content else None,
                )
        except httpx.HTTPError as exc:
            raise SendError(f"wechat_unreachable:{type(exc).__name__}") from exc
        if not response.is_success:
            raise SendError(f"wechat_http_{response.status_code}")
        try:
            # WeChat labels JSON as text/plain at times: parse whatever the header says.
            payload = json.loads(response.content)
        except ValueError as exc:
            raise SendError("wechat_unreadable_answer") from exc
        if not isinstance(payload, dict):
            raise SendError("wechat_unreadable_answer")
        return payload

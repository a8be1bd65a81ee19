"""Sending one-time codes by text message (短信验证码): a provider interface and two providers.

``log`` is for development and tests: it writes the code to the log (the only
log line allowed to carry a code) and keeps the last code per phone in memory,
so tests and the demo can read it with :func:`dev_outbox`. ``http`` posts to a
gateway with a signed request; see :class:`HttpSmsProvider` for the protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from linli.config import Settings, get_settings
from linli.core.crypto import mask_phone
from linli.core.errors import ServiceUnavailable

log = structlog.get_logger("linli.auth.sms")


class SmsProvider(Protocol):
    async def send_code(self, phone: str, code: str) -> None:
        """Deliver ``code`` to the mainland mobile ``phone`` (11 digits) or raise a DomainError."""


_outbox: dict[str, str] = {}
_outbox_lock = threading.Lock()


def dev_outbox() -> dict[str, str]:
    """The last code sent per phone by the ``log`` provider (a copy; phone as 11 digits)."""
    with _outbox_lock:
        return dict(_outbox)


class LogSmsProvider:
    """Development provider: the code goes to the log and to :func:`dev_outbox`, nowhere else."""

    async def send_code(self, phone: str, code: str) -> None:
        with _outbox_lock:
            _outbox[phone] = code
        # The key names avoid the redaction patterns on purpose: this one line must show the code.
        log.warning("otp.dev_code", to=mask_phone(phone), digits=code)


class HttpSmsProvider:
    """A JSON-over-HTTPS SMS gateway authenticated by an API key and an HMAC signature.

    Request: ``POST {sms_http_url}`` with body
    ``{"to": "+86138…", "template": "<name>", "params": {"code": "123456", "minutes": 5}}``
    and headers

    - ``X-Api-Key``: the key id (``LINLI_SMS_HTTP_KEY_ID``)
    - ``X-Timestamp``: unix seconds; gateways refuse stale requests (replay window)
    - ``X-Nonce``: random, never reused; gateways refuse a nonce seen before
    - ``X-Signature``: hex HMAC-SHA256 with ``LINLI_SMS_HTTP_SECRET`` over
      ``"POST\\n{path}\\n{timestamp}\\n{nonce}\\n{sha256 hex of body}"``

    A 2xx answer is ``{"message_id": "..."}``; anything else is a failure whose
    body is ``{"error": "<code>", "message": "..."}``.
    """

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.sms_http_url or settings.sms_http_secret is None:
            raise RuntimeError(
                "LINLI_SMS_HTTP_URL and LINLI_SMS_HTTP_SECRET are needed for sms_provider=http"
            )
        self.url = settings.sms_http_url
        self.key_id = settings.sms_http_key_id
        self.secret = settings.sms_http_secret.get_secret_value().encode()
        self.template = settings.sms_http_template
        self.minutes = max(1, settings.otp_ttl_seconds // 60)
        self.timeout = settings.sms_http_timeout_seconds
        self.transport = transport

    def signed_headers(
        self, body: bytes, *, timestamp: int | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = nonce or secrets.token_hex(16)
        path = urlsplit(self.url).path or "/"
        return {
            "Content-Type": "application/json",
            "X-Api-Key": self.key_id,
            "X-Timestamp": str(timestamp),
            "X-Nonce": nonce,
            "X-Signature": sign_request(
                self.secret, path=path, timestamp=timestamp, nonce=nonce, body=body
            ),
        }

    async def send_code(self, phone: str, code: str) -> None:
        body = json.dumps(
            {
                "to": f"+86{phone}",
                "template": self.template,
                "params": {"code": code, "minutes": self.minutes},
            },
            separators=(",", ":"),
        ).encode()
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
                response = await http.post(
                    self.url, content=body, headers=self.signed_headers(body)
                )
        except httpx.HTTPError as exc:
            log.error("sms.send_failed", reason=type(exc).__name__)
            raise _unavailable() from exc
        if not response.is_success:
            log.error(
                "sms.send_failed", status=response.status_code, error_code=_error_code(response)
            )
            raise _unavailable()
        log.info("sms.sent", to=mask_phone(phone))


def sign_request(secret: bytes, *, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """The ``X-Signature`` of an http-provider request (shared with the gateway's checker)."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"POST\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _error_code(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return "unreadable"
    return str(payload.get("error", "unknown")) if isinstance(payload, dict) else "unknown"


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The text message could not be sent. Please try again later.", code="sms_unavailable"
    )


def get_sms_provider(settings: Settings | None = None) -> SmsProvider:
    settings = settings or get_settings()
    if settings.sms_provider == "http":
        return HttpSmsProvider(settings)
    if settings.sms_provider == "log":
        if settings.env == "prod":
            raise RuntimeError(
                "sms_provider=log writes codes to the log; it is refused when LINLI_ENV=prod"
            )
        return LogSmsProvider()
    raise RuntimeError(f"unknown LINLI_SMS_PROVIDER {settings.sms_provider!r} (log or http)")

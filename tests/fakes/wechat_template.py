"""Local fakes for notifications: WeChat's template-message API and a template SMS gateway.

:class:`FakeWechatApi` implements, over real HTTP, the two endpoints a public
account uses to send template messages, with WeChat's documented shapes:

- ``GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` →
  ``{"access_token": "…", "expires_in": 7200}``; errors 40002 (grant_type),
  40013 (appid), 40125 (secret). Every call issues a new token.
- ``POST /cgi-bin/message/template/send?access_token=…`` with
  ``{"touser", "template_id", "url"?, "client_msg_id"?, "data": {"k": {"value": "…"}}}`` →
  ``{"errcode": 0, "errmsg": "ok", "msgid": …}``; errors 41001 (token missing),
  40001 (token invalid), 42001 (token expired), 47001 (not JSON), 40003 (unknown
  openid), 43004 (not following), 40037 (unknown template), 47003 (bad data).
  A repeated ``client_msg_id`` for one openid sends nothing new.

Answers are HTTP 200 with ``text/plain`` bodies, as WeChat sends them; outage
drills answer ``fail_with`` (an HTTP status) or ``busy`` (errcode -1).

:class:`FakeTemplateSmsGateway` is the SMS gateway of ``tests.fakes.sms`` (same
signed-request checks) that accepts notification templates, whose params need no
``code``; it refuses unknown numbers like a real gateway (400 ``bad_number``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import LoopbackServer, QuietHandler
from tests.fakes.sms import PATH as SMS_PATH
from tests.fakes.sms import FakeSmsGateway

TOKEN_MISSING = 41001
TOKEN_INVALID = 40001
TOKEN_EXPIRED = 42001
BAD_GRANT_TYPE = 40002
BAD_APPID = 40013
BAD_SECRET = 40125
NOT_JSON = 47001
BAD_OPENID = 40003
NOT_FOLLOWING = 43004
BAD_TEMPLATE = 40037
BAD_DATA = 47003
BUSY = -1


@dataclass
class FakeWechatApi:
    appid: str = "wx-fake-app"
    secret: str = "fake-app-secret"
    followers: set[str] = field(default_factory=set)
    unsubscribed: set[str] = field(default_factory=set)
    templates: set[str] = field(default_factory=lambda: {"TPL-NOTICE", "TPL-ORDER"})
    fail_with: int | None = None  # every request answers this HTTP status
    busy: bool = False  # every send answers errcode -1 (system busy)
    token_requests: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    def start(self) -> FakeWechatApi:
        self._server = LoopbackServer(_WechatHandler, self)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeWechatApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expire_tokens(self) -> None:
        """Every issued token expires now (as after 7200 s or a fetch elsewhere)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def token(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("grant_type") != "client_credential":
            return self._error(BAD_GRANT_TYPE, "invalid grant_type")
        if query.get("appid") != self.appid:
            return self._error(BAD_APPID, "invalid appid")
        if query.get("secret") != self.secret:
            return self._error(BAD_SECRET, "invalid appsecret")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.token_requests += 1
            self._tokens[token] = time.time() + 7200
        return {"access_token": token, "expires_in": 7200}

    def send(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        token = query.get("access_token")
        if not token:
            return self._error(TOKEN_MISSING, "access_token missing")
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return self._error(TOKEN_INVALID, "invalid credential, access_token is invalid")
        if expiry < time.time():
            return self._error(TOKEN_EXPIRED, "access_token expired")
        if self.busy:
            return self._error(BUSY, "system error")
        try:
            message = json.loads(body)
            assert isinstance(message, dict)
        except (ValueError, AssertionError):
            return self._error(NOT_JSON, "data format error")
        touser = message.get("touser")
        if touser in self.unsubscribed:
            return self._error(NOT_FOLLOWING, "require subscribe")
        if touser not in self.followers:
            return self._error(BAD_OPENID, "invalid openid")
        if message.get("template_id") not in self.templates:
            return self._error(BAD_TEMPLATE, "invalid template_id")
        data = message.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
        ):
            return self._error(BAD_DATA, "argument invalid! data.value should be string")
        client_msg_id = str(message.get("client_msg_id") or "")
        with self._lock:
            if client_msg_id and (touser, client_msg_id) in self._seen:
                return {"errcode": 0, "errmsg": "ok", "msgid": 0}
            if client_msg_id:
                self._seen.add((touser, client_msg_id))
            self.messages.append(message)
            msgid = 200000000 + len(self.messages)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def _error(self, code: int, message: str) -> dict[str, Any]:
        with self._lock:
            self.refused.append(code)
        return {"errcode": code, "errmsg": f"{message} rid: {secrets.token_hex(6)}"}


class _WechatHandler(QuietHandler):
    def _reply(self, payload: dict[str, Any]) -> None:
        # WeChat sends JSON with a text/plain content type.
        self.send_body(200, json.dumps(payload).encode(), "text/plain")

    def _route(self, method: str) -> None:
        api: FakeWechatApi = self.owner
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if api.fail_with is not None:
            self.send_body(api.fail_with, b"<html>502 Bad Gateway</html>", "text/html")
            return
        if method == "GET" and parts.path == "/cgi-bin/token":
            self._reply(api.token(query))
        elif method == "POST" and parts.path == "/cgi-bin/message/template/send":
            self._reply(api.send(query, body))
        else:
            self.send_body(404, b"not found", "text/plain")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


@dataclass
class FakeTemplateSmsGateway(FakeSmsGateway):
    """The signed SMS gateway, accepting any template whose params are strings."""

    templates: set[str] = field(default_factory=set)  # empty = every template is known

    def check(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if self.fail_with is not None:
            return self.fail_with, {"error": "unavailable", "message": "gateway outage drill"}
        if path != SMS_PATH:
            return 404, {"error": "not_found", "message": "unknown path"}
        if headers.get("x-api-key") != self.key_id:
            return self._reject("unknown_key")
        try:
            timestamp = int(headers.get("x-timestamp", ""))
        except ValueError:
            return self._reject("bad_timestamp")
        if abs(time.time() - timestamp) > 300:
            return self._reject("stale_request")
        nonce = headers.get("x-nonce", "")
        digest = hashlib.sha256(body).hexdigest()
        expected = hmac.new(
            self.secret.encode(),
            f"POST\n{path}\n{timestamp}\n{nonce}\n{digest}".encode(),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-signature", "")):
            return self._reject("bad_signature")
        with self._lock:
            if not nonce or nonce in self._nonces:
                return self._reject("replayed_nonce")
            self._nonces.add(nonce)
        try:
            message = json.loads(body)
            to, template, params = str(message["to"]), str(message["template"]), message["params"]
            assert isinstance(params, dict) and all(isinstance(v, str) for v in params.values())
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"error": "bad_request", "message": "to, template and params required"}
        if not to.startswith("+86") or len(to) != 14 or not to[1:].isdigit():
            return 400, {"error": "bad_number", "message": "not a mainland mobile number"}
        if self.templates and template not in self.templates:
            return 400, {"error": "unknown_template", "message": "template not approved"}
        with self._lock:
            self.messages.append(message)
        return 200, {"message_id": secrets.token_hex(8)}

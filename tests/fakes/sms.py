"""A local fake SMS gateway speaking the protocol of ``linli.auth.sms.HttpSmsProvider``.

It checks every request the way a real gateway would (key id, timestamp window,
fresh nonce, HMAC signature over method, path, timestamp, nonce and body hash),
computed here independently of linli's code so a protocol slip on either side
fails the test. Accepted messages are kept in :attr:`FakeSmsGateway.messages`.
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

from tests.fakes.server import LoopbackServer, QuietHandler

PATH = "/v1/sms/send"


@dataclass
class FakeSmsGateway:
    key_id: str = "linli-test"
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    fail_with: int | None = None  # answer every request with this status (outage drill)
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{self._server.base_url}{PATH}"

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    def start(self) -> FakeSmsGateway:
        self._server = LoopbackServer(_Handler, self)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeSmsGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def last_code(self, to: str) -> str | None:
        with self._lock:
            for message in reversed(self.messages):
                if message["to"] == to:
                    return str(message["params"]["code"])
        return None

    def check(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if self.fail_with is not None:
            return self.fail_with, {"error": "unavailable", "message": "gateway outage drill"}
        if path != PATH:
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
        expected = hmac.new(
            self.secret.encode(),
            f"POST\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode(),
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
            to, params = str(message["to"]), dict(message["params"])
            str(params["code"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "bad_request", "message": "to and params.code are required"}
        if not to.startswith("+86") or len(to) != 14:
            return 400, {"error": "bad_number", "message": "not a mainland mobile number"}
        with self._lock:
            self.messages.append(message)
        return 200, {"message_id": secrets.token_hex(8)}

    def _reject(self, reason: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.rejected.append(reason)
        return 401, {"error": reason, "message": "request not authenticated"}


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        gateway: FakeSmsGateway = self.owner
        status, payload = gateway.check(self.path, headers, body)
        self.send_body(status, json.dumps(payload).encode(), "application/json")

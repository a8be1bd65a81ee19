"""A partner's webhook receiver on loopback: verifies Standard Webhooks signatures,
de-duplicates on ``webhook-id``, and can be told to fail or to answer slowly."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks import Webhook

from tests.fakes.server import LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        owner: Receiver = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        status = owner.accept(body, {k.lower(): v for k, v in self.headers.items()})
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


class Receiver:
    def __init__(self, secret: str, *, mode: str = "ok", delay: float = 0.0) -> None:
        self.secret = secret
        self.mode = mode
        self.delay = delay
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.ids: dict[str, int] = {}
        self.bad_signatures = 0
        self.server = LoopbackServer(_Handler, self)

    @property
    def url(self) -> str:
        return self.server.base_url + "/hook"

    def accept(self, body: bytes, headers: dict[str, str]) -> int:
        if self.delay:
            time.sleep(self.delay)
        if self.mode == "fail":
            return 503
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
            return 400
        with self.lock:
            msg_id = headers["webhook-id"]
            self.ids[msg_id] = self.ids.get(msg_id, 0) + 1
            if self.ids[msg_id] == 1:  # the receiver's idempotency check
                self.received.append(json.loads(body) if payload is not None else {})
        return 204

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

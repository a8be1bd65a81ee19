"""A parcel-locker partner app on the linli open platform, using only the SDK.

Configuration comes from the environment: LINLI_URL, CLIENT_ID, CLIENT_SECRET,
WEBHOOK_SECRET, PORT.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from linli_sdk import Event, Installation, InvalidWebhook, LinliClient, verify_webhook

LINLI_URL = os.environ["LINLI_URL"]
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"]
PORT = int(os.environ.get("PORT", "9100"))


class Locker:
    """The partner's own state: installations, events seen, work done."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.clients: dict[str, LinliClient] = {}  # installation id -> client
        self.handled: list[dict[str, Any]] = []

    def first_time(self, event: Event) -> bool:
        with self.lock:
            if event.id in self.seen:
                return False
            self.seen.add(event.id)
            return True

    def client_for(self, event: Event) -> LinliClient:
        with self.lock:
            client = self.clients.get(event.installation_id)
            if client is None:
                client = LinliClient(
                    LINLI_URL,
                    CLIENT_ID,
                    CLIENT_SECRET,
                    Installation(event.tenant_id, event.installation_id),
                )
                self.clients[event.installation_id] = client
            return client

    def handle(self, event: Event) -> None:
        if event.type == "platform.app.installed":
            self.client_for(event)
            self.record(event, {"installed": True})
        elif event.type == "residents.resident.moved_in":
            self.welcome(event)

    def welcome(self, event: Event) -> None:
        linli = self.client_for(event)
        house = linli.request("GET", f"/api/v1/estate/houses/{event.data['house_id']}")
        now = dt.datetime.now(dt.UTC)
        gate_pass = linli.issue_courier_pass(
            community_id=house["community_id"],
            name="丰邻快递员",
            valid_from=now.isoformat(),
            valid_until=(now + dt.timedelta(hours=4)).isoformat(),
            entries=2,
            idempotency_key=f"welcome-{event.id}",
        )
        linli.notify_parcel(
            resident_id=event.data["resident_id"], place="1号楼快递柜", code="A1024"
        )
        self.record(
            event,
            {"pass_id": gate_pass["access_pass"]["id"], "community_id": house["community_id"]},
        )

    def record(self, event: Event, detail: dict[str, Any]) -> None:
        with self.lock:
            self.handled.append({"event_id": event.id, "type": event.type, **detail})


LOCKER = Locker()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path != "/webhooks":
            self._answer(404)
            return
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            event = verify_webhook(WEBHOOK_SECRET, body, dict(self.headers.items()))
        except InvalidWebhook:
            self._answer(400)
            return
        if LOCKER.first_time(event):
            try:
                LOCKER.handle(event)
            except Exception as exc:  # linli retries; forget the id so the retry is handled
                with LOCKER.lock:
                    LOCKER.seen.discard(event.id)
                print(f"event {event.id} failed: {exc!r}", flush=True)
                self._answer(500, {"error": type(exc).__name__, "detail": str(exc)[:200]})
                return
        self._answer(204)

    def do_GET(self) -> None:
        if self.path == "/status":
            with LOCKER.lock:
                self._answer(200, {"handled": LOCKER.handled})
        else:
            self._answer(404)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"parcel locker listening on {PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

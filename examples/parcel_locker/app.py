"""A parcel-locker partner app on the linli open platform, using only the SDK.

Configuration comes from the environment: LINLI_URL, CLIENT_ID, CLIENT_SECRET,
WEBHOOK_SECRET, PORT; optionally PUBLIC_URL (where residents' browsers reach this
app, default http://127.0.0.1:PORT) and INSTALLATIONS (``tenant_id:installation_id``
pairs, comma-separated, for installations made before this process started: a real
partner keeps them in its own database; every webhook also carries them).

Three things a partner does:

- ``POST /webhooks``: verified Standard Webhooks; on ``residents.resident.moved_in``
  it looks up the house, issues a courier gate pass and tells the resident.
- ``GET /h5``: the resident entry linli's portal links to. It signs the resident in
  with linli (authorization code + PKCE, OpenID Connect) and shows a page where the
  resident can call a courier to their door (a gate pass through the access API).
- ``GET /status``: what it has handled (for tests and curious visitors).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import secrets
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from linli_sdk import (
    ApiError,
    Event,
    Installation,
    InvalidIdToken,
    InvalidWebhook,
    LinliClient,
    verify_id_token,
    verify_webhook,
)
from linli_sdk.oauth import authorize_url, exchange_code, new_pkce

LINLI_URL = os.environ["LINLI_URL"].rstrip("/")
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"]
PORT = int(os.environ.get("PORT", "9100"))
PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
REDIRECT_URI = f"{PUBLIC_URL}/callback"
SESSION_COOKIE = "locker_session"


class Locker:
    """The partner's own state: installations, events seen, sign-ins, work done."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.installations: dict[str, str] = {}  # tenant id -> installation id
        self.clients: dict[str, LinliClient] = {}  # installation id -> client
        self.handled: list[dict[str, Any]] = []
        self.pending: dict[str, dict[str, str]] = {}  # OAuth state -> verifier, nonce
        self.sessions: dict[str, dict[str, Any]] = {}  # session id -> id_token claims
        for pair in filter(None, os.environ.get("INSTALLATIONS", "").split(",")):
            tenant_id, _, installation_id = pair.strip().partition(":")
            self.installations[tenant_id] = installation_id

    def first_time(self, event: Event) -> bool:
        with self.lock:
            if event.id in self.seen:
                return False
            self.seen.add(event.id)
            return True

    def client(self, tenant_id: str) -> LinliClient:
        with self.lock:
            installation_id = self.installations.get(tenant_id)
            if installation_id is None:
                raise LookupError("this company has not installed the app")
            client = self.clients.get(installation_id)
            if client is None:
                client = LinliClient(
                    LINLI_URL, CLIENT_ID, CLIENT_SECRET, Installation(tenant_id, installation_id)
                )
                self.clients[installation_id] = client
            return client

    def handle(self, event: Event) -> None:
        with self.lock:
            self.installations[event.tenant_id] = event.installation_id
        if event.type == "platform.app.installed":
            self.record(event.id, event.type, {"installed": True})
        elif event.type == "residents.resident.moved_in":
            self.welcome(event)

    def courier_pass(self, tenant_id: str, community_id: str, key: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        result: dict[str, Any] = self.client(tenant_id).issue_courier_pass(
            community_id=community_id,
            name="丰邻快递员",
            valid_from=now.isoformat(),
            valid_until=(now + dt.timedelta(hours=4)).isoformat(),
            entries=2,
            idempotency_key=key,
        )
        return result

    def welcome(self, event: Event) -> None:
        linli = self.client(event.tenant_id)
        house = linli.request("GET", f"/api/v1/estate/houses/{event.data['house_id']}")
        gate_pass = self.courier_pass(event.tenant_id, house["community_id"], f"welcome-{event.id}")
        linli.notify_parcel(
            resident_id=event.data["resident_id"], place="1号楼快递柜", code="A1024"
        )
        self.record(
            event.id,
            event.type,
            {"pass_id": gate_pass["access_pass"]["id"], "community_id": house["community_id"]},
        )

    def record(self, event_id: str, kind: str, detail: dict[str, Any]) -> None:
        with self.lock:
            self.handled.append({"event_id": event_id, "type": kind, **detail})


LOCKER = Locker()

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>丰邻快递柜</title><style>body{{font-family:sans-serif;margin:1.2rem;max-width:32rem}}
button{{font-size:1rem;padding:.6rem 1rem}}</style></head><body>
<h1>丰邻快递柜</h1>{body}</body></html>"""


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

    def _page(self, body: str, status: int = 200, cookie: str | None = None) -> None:
        data = PAGE.format(body=body).encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        if cookie:
            self.send_header("set-cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        self.send_response(303)
        self.send_header("location", location)
        self.send_header("content-length", "0")
        if cookie:
            self.send_header("set-cookie", cookie)
        self.end_headers()

    def _session(self) -> dict[str, Any] | None:
        for part in self.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                with LOCKER.lock:
                    return LOCKER.sessions.get(value)
        return None

    def do_POST(self) -> None:
        if self.path == "/h5/courier-pass":
            self.call_courier()
            return
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
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/status":
            with LOCKER.lock:
                self._answer(200, {"handled": LOCKER.handled})
        elif url.path in ("/", "/h5"):
            self.entry(query)
        elif url.path == "/callback":
            self.callback(query)
        elif url.path == "/h5/home":
            self.home()
        else:
            self._answer(404)

    # --- the resident's H5 pages ---------------------------------------------------------

    def entry(self, query: dict[str, str]) -> None:
        """From linli's portal (``?tenant_id=``): sign the resident in with linli."""
        if self._session() is not None:
            self._redirect("/h5/home")
            return
        tenant_id = query.get("tenant_id", "")
        if not tenant_id:
            self._page("<p>请从物业 App 的「服务」进入。</p>", 400)
            return
        pkce = new_pkce()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        with LOCKER.lock:
            LOCKER.pending[state] = {"verifier": pkce.verifier, "nonce": nonce}
        self._redirect(
            authorize_url(
                LINLI_URL,
                client_id=CLIENT_ID,
                tenant_id=tenant_id,
                redirect_uri=REDIRECT_URI,
                pkce=pkce,
                scope="openid profile houses",
                state=state,
                nonce=nonce,
            )
        )

    def callback(self, query: dict[str, str]) -> None:
        with LOCKER.lock:
            pending = LOCKER.pending.pop(query.get("state", ""), None)
        if pending is None:
            self._page("<p>登录已过期，请重新进入。</p>", 400)
            return
        if "error" in query:
            self._page("<p>您没有授权，快递柜无法为您服务。</p>")
            return
        try:
            tokens = exchange_code(
                LINLI_URL,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                code=query.get("code", ""),
                redirect_uri=REDIRECT_URI,
                verifier=pending["verifier"],
            )
            claims = verify_id_token(
                tokens["id_token"],
                secret=WEBHOOK_SECRET,
                client_id=CLIENT_ID,
                nonce=pending["nonce"],
            )
        except (InvalidIdToken, KeyError, ValueError) as exc:
            print(f"sign-in failed: {exc!r}", flush=True)
            self._page("<p>登录失败，请重新进入。</p>", 400)
            return
        except Exception as exc:  # linli refused the code (replayed, expired): start again
            print(f"sign-in failed: {exc!r}", flush=True)
            self._page("<p>登录失败，请重新进入。</p>", 400)
            return
        session_id = secrets.token_urlsafe(24)
        with LOCKER.lock:
            LOCKER.sessions[session_id] = claims
        cookie = f"{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Lax; Path=/"
        self._redirect("/h5/home", cookie)

    def home(self, notice: str = "") -> None:
        claims = self._session()
        if claims is None:
            self._page("<p>请从物业 App 的「服务」进入。</p>", 401)
            return
        houses = claims.get("houses") or []
        listed = "".join(
            f"<li>{html.escape(h['building_no'])} 栋 {html.escape(h['unit_no'] or '')} "
            f"{html.escape(h['house_no'])}</li>"
            for h in houses
        )
        body = (
            f'<p data-testid="hello">您好，{html.escape(str(claims.get("name", "")))}</p>'
            f"<p>您的房屋：</p><ul>{listed}</ul>{notice}"
            '<form method="post" action="/h5/courier-pass">'
            '<button type="submit">叫快递员上门（4 小时通行证）</button></form>'
        )
        self._page(body)

    def call_courier(self) -> None:
        claims = self._session()
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if claims is None or not claims.get("houses"):
            self._page("<p>请从物业 App 的「服务」进入。</p>", 401)
            return
        community_id = claims["houses"][0]["community_id"]
        try:
            gate_pass = LOCKER.courier_pass(
                str(claims["tenant_id"]), community_id, f"h5-{secrets.token_hex(8)}"
            )
        except (ApiError, LookupError) as exc:
            print(f"courier pass refused: {exc!r}", flush=True)
            self.home('<p data-testid="pass-refused">物业暂不允许发放通行证。</p>')
            return
        pass_id = str(gate_pass["access_pass"]["id"])
        detail = {"pass_id": pass_id, "community_id": community_id}
        LOCKER.record(pass_id, "h5.courier_pass", detail)
        self.home(
            f'<p data-testid="pass-issued">已为快递员办理通行证 {html.escape(pass_id[:8])}，'
            "4 小时内可进出小区两次。</p>"
        )


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)  # `linli demo` stops its children with SIGTERM
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"parcel locker listening on {PORT}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl+C on `linli demo` reaches this child too
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

"""Helpers of the outbox tests: a local HTTP receiver for the http-sink consumer,
an MQTT subscriber, and bounded waiting.

It behaves like a correct at-least-once receiver: it checks the signature and
de-duplicates by ``X-Linli-Event-Id``. It can hold the first request (to kill
a worker mid-delivery) and fail the first N requests (to exercise retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from sqlalchemy import select

from linli.auth.actor import Actor
from linli.core import mqtt, outbox
from linli.core.consumers import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign
from linli.core.models import OutboxDelivery
from linli.db.engine import unit_of_work


@dataclass
class Arrival:
    event_id: str
    event_type: str
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class EventSink:
    secret: bytes
    hold_first_seconds: float = 0.0
    fail_first: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    first_arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrival = Arrival(
                    event_id=self.headers.get(EVENT_ID_HEADER, ""),
                    event_type=self.headers.get(EVENT_TYPE_HEADER, ""),
                    body=json.loads(raw),
                    signature_ok=self.headers.get(SIGNATURE_HEADER) == sign(raw, sink.secret),
                )
                with sink._lock:
                    sink.arrivals.append(arrival)
                    number = len(sink.arrivals)
                if number == 1:
                    sink.first_arrived.set()
                    if sink.hold_first_seconds:
                        sink.release.wait(sink.hold_first_seconds)
                status = 500 if number <= sink.fail_first else 200
                with contextlib.suppress(OSError):  # the sender may have been killed meanwhile
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                if status == 200 and arrival.signature_ok:
                    with sink._lock:
                        sink.accepted.add(arrival.event_id)  # de-duplicated by event id

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/linli-events"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(a.event_id for a in self.arrivals)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, what: Callable[[], str]
) -> None:
    """Poll ``condition`` until true; fail with ``what()`` (the state seen) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s: {what()}")
        await asyncio.sleep(0.1)


def jobs_of(owner_dsn: str, event_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """(queue, task, status) of the procrastinate jobs delivering ``event_id``."""
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT queue_name, task_name, status::text FROM procrastinate_jobs"
            " WHERE args->>'event_id' = %s",
            (str(event_id),),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


async def deliveries(tenant_id: uuid.UUID, event_id: uuid.UUID) -> list[str]:
    async with unit_of_work(tenant_id) as session:
        rows = await session.scalars(
            select(OutboxDelivery.consumer).where(OutboxDelivery.event_id == event_id)
        )
        return sorted(rows)


async def emit_committed(
    tenant_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> uuid.UUID:
    async with unit_of_work(tenant_id) as session:
        return await outbox.emit(session, Actor.system(tenant_id), event_type, payload)


class Subscriber:
    """Collects the MQTT messages of one tenant's event topics."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.topic = f"linli/{tenant_id}/events/#"
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def ids(self) -> list[str]:
        return [payload["id"] for _, payload in self.messages]

    async def _collect(self, client: Any) -> None:
        async for message in client.messages:
            self.messages.append((str(message.topic), json.loads(message.payload)))

    async def __aenter__(self) -> Subscriber:
        self._client = mqtt.client(identifier=f"test-{uuid.uuid4().hex[:12]}")
        await self._client.__aenter__()
        await self._client.subscribe(self.topic, qos=1)
        self._task = asyncio.create_task(self._collect(self._client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.__aexit__(None, None, None)

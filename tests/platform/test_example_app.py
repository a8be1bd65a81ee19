"""The example partner app (examples/parcel_locker) runs as its own process against a
live linli, knowing only the SDK and the public API: install -> webhook -> API calls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from linli.auth.actor import Actor
from linli.core.tasks import deliver_to
from linli.db.engine import unit_of_work
from linli.platform import webhooks
from linli.residents.models import Relation
from tests.conftest import ROOT, TEST_HOME, free_port
from tests.estate.factories import make_houses, make_resident
from tests.factories import Company, bearer, make_company, staff_token
from tests.live import live_server
from tests.platform.factories import install, make_partner_app

SCOPES = ["estate:read", "residents:read:basic", "access:passes:write", "parcels:write"]
EVENTS = ["platform.app.installed", "residents.resident.moved_in"]


def _events_of(owner_dsn: str, company: Company, event_type: str) -> list[uuid.UUID]:
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT id FROM outbox_events WHERE tenant_id = %s AND event_type = %s ORDER BY id",
            (company.id, event_type),
        ).fetchall()
    return [row[0] for row in rows]


async def _deliver(
    owner_dsn: str, company: Company, event_type: str, installation: uuid.UUID
) -> None:
    """What the worker does: outbox -> webhook rows -> signed POSTs."""
    for event_id in _events_of(owner_dsn, company, event_type):
        await deliver_to(company.id, event_id, webhooks.WebhookConsumer())
    await webhooks.dispatch_installation(company.id, installation)


def _logged(owner_dsn: str, company: Company) -> list[tuple[str, int]]:
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT endpoint, status FROM app_access_log WHERE tenant_id = %s ORDER BY at",
            (company.id,),
        ).fetchall()
    return [(e, s) for e, s in rows]


def _wait_for(url: str, predicate, timeout: float = 20) -> dict:  # type: ignore[no-untyped-def, type-arg]
    deadline = time.monotonic() + timeout
    last: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=2).json()
            if predicate(last):
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the example app did not get there: {last}")


async def test_parcel_locker_example_end_to_end(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    resident_id = await make_resident(company, house_id=None, name="王五")
    async with unit_of_work(company.id) as session:
        from linli.access import service as access_service
        from linli.access.models import AccessPointKind

        await access_service.create_access_point(
            session,
            Actor.system(company.id),
            community_id=company.communities[0],
            kind=AccessPointKind.COMMUNITY_GATE,
            name="南门",
        )
    port = free_port()
    app = await make_partner_app(
        scopes=SCOPES, events=EVENTS, webhook_url=f"http://127.0.0.1:{port}/webhooks"
    )
    log_dir = TEST_HOME / "example-app"
    log_dir.mkdir(parents=True, exist_ok=True)
    with live_server({}, log_dir / "linli.log") as server:
        env = {
            **os.environ,
            "LINLI_URL": server.url,
            "CLIENT_ID": app.client_id,
            "CLIENT_SECRET": app.client_secret,
            "WEBHOOK_SECRET": app.webhook_secret,
            "PORT": str(port),
            "PYTHONPATH": str(ROOT / "sdk" / "python"),  # the SDK only, not linli
        }
        with (log_dir / "example.log").open("wb") as log:
            partner = subprocess.Popen(
                [sys.executable, str(Path(ROOT, "examples", "parcel_locker", "app.py"))],
                cwd=ROOT / "examples",
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_for(f"http://127.0.0.1:{port}/status", lambda s: "handled" in s)
                inst = await install(company, app, scopes=SCOPES)
                await _deliver(owner_dsn, company, "platform.app.installed", inst.installation_id)
                _wait_for(
                    f"http://127.0.0.1:{port}/status",
                    lambda s: any(h.get("installed") for h in s["handled"]),
                )
                moved = httpx.post(
                    f"{server.url}/api/v1/residents/{resident_id}/move-in",
                    headers={**bearer(staff_token(company)), "Idempotency-Key": str(uuid.uuid4())},
                    json={"house_id": str(houses[0]), "relation": Relation.OWNER.value},
                )
                assert moved.status_code == 201, moved.text
                await _deliver(
                    owner_dsn, company, "residents.resident.moved_in", inst.installation_id
                )
                status = _wait_for(
                    f"http://127.0.0.1:{port}/status",
                    lambda s: any("pass_id" in h for h in s["handled"]),
                )
                # the access log is written in batches (every half second)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and len(_logged(owner_dsn, company)) < 3:
                    time.sleep(0.2)
            finally:
                partner.terminate()
                partner.wait(10)
    welcome = next(h for h in status["handled"] if "pass_id" in h)
    assert welcome["community_id"] == str(company.communities[0])
    async with unit_of_work(company.id) as session:
        from linli.access import service as access_service

        gate_pass = await access_service.get_pass(
            session, Actor.system(company.id), pass_id=uuid.UUID(welcome["pass_id"])
        )
        assert gate_pass.holder_name == "丰邻快递员"
    with psycopg.connect(owner_dsn) as conn:
        notified = conn.execute(
            "SELECT count(*) FROM notifications WHERE tenant_id = %s AND resident_id = %s"
            " AND template = 'parcel.arrived' AND source_type = 'app'",
            (company.id, resident_id),
        ).fetchone()
    assert notified == (1,)
    assert set(_logged(owner_dsn, company)) >= {
        ("/api/v1/estate/houses/{house_id}", 200),
        ("/api/v1/access/courier-passes", 201),
        ("/api/v1/platform/app/parcels", 202),
    }

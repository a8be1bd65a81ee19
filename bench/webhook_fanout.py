"""Benchmark ``webhook-fanout``: outbox events fanned out to 100 partner apps' receivers.

Seeds one company with ``--apps`` (100) approved partner apps installed, each
subscribed to ``workorder.created`` with its own receiver path on a loopback
receiver process (uvicorn; it verifies every Standard Webhooks signature with that
app's secret and counts ``webhook-id`` per receiver, the receivers' idempotency
check). Emits ``--size / --apps`` events through the outbox, fans each out with
the ``platform-webhooks`` consumer (one ``INSERT … SELECT`` per event), then runs
every installation's dispatch concurrently, as the worker would.

``rate`` is deliveries per second of the dispatch phase (fan-out is reported
apart); ``limit_rate`` is the same client sending the same number of signed POSTs
to the same receiver with no database in between. ``checks`` counts lost and
doubled deliveries and bad signatures (all must be 0).

    python bench/webhook_fanout.py [--size 100000] [--apps 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_read import _free_port

EVENT = "workorder.created"
TARGET_RATE = 2000.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the receivers (a child process) ----------------------------------------------------------


def receiver_main(port: int, secrets_file: str) -> None:
    import uvicorn
    from standardwebhooks import Webhook

    signers = [Webhook(s) for s in json.loads(Path(secrets_file).read_text())]
    seen: list[dict[str, int]] = [{} for _ in signers]
    bad = [0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        status = 204
        payload = b""
        if path == "/stats":
            unique = sum(len(s) for s in seen)
            total = sum(sum(s.values()) for s in seen)
            payload = json.dumps({"unique": unique, "total": total, "bad": bad[0]}).encode()
            status = 200
        else:
            n = int(path.rsplit("/", 1)[1])
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            try:
                signers[n].verify(body, headers)
            except Exception:
                bad[0] += 1
                status = 400
            else:
                msg = headers["webhook-id"]
                seen[n][msg] = seen[n].get(msg, 0) + 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=4096,
    )


# --- seeding ------------------------------------------------------------------------------------


async def seed(apps: int, receiver: str) -> tuple[Any, list[Any], list[str]]:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.platform import service
    from linli.platform.schemas import Manifest
    from linli.platform.service import DeveloperPrincipal
    from linli.tenancy import service as tenancy

    async with unit_of_work() as session:
        tenant = await tenancy.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-hook-{secrets.token_hex(4)}",
            name="基准物业 (webhook-fanout)",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
        tenant_id = tenant.id
    system = Actor.system(tenant_id)
    async with unit_of_work(tenant_id) as session:
        community = await tenancy.create_community(session, system, code="C01", name="基准小区")
    admin = Actor.staff(
        id=system.id,
        tenant_id=tenant_id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    installations, hook_secrets = [], []
    async with unit_of_work() as session:
        developer = await service.register_partner(
            session,
            company_name="基准伙伴",
            email=f"bench-{secrets.token_hex(4)}@partner.example",
            display_name="bench",
            password=secrets.token_urlsafe(16),
        )
    principal = DeveloperPrincipal(developer.id, developer.partner_id)
    for n in range(apps):
        async with unit_of_work() as session:
            app, hook_secret = await service.create_app(
                session,
                principal,
                Manifest(
                    name=f"基准应用 {n}",
                    requested_scopes=["estate:read"],
                    events=[EVENT],
                    webhook_url=f"{receiver}/r/{n}",
                ),
            )
            await service.review_app(session, Actor.system(), app.id, approve=True, note="")
        async with unit_of_work(tenant_id) as session:
            installation = await service.install_app(
                session, admin, app_id=app.id, community_ids=[community.id], scopes=["estate:read"]
            )
        installations.append(installation.id)
        hook_secrets.append(hook_secret)
    return tenant_id, installations, hook_secrets


async def emit_and_fan_out(tenant_id: Any, events: int) -> tuple[list[Any], float]:
    from linli.auth.actor import Actor
    from linli.core import outbox
    from linli.core.tasks import deliver_to
    from linli.db.engine import unit_of_work
    from linli.platform.webhooks import WebhookConsumer

    system = Actor.system(tenant_id)
    ids = []
    for start in range(0, events, 500):
        async with unit_of_work(tenant_id) as session:
            for n in range(start, min(start + 500, events)):
                ids.append(await outbox.emit(session, system, EVENT, {"order_id": f"o{n}"}))
    consumer = WebhookConsumer()
    started = time.perf_counter()
    gate = asyncio.Semaphore(8)

    async def one(event_id: Any) -> None:
        async with gate:
            await deliver_to(tenant_id, event_id, consumer)

    await asyncio.gather(*(one(e) for e in ids))
    return ids, time.perf_counter() - started


async def dispatch_all(tenant_id: Any, installations: list[Any], parallel: int) -> float:
    from linli.platform import webhooks

    gate = asyncio.Semaphore(parallel)
    started = time.perf_counter()

    async def one(installation_id: Any) -> None:
        async with gate:
            await webhooks.dispatch_installation(tenant_id, installation_id)

    await asyncio.gather(*(one(i) for i in installations))
    return time.perf_counter() - started


async def raw_limit(receiver: str, hook_secrets: list[str], count: int) -> float:
    """The same client, signer and concurrency, straight to the receiver: no database."""
    import datetime as dt

    from standardwebhooks import Webhook

    from linli.platform import webhooks

    http = webhooks.http_client()
    signers = [Webhook(s) for s in hook_secrets]
    gate = asyncio.Semaphore(webhooks.CONCURRENCY * 8)
    body = json.dumps({"type": EVENT, "data": {"order_id": "raw"}})

    async def one(n: int) -> None:
        async with gate:
            index = n % len(signers)
            now = dt.datetime.now(dt.UTC)
            msg = f"raw_{n}"
            async with http.post(
                f"{receiver}/r/{index}",
                data=body.encode(),
                headers={
                    "content-type": "application/json",
                    "webhook-id": msg,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signers[index].sign(msg, now, body),
                },
            ) as response:
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - started)


def _stats(receiver: str) -> dict[str, int]:
    import httpx

    result: dict[str, int] = httpx.get(f"{receiver}/stats", timeout=10).json()
    return result


def run(size: int, apps: int, parallel: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine
    from linli.db.migrate import upgrade

    settings = get_settings()
    _log("database: migrating")
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    events = max(1, size // apps)
    expected = events * apps
    port = _free_port()
    receiver = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as scratch:
        secrets_file = Path(scratch) / "secrets.json"

        async def prepare() -> tuple[Any, list[Any], list[str]]:
            try:
                return await seed(apps, receiver)
            finally:
                await dispose_engine()

        _log(f"seeding {apps} apps, installed")
        tenant_id, installations, hook_secrets = asyncio.run(prepare())
        secrets_file.write_text(json.dumps(hook_secrets))
        child = subprocess.Popen(
            [sys.executable, __file__, "--receiver", str(port), str(secrets_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import httpx

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"{receiver}/stats", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)

            async def main_phase() -> dict[str, Any]:
                try:
                    _log(f"emitting {events} events and fanning out to {apps} installations")
                    _, fan_seconds = await emit_and_fan_out(tenant_id, events)
                    _log(f"dispatching {expected} deliveries")
                    dispatch_seconds = await dispatch_all(tenant_id, installations, parallel)
                    after = _stats(receiver)
                    _log("raw limit: the same POSTs without the database")
                    limit = await raw_limit(receiver, hook_secrets, min(expected, 20_000))
                    return {"fan": fan_seconds, "dispatch": dispatch_seconds, "stats": after,
                            "limit": limit}  # fmt: skip
                finally:
                    await webhooks.http_client().close()
                    await dispose_engine()

            from linli.platform import webhooks

            figures = asyncio.run(main_phase())
        finally:
            child.terminate()
            child.wait(10)
    stats = figures["stats"]
    rate = expected / figures["dispatch"]
    return {
        "name": "webhook-fanout",
        "size": expected,
        "seconds": round(figures["dispatch"], 2),
        "rate": round(rate, 1),
        "unit": "deliveries/s",
        "limit_rate": round(figures["limit"], 1),
        "ratio": round(rate / figures["limit"], 4) if figures["limit"] else 0.0,
        "checks": {
            "expected": expected,
            "lost": expected - stats["unique"],
            "doubled": stats["total"] - stats["unique"],
            "bad_signatures": stats["bad"],
            "rate_at_least_2000": rate >= TARGET_RATE,
        },
        "events": events,
        "apps": apps,
        "fan_out_seconds": round(figures["fan"], 2),
        "end_to_end_rate": round(expected / (figures["fan"] + figures["dispatch"]), 1),
        "parallel_installations": parallel,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--receiver":
        receiver_main(int(argv[1]), argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="deliveries in all")
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=16, help="installations dispatched at once")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = run(args.size, args.apps, args.parallel)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"{result['rate']} deliveries/s, checks {result['checks']}", file=sys.stderr)


if __name__ == "__main__":
    main()

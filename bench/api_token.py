"""Benchmark ``api-token``: a partner app's client-credentials token plus one scoped API call.

Starts the app server (uvicorn, as ``api-read`` does) against the configured
database, seeds a company with houses, a partner app approved and installed with
``estate:read`` for one community, then, ``--size`` times in a row over one
keep-alive connection:

    POST /api/v1/platform/oauth/token   (client_credentials, HTTP Basic)
    GET  /api/v1/estate/houses?limit=20 (with that token; scoped to the community)

and reports the latency of the pair (``p50_ms``, ``p99_ms``; target p99 < 30 ms).
``limit_p99_ms`` and ``limit_rate`` come from ``GET /healthz`` over the same
connection in the same run: the server's floor on this machine.

    python bench/api_token.py [--size 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_read import _free_port, start_server, wait_ready

P99_TARGET_MS = 30.0
HOUSES_PATH = "/api/v1/estate/houses?limit=20"
CALLS_PER_INSTALLATION = 1000  # stays under the per-installation rate limit (1200/minute)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def seed(installations: int) -> list[dict[str, str]]:
    """Companies with houses, each with the app installed: the token requests' parameters."""
    from linli.auth.actor import Actor
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.estate import service as estate
    from linli.estate.rows import HouseRow
    from linli.platform import service
    from linli.platform.schemas import Manifest
    from linli.platform.service import DeveloperPrincipal
    from linli.tenancy import service as tenancy

    made: list[dict[str, str]] = []
    try:
        async with unit_of_work() as session:
            developer = await service.register_partner(
                session,
                company_name="基准伙伴",
                email=f"bench-{secrets.token_hex(4)}@partner.example",
                display_name="bench",
                password=secrets.token_urlsafe(16),
            )
            principal = DeveloperPrincipal(developer.id, developer.partner_id)
            app, _ = await service.create_app(
                session, principal, Manifest(name="基准应用", requested_scopes=["estate:read"])
            )
            await service.review_app(session, Actor.system(), app.id, approve=True, note="")
            credential, secret = await service.issue_credentials(session, principal, app.id, "live")
        for n in range(installations):
            async with unit_of_work() as session:
                tenant = await tenancy.create_tenant(
                    session,
                    Actor.system(),
                    slug=f"bench-tok-{secrets.token_hex(4)}",
                    name=f"基准物业 {n}",
                    admin_username="admin",
                    admin_display_name="管理员",
                    admin_password=secrets.token_urlsafe(16),
                )
                tenant_id = tenant.id
            system = Actor.system(tenant_id)
            async with unit_of_work(tenant_id) as session:
                community = await tenancy.create_community(
                    session, system, code="C01", name="基准小区"
                )
                await estate.upsert_houses(
                    session,
                    system,
                    rows=[
                        HouseRow(
                            community_code="C01",
                            building_no="1",
                            unit_no="1",
                            house_no=f"{f}0{h}",
                            floor=f,
                            building_area=Decimal("89.50"),
                        )
                        for f in range(1, 11)
                        for h in range(1, 5)
                    ],
                )
                admin = Actor.staff(
                    id=system.id,
                    tenant_id=tenant_id,
                    roles=frozenset({"company_admin"}),
                    all_communities=True,
                    community_ids=frozenset(),
                )
                installation = await service.install_app(
                    session,
                    admin,
                    app_id=app.id,
                    community_ids=[community.id],
                    scopes=["estate:read"],
                )
            made.append(
                {
                    "client_id": credential.client_id,
                    "client_secret": secret,
                    "tenant_id": str(tenant_id),
                    "installation_id": str(installation.id),
                }
            )
    finally:
        await dispose_engine()
    return made


def measure(base: str, installs: list[dict[str, str]], size: int) -> dict[str, Any]:
    import httpx

    pair_ms: list[float] = []
    health_ms: list[float] = []
    errors = 0
    items = 0
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(20):  # warm-up: connection, caches, JIT-less but still
            http.get("/healthz")
        health_start = time.perf_counter()
        for _ in range(size):
            started = time.perf_counter()
            http.get("/healthz")
            health_ms.append((time.perf_counter() - started) * 1000)
        health_seconds = time.perf_counter() - health_start
        pair_start = time.perf_counter()
        for n in range(size):
            install = installs[n // CALLS_PER_INSTALLATION]
            started = time.perf_counter()
            token = http.post(
                "/api/v1/platform/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "tenant_id": install["tenant_id"],
                    "installation_id": install["installation_id"],
                },
                auth=(install["client_id"], install["client_secret"]),
            )
            if token.status_code != 200:
                errors += 1
                continue
            answer = http.get(
                HOUSES_PATH,
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            pair_ms.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                errors += 1
            else:
                items = len(answer.json()["items"])
        pair_seconds = time.perf_counter() - pair_start
    pair_ms.sort()
    health_ms.sort()

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0

    return {
        "pair_p50": statistics.median(pair_ms) if pair_ms else 0.0,
        "pair_p99": p(pair_ms, 0.99),
        "pair_rate": len(pair_ms) / pair_seconds if pair_seconds else 0.0,
        "pair_seconds": pair_seconds,
        "health_p99": p(health_ms, 0.99),
        "health_rate": size / health_seconds if health_seconds else 0.0,
        "errors": errors,
        "items": items,
    }


def run(size: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.migrate import upgrade

    settings = get_settings()
    _log("database: migrating")
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    installations = max(1, -(-size // CALLS_PER_INSTALLATION))
    _log(f"seeding {installations} compan(y/ies) with the app installed")
    installs = asyncio.run(seed(installations))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as scratch:
        log_path = Path(scratch) / "server.log"
        server = start_server(port, 1, log_path)
        try:
            wait_ready(base, server)
            _log(f"measuring {size} token + call pairs")
            figures = measure(base, installs, size)
        except Exception:
            _log(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    rate, limit_rate = figures["pair_rate"], figures["health_rate"]
    return {
        "name": "api-token",
        "size": size,
        "seconds": round(figures["pair_seconds"], 2),
        "rate": round(rate, 1),
        "unit": "token+call pairs/s (one connection, sequential)",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4) if limit_rate else 0.0,
        "p50_ms": round(figures["pair_p50"], 2),
        "p99_ms": round(figures["pair_p99"], 2),
        "limit_p99_ms": round(figures["health_p99"], 2),
        "checks": {
            "errors": figures["errors"],
            "items_per_page": figures["items"],
            "p99_under_30ms": figures["pair_p99"] < P99_TARGET_MS,
        },
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=500, help="token + call pairs")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = run(args.size)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"p99 {result['p99_ms']} ms (target < {P99_TARGET_MS:g} ms)", file=sys.stderr)


if __name__ == "__main__":
    main()

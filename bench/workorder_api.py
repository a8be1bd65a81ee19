"""Benchmark ``workorder-api``: the life of a work order through the API, 50 clients at once.

Starts the app server (as ``api-read`` does: uvicorn, production-like) against the
configured database, seeds a company with one community, houses, a repair category
and ``--technicians`` technicians covered by a routing rule, signs the front desk and
every technician in through ``POST /api/v1/auth/staff/token``, then runs
``--clients`` concurrent clients until ``--size`` orders are done. Each order is four
requests, each timed:

1. ``POST /api/v1/workorders/orders`` (front desk, a call: SLA computed in working time);
2. ``POST /api/v1/workorders/orders/{id}/assign`` with no technician: auto-dispatch by
   routing rule and open load;
3. ``POST .../accept`` and 4. ``POST .../finish`` as the technician it went to.

The clients speak HTTP/1.1 keep-alive on plain asyncio streams (:class:`_Connection`):
the load generator shares the 2 cores with the server and PostgreSQL, and httpx spent
about 2.5 times the server's CPU per request, so the benchmark measured its own client.

``limit_rate`` / ``limit_p99_ms``: the same server's ``GET /healthz`` with the same
number of connections, in the same run. ``checks`` counts errors and reads the database
afterwards: every order finished, with four timeline events.

    python bench/workorder_api.py [--size 2000] [--clients 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

P99_LIMIT_MS = 100.0
HERE = Path(__file__).resolve().parent


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _api_read() -> Any:
    spec = importlib.util.spec_from_file_location("bench_api_read", HERE / "api_read.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def seed(technicians: int) -> dict[str, Any]:
    from linli.auth import service as auth_service
    from linli.auth.actor import Actor
    from linli.auth.permissions import Role
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.estate import service as estate
    from linli.estate.rows import HouseRow
    from linli.tenancy import service as tenancy
    from linli.workorders import service as workorders
    from linli.workorders.models import OrderKind

    slug = f"bench-wo-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    try:
        async with unit_of_work() as session:
            tenant = await tenancy.create_tenant(
                session,
                Actor.system(),
                slug=slug,
                name="基准测试物业 (workorder-api)",
                admin_username="admin",
                admin_display_name="管理员",
                admin_password=password,
            )
            tenant_id = tenant.id
        system = Actor.system(tenant_id)
        async with unit_of_work(tenant_id) as session:
            community = await tenancy.create_community(
                session, system, code="WO1", name="工单基准小区"
            )
            from decimal import Decimal

            await estate.upsert_houses(
                session,
                system,
                rows=[
                    HouseRow(
                        community_code="WO1",
                        building_no=str(b),
                        unit_no="1",
                        house_no=f"{f}01",
                        floor=f,
                        building_area=Decimal("90.00"),
                    )
                    for b in range(1, 6)
                    for f in range(1, 21)
                ],
            )
            category = await workorders.create_category(
                session, system, community_id=community.id, name="水电维修", kind=OrderKind.REPAIR
            )
            desk = await auth_service.create_staff(
                session,
                system,
                username="desk",
                display_name="前台",
                password=password,
                roles=[Role.FRONT_DESK],
                all_communities=False,
                community_ids=[community.id],
            )
            techs = []
            for n in range(technicians):
                tech = await auth_service.create_staff(
                    session,
                    system,
                    username=f"tech{n}",
                    display_name=f"维修{n}",
                    password=password,
                    roles=[Role.TECHNICIAN],
                    all_communities=False,
                    community_ids=[community.id],
                )
                await workorders.add_coverage(
                    session, system, technician_id=tech.id, community_id=community.id
                )
                techs.append((f"tech{n}", tech.id))
        return {
            "slug": slug,
            "password": password,
            "tenant_id": tenant_id,
            "community_id": str(community.id),
            "category_id": str(category.id),
            "desk": desk.id,
            "technicians": techs,
        }
    finally:
        await dispose_engine()


class _Connection:
    """One keep-alive HTTP/1.1 connection, JSON in and out, as lean as the server's side.

    httpx costs the load generator about as much CPU per request as the whole
    request costs the server; on a 2-core machine shared with the server and the
    database that would measure the client. This speaks the same wire protocol
    with a fraction of the work: one write per request, the head read up to its
    blank line, the body by its Content-Length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, bytes]:
        import orjson

        payload = b"" if body is None else orjson.dumps(body)
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        reader, writer = await self._open()
        writer.write(request)
        raw = await reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        closing = False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        data = await reader.readexactly(length) if length else b""
        if closing:
            self.close()
        return status, data


async def drive(
    base: str,
    size: int,
    clients: int,
    desk_token: str,
    tech_tokens: dict[str, str],
    seeded: dict[str, Any],
) -> dict[str, Any]:
    from urllib.parse import urlsplit

    import orjson

    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: dict[str, list[float]] = {"create": [], "assign": [], "accept": [], "finish": []}
    errors: list[str] = []
    retries: list[str] = []
    remaining = iter(range(size))
    run_id = secrets.token_hex(4)
    desk = {"Authorization": f"Bearer {desk_token}"}

    async def timed(
        http: _Connection, step: str, url: str, headers: dict[str, str], body: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            status, data = await http.post(url, headers, body)
        except (OSError, asyncio.IncompleteReadError):
            # A keep-alive connection the server closed just as it was reused: the
            # request never reached a handler. Retried once on a new connection
            # (creates carry an Idempotency-Key, so a retry cannot make a second order).
            retries.append(step)
            http.close()
            status, data = await http.post(url, headers, body)
        latencies[step].append((time.perf_counter() - started) * 1000)
        if status not in (200, 201):
            errors.append(f"{step}: {status} {data[:120].decode(errors='replace')}")
            return None
        return orjson.loads(data)

    async def client() -> None:
        http = _Connection(host, port)
        try:
            for n in remaining:
                order = await timed(
                    http,
                    "create",
                    "/api/v1/workorders/orders",
                    {**desk, "Idempotency-Key": f"bench-{run_id}-{n}"},
                    {
                        "community_id": seeded["community_id"],
                        "category_id": seeded["category_id"],
                        "description": f"基准报修 {n}",
                        "location": f"{n % 5 + 1}栋大堂",
                        "auto_assign": False,
                    },
                )
                if order is None:
                    continue
                url = f"/api/v1/workorders/orders/{order['id']}"
                assigned = await timed(http, "assign", f"{url}/assign", desk, {})
                if assigned is None:
                    continue
                tech = {"Authorization": f"Bearer {tech_tokens[assigned['assignee_id']]}"}
                if await timed(http, "accept", f"{url}/accept", tech, None) is None:
                    continue
                await timed(http, "finish", f"{url}/finish", tech, {"note": "完工"})
        finally:
            http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    every = [ms for values in latencies.values() for ms in values]
    return {
        "seconds": elapsed,
        "requests": len(every),
        "p50_ms": statistics.median(every) if every else 0.0,
        "p99_ms": _percentile(every, 0.99),
        "per_step_p99_ms": {k: round(_percentile(v, 0.99), 2) for k, v in latencies.items()},
        "errors": errors,
        "retries": len(retries),
    }


async def verify(tenant_id: uuid.UUID) -> dict[str, int]:
    from sqlalchemy import func, select

    from linli.db.engine import dispose_engine, unit_of_work
    from linli.workorders.models import OrderStatus, WorkOrder, WorkOrderEvent

    try:
        async with unit_of_work(tenant_id) as session:
            finished = await session.scalar(
                select(func.count()).where(WorkOrder.status == OrderStatus.FINISHED)
            )
            events = await session.scalar(select(func.count()).select_from(WorkOrderEvent))
            measured = await session.scalar(
                select(func.count()).where(WorkOrder.completion_minutes.is_not(None))
            )
        return {
            "finished": int(finished or 0),
            "events": int(events or 0),
            "measured": int(measured or 0),
        }
    finally:
        await dispose_engine()


def run(size: int, clients: int, technicians: int, workers: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.migrate import upgrade

    api = _api_read()
    settings = get_settings()
    _log("database: migrating")
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    _log(f"seeding a company with {technicians} technicians")
    seeded = asyncio.run(seed(technicians))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as scratch:
        log_path = Path(scratch) / "server.log"
        server = api.start_server(port, workers, log_path)
        try:
            api.wait_ready(base, server)
            desk_token, _ = api.sign_in(base, seeded["slug"], "desk", seeded["password"])
            tech_tokens = {
                str(tech_id): api.sign_in(base, seeded["slug"], login, seeded["password"])[0]
                for login, tech_id in seeded["technicians"]
            }
            _log(f"healthz: {clients} connections, 5 s (the limit)")
            health = api.load(base + "/healthz", None, max(clients, 2), 5.0)
            _log("warm-up: 50 orders")
            asyncio.run(drive(base, 50, min(clients, 10), desk_token, tech_tokens, seeded))
            _log(f"load: {size} orders, {clients} clients, 4 requests each")
            result = asyncio.run(drive(base, size, clients, desk_token, tech_tokens, seeded))
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
    checks = asyncio.run(verify(seeded["tenant_id"]))
    rate = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    limit_rate = health["rate"]
    return {
        "name": "workorder-api",
        "size": size,
        "seconds": round(result["seconds"], 2),
        "rate": round(rate, 1),
        "unit": "requests/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4) if limit_rate else 0.0,
        "p50_ms": round(result["p50_ms"], 2),
        "p99_ms": round(result["p99_ms"], 2),
        "limit_p99_ms": round(health["p99_ms"], 2),
        "checks": {
            "errors": len(result["errors"]),
            "transport_retries": result["retries"],
            "first_errors": result["errors"][:3],
            "orders_finished": checks["finished"] - 50,  # minus the warm-up
            "expected_orders": size,
            "timeline_events": checks["events"],
            "expected_events": (size + 50) * 4,
            "completion_measured": checks["measured"],
            "p99_under_100ms": result["p99_ms"] < P99_LIMIT_MS,
        },
        "per_step_p99_ms": result["per_step_p99_ms"],
        "orders_per_s": round(size / result["seconds"], 1) if result["seconds"] else 0.0,
        "clients": clients,
        "server_workers": workers,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=2000, help="orders taken through their life")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--technicians", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = run(args.size, args.clients, args.technicians, args.workers)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{result['rate']} req/s (healthz {result['limit_rate']}), "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

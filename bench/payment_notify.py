"""Benchmark ``payment-notify``: WeChat Pay notifications posted to the running app, each
order settled exactly once.

Starts the app server (uvicorn, as ``api-read`` does) against the configured database,
seeds one company with a community, ``--houses`` houses, a WeChat Pay merchant account
(keys generated here, as the sandbox does) and ``--size`` open payment orders (prepaid
top-ups, each with billing's pending receipt; seeded set-based, not measured). Then it
builds one genuine notification per order (SHA256-RSA2048 signed with the platform key,
resource AEAD_AES_256_GCM-encrypted with the APIv3 key), adds 30 % duplicates (the same
delivery again, as WeChat Pay retries carry the same id), shuffles them (out of order,
duplicates may arrive before or together with their first delivery) and posts them with
``--clients`` concurrent keep-alive connections over loopback.

``rate``: notifications answered per second (verified, decrypted, deduplicated, order
settled: receipt numbered, prepaid credited, journal posted), duplicates included.

``limit_rate``: the same server, same connections, same notifications posted to
``/notify/wechatpay/{id}/verify``, which finds the merchant account, verifies the
signature and decrypts the resource, and stops (served only with
``LINLI_PAYMENTS_BENCH_VERIFY_ENDPOINT=true``, set for this server). Measured after the
main run, so it reads the same tables.

``checks`` reads the database afterwards: ``double_posted`` (orders with more than one
payment entry or receipt number), ``lost`` (orders not paid), ledger balanced, scan
clearing equal to the sum of the orders, answers that were not 204.

    python bench/payment_notify.py [--size 20000] [--clients 50] [--json]
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DUPLICATES = 0.30


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


async def seed(size: int, houses: int) -> dict[str, Any]:
    from decimal import Decimal

    from sqlalchemy import select, text

    from linli.auth.actor import Actor
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.estate import service as estate
    from linli.estate.models import House
    from linli.estate.rows import HouseRow
    from linli.payments import service
    from linli.payments.sandbox.wechatpay import generate_keys
    from linli.tenancy import service as tenancy

    sandbox, ours = generate_keys()
    slug = f"bench-pay-{secrets.token_hex(4)}"
    try:
        async with unit_of_work() as session:
            tenant = await tenancy.create_tenant(
                session,
                Actor.system(),
                slug=slug,
                name="基准测试物业 (payment-notify)",
                admin_username="admin",
                admin_display_name="管理员",
                admin_password=secrets.token_urlsafe(16),
            )
            tenant_id = tenant.id
        system = Actor.system(tenant_id)
        async with unit_of_work(tenant_id) as session:
            community = await tenancy.create_community(
                session, system, code="PAY1", name="支付基准小区"
            )
            await estate.upsert_houses(
                session,
                system,
                rows=[
                    HouseRow(
                        community_code="PAY1",
                        building_no=str(n // 400 + 1),
                        unit_no="1",
                        house_no=f"{n % 400 + 1:04d}",
                        floor=1,
                        building_area=Decimal("90.00"),
                    )
                    for n in range(houses)
                ],
            )
            house_ids = list((await session.scalars(select(House.id))).all())
            account = await service.create_merchant_account(
                session,
                system,
                community_id=community.id,
                provider_name="wechatpay",
                config=ours.to_storage(),
                name="bench",
            )
            account_id = account.id
        orders: list[tuple[str, int]] = []
        chunk = 5000
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            receipt_ids = [uuid.uuid4() for _ in range(n)]
            order_ids = [uuid.uuid4() for _ in range(n)]
            trade_nos = [uuid.uuid4().hex for _ in range(n)]
            amounts = [1000 + (start + i) % 997 for i in range(n)]
            homes = [house_ids[(start + i) % len(house_ids)] for i in range(n)]
            async with unit_of_work(tenant_id) as session:
                params = {
                    "tenant": tenant_id,
                    "community": community.id,
                    "account": account_id,
                    "receipts": receipt_ids,
                    "orders": order_ids,
                    "nos": trade_nos,
                    "amounts": amounts,
                    "houses": homes,
                    "tender_ids": [uuid.uuid4() for _ in range(n)],
                    "line_ids": [uuid.uuid4() for _ in range(n)],
                    "creator": uuid.UUID(int=0),
                }
                await session.execute(
                    text(
                        "INSERT INTO receipts (tenant_id, id, community_id, house_id, status,"
                        " amount_cents, allocated_cents, discount_cents, to_prepaid_cents,"
                        " payer_name, void_reason, allocation_plan, created_at)"
                        " SELECT :tenant, r, :community, h, 'pending', a, 0, 0, 0, '', '',"
                        ' \'{"bill_ids": [], "use_prepaid_cents": 0}\'::jsonb, now()'
                        " FROM unnest(CAST(:receipts AS uuid[]), CAST(:houses AS uuid[]),"
                        " CAST(:amounts AS bigint[])) AS x(r, h, a)"
                    ),
                    params,
                )
                await session.execute(
                    text(
                        "INSERT INTO receipt_tenders (tenant_id, id, receipt_id, method,"
                        " amount_cents, reference, confirmed, created_at)"
                        " SELECT :tenant, t, r, 'scan', a, n, false, now()"
                        " FROM unnest(CAST(:tender_ids AS uuid[]), CAST(:receipts AS uuid[]),"
                        " CAST(:amounts AS bigint[]), CAST(:nos AS varchar[])) AS x(t, r, a, n)"
                    ),
                    params,
                )
                await session.execute(
                    text(
                        "INSERT INTO payment_orders (tenant_id, id, community_id, house_id,"
                        " merchant_account_id, receipt_id, provider, channel, purpose,"
                        " out_trade_no, description, amount_cents, status, posting, expires_at,"
                        " prepay, provider_trade_no, paid_cents, refunded_cents, failure,"
                        " created_by_kind, created_by, updated_at, created_at)"
                        " SELECT :tenant, o, :community, h, :account, r, 'wechatpay', 'native',"
                        " 'top_up', n, '物业费预存', a, 'paying', 'none',"
                        " now() + interval '1 day', '{}'::jsonb, '', 0, 0, '', 'system',"
                        " :creator, now(), now()"
                        " FROM unnest(CAST(:orders AS uuid[]), CAST(:houses AS uuid[]),"
                        " CAST(:receipts AS uuid[]), CAST(:nos AS varchar[]),"
                        " CAST(:amounts AS bigint[])) AS x(o, h, r, n, a)"
                    ),
                    params,
                )
                await session.execute(
                    text(
                        "INSERT INTO payment_order_lines (tenant_id, id, order_id, kind,"
                        " amount_cents, created_at)"
                        " SELECT :tenant, l, o, 'top_up', a, now()"
                        " FROM unnest(CAST(:line_ids AS uuid[]), CAST(:orders AS uuid[]),"
                        " CAST(:amounts AS bigint[])) AS x(l, o, a)"
                    ),
                    params,
                )
            orders += list(zip(trade_nos, amounts, strict=True))
        return {
            "tenant_id": tenant_id,
            "account_id": account_id,
            "platform": sandbox.platform,
            "mchid": ours.mchid,
            "appid": ours.appid,
            "apiv3_key": ours.apiv3_key.get_secret_value(),
            "orders": orders,
        }
    finally:
        await dispose_engine()


def notifications(seeded: dict[str, Any]) -> list[tuple[dict[str, str], bytes]]:
    """One genuine notification per order, 30 % delivered twice, shuffled."""
    from linli.payments.sandbox.wechatpay import build_notification

    built = []
    for n, (out_trade_no, cents) in enumerate(seeded["orders"]):
        resource = {
            "appid": seeded["appid"],
            "mchid": seeded["mchid"],
            "out_trade_no": out_trade_no,
            "transaction_id": f"4200{n:024d}",
            "trade_type": "NATIVE",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": time.strftime(
                "%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600)
            ),
            "payer": {"openid": "oBench" + secrets.token_hex(8)},
            "amount": {
                "total": cents,
                "payer_total": cents,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
        built.append(
            build_notification(
                seeded["platform"],
                seeded["apiv3_key"],
                event_type="TRANSACTION.SUCCESS",
                resource=resource,
            )
        )
    rng = random.Random(7)
    deliveries = built + rng.sample(built, int(len(built) * DUPLICATES))
    rng.shuffle(deliveries)
    return deliveries


async def post_all(
    url: str, deliveries: list[tuple[dict[str, str], bytes]], clients: int
) -> dict[str, Any]:
    import httpx

    statuses: dict[int, int] = {}
    transport_errors = 0
    queue = iter(deliveries)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal transport_errors
        for headers, body in queue:
            for attempt in range(3):
                try:
                    response = await http.post(url, headers=headers, content=body)
                    break
                except httpx.TransportError:
                    transport_errors += 1  # retried, as WeChat Pay would
                    if attempt == 2:
                        raise
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "statuses": statuses, "transport_retries": transport_errors}


async def verify(tenant_id: uuid.UUID, orders: int, expected_cents: int) -> dict[str, Any]:
    from sqlalchemy import text

    from linli.db.engine import dispose_engine, unit_of_work

    try:
        async with unit_of_work(tenant_id) as session:
            row = (
                await session.execute(
                    text(
                        "SELECT"
                        " (SELECT count(*) FROM payment_orders WHERE status <> 'paid'),"
                        " (SELECT count(*) FROM payment_orders WHERE posting <> 'posted'),"
                        " (SELECT count(*) FROM (SELECT source_id FROM journal_entries"
                        "   WHERE kind = 'payment' GROUP BY source_id HAVING count(*) > 1) d),"
                        " (SELECT count(*) FROM journal_entries WHERE kind = 'payment'),"
                        " (SELECT count(*) FROM receipts WHERE receipt_no IS NOT NULL),"
                        " (SELECT count(DISTINCT receipt_no) FROM receipts"
                        "   WHERE receipt_no IS NOT NULL),"
                        " (SELECT coalesce(sum(debit_cents), 0) - coalesce(sum(credit_cents), 0)"
                        "   FROM journal_lines),"
                        " (SELECT coalesce(sum(debit_cents - credit_cents), 0) FROM journal_lines"
                        "   WHERE account = 'scan_clearing'),"
                        " (SELECT count(*) FROM payment_exceptions)"
                    )
                )
            ).one()
        not_paid, not_posted, doubled, entries, numbered, distinct_nos, imbalance, scan, flagged = (
            int(v) for v in row
        )
        return {
            "lost": not_paid,
            "not_posted": not_posted,
            # an order posted twice shows as two payment entries of one receipt, or more
            # entries / numbered receipts than orders
            "double_posted": max(doubled, entries - orders, numbered - orders, 0),
            "payment_entries": entries,
            "receipts_numbered": numbered,
            "receipt_numbers_unique": numbered == distinct_nos,
            "ledger_balanced": imbalance == 0,
            "scan_clearing_matches": scan == expected_cents,
            "exceptions": flagged,
        }
    finally:
        await dispose_engine()


def run(size: int, clients: int, houses: int, workers: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.migrate import upgrade

    api = _api_read()
    settings = get_settings()
    _log("database: migrating")
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    _log(f"seeding a company with {houses} houses and {size} open orders")
    seeded = asyncio.run(seed(size, min(houses, size)))
    expected_cents = sum(cents for _, cents in seeded["orders"])
    _log("signing and encrypting the notifications")
    cpu = time.process_time()
    deliveries = notifications(seeded)
    build_cpu_ms = (time.process_time() - cpu) * 1000 / max(len(deliveries), 1)
    os.environ["LINLI_PAYMENTS_BENCH_VERIFY_ENDPOINT"] = "true"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    path = f"/api/v1/payments/notify/wechatpay/{seeded['account_id']}"
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as scratch:
        log_path = Path(scratch) / "server.log"
        server = api.start_server(port, workers, log_path)
        try:
            api.wait_ready(base, server)
            _log(f"load: {len(deliveries)} notifications ({size} orders), {clients} clients")
            result = asyncio.run(post_all(base + path, deliveries, clients))
            _log("limit: the same notifications to the verify-only endpoint")
            limit = asyncio.run(post_all(base + path + "/verify", deliveries, clients))
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
    checks = asyncio.run(verify(seeded["tenant_id"], size, expected_cents))
    rate = len(deliveries) / result["seconds"] if result["seconds"] else 0.0
    limit_rate = len(deliveries) / limit["seconds"] if limit["seconds"] else 0.0
    return {
        "name": "payment-notify",
        "size": size,
        "seconds": round(result["seconds"], 2),
        "rate": round(rate, 1),
        "unit": "notifications/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4) if limit_rate else 0.0,
        "checks": {
            **checks,
            "answers": result["statuses"],
            "not_accepted": sum(n for code, n in result["statuses"].items() if code != 204),
            "limit_answers": limit["statuses"],
            "transport_retries": result["transport_retries"],
            "expected_orders": size,
        },
        "deliveries": len(deliveries),
        "duplicates": len(deliveries) - size,
        "client_build_cpu_ms_per_notification": round(build_cpu_ms, 3),
        "clients": clients,
        "server_workers": workers,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=20000, help="orders (one payment each)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--houses", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = run(args.size, args.clients, args.houses, args.workers)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{result['rate']} notifications/s (verify only {result['limit_rate']}),"
            f" double_posted {result['checks']['double_posted']}, lost {result['checks']['lost']}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

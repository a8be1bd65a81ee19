"""Benchmark ``billing-run``: bills of one month for ``--size`` houses (物业费 per m²), issued
by the billing-run job (chunked ``INSERT ... SELECT`` with price proration, natural-key
``ON CONFLICT``, ledger posting and progress) community by community.

``limit_rate`` is a raw ``INSERT ... SELECT`` of rows of the same shape (same columns,
same id expression, same area × price arithmetic) into the same ``bills`` table, for
another month, in the same run — measured first, then deleted (and the table vacuumed)
so that the run writes into the table in the same state.

    python bench/billing_run.py [--size 1000000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import sys
import time
from decimal import Decimal
from typing import Any

RAW_INSERT = """
INSERT INTO bills (tenant_id, id, community_id, building_id, house_id, fee_item_id, subject_id,
                   run_id, period_start, period_end, due_on, quantity, amount_cents,
                   settled_cents, late_fee_waived, created_at)
SELECT h.tenant_id, {id_expression}, h.community_id, h.building_id, h.id, fi.id, h.id, NULL,
       DATE '2000-01-01', DATE '2000-02-01', DATE '2000-01-16', h.building_area,
       round(h.building_area * 250)::bigint, 0, false, now()
FROM houses h JOIN fee_items fi ON fi.tenant_id = h.tenant_id AND fi.community_id = h.community_id
"""


async def run(size: int) -> dict[str, Any]:
    import psycopg
    from sqlalchemy import func, select, text

    from linli.auth.actor import Actor
    from linli.billing import reports, runs, service
    from linli.billing.models import Bill, FeeKind
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.db.migrate import upgrade
    from linli.estate import seed
    from linli.tenancy import service as tenancy_service
    from linli.tenancy.models import Community

    owner = owner_dsn(get_settings())
    upgrade(owner)
    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="出账基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
    print(f"seeding {size} houses", file=sys.stderr)
    report = await seed.seed_houses(tenant_id=tenant.id, houses=size, seed=7)
    system = Actor.system(tenant.id)
    async with unit_of_work(tenant.id) as session:
        communities = list((await session.scalars(select(Community.id))).all())
        for community_id in communities:
            item = await service.create_fee_item(
                session,
                system,
                community_id=community_id,
                code="WYF",
                name="物业费",
                kind=FeeKind.AREA,
                due_days=15,
            )
            await service.add_price(
                session,
                system,
                fee_item_id=item.id,
                effective_from=dt.date(2020, 1, 1),
                unit_price=Decimal(250),
            )
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE houses, bills, fee_items, fee_prices")

    print("raw INSERT ... SELECT (limit)", file=sys.stderr)
    async with unit_of_work(tenant.id) as session:
        begun = time.perf_counter()
        raw = await session.execute(text(RAW_INSERT.format(id_expression=runs.ID_EXPRESSION)))
    limit_seconds = time.perf_counter() - begun
    raw_rows = raw.rowcount
    # Take the raw rows out again so the run starts from the same (empty) table the raw
    # insert started from: index sizes then match, and neither side is measured against a
    # table twice the size of the other's.
    async with unit_of_work(tenant.id) as session:
        await session.execute(text("DELETE FROM bills WHERE period_start = DATE '2000-01-01'"))
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE bills")

    print("billing runs", file=sys.stderr)
    period = dt.date(2026, 3, 1)
    started = time.perf_counter()
    run_ids = []
    for community_id in communities:
        async with unit_of_work(tenant.id) as session:
            billing_run, _ = await service.start_run(
                session, system, community_id=community_id, period=period
            )
        run_ids.append(billing_run.id)
        await service.run_job(tenant.id, billing_run.id)
    seconds = time.perf_counter() - started

    async with unit_of_work(tenant.id) as session:
        issued, total = (
            await session.execute(
                select(func.count(), func.sum(Bill.amount_cents)).where(Bill.period_start == period)
            )
        ).one()
        distinct = await session.scalar(
            select(func.count(func.distinct(Bill.house_id))).where(Bill.period_start == period)
        )
        balance = await reports.trial_balance(session, system)
    again = 0
    for run_id in run_ids[:3]:  # re-running issued runs creates nothing
        await service.run_job(tenant.id, run_id)
    async with unit_of_work(tenant.id) as session:
        again = (
            await session.scalar(
                select(func.count()).select_from(Bill).where(Bill.period_start == period)
            )
            or 0
        ) - issued
    await dispose_engine()
    rate = issued / seconds
    limit_rate = raw_rows / limit_seconds
    return {
        "name": "billing-run",
        "size": report.houses,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "bills/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "checks": {
            "bills": int(issued),
            "missing_houses": report.houses - int(distinct),
            "duplicates": int(issued) - int(distinct),
            "created_on_rerun": int(again),
            "ledger_revenue_equals_bills": balance.get("revenue", (0, 0))[1] == int(total),
            "communities": len(communities),
            "raw_rows": raw_rows,
            "limit_seconds": round(limit_seconds, 3),
            "seed_seconds": round(report.seconds, 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="houses")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.size))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{result['rate']:.0f} bills/s, ratio {result['ratio']} to raw INSERT ... SELECT",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

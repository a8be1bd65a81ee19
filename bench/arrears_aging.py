"""Benchmark ``arrears-aging``: arrears aging (0–30, 31–90, 91–180, 180+ days) over the open
bills of ``--size`` houses, per community, per building and per house (top 200), each one
SQL query through the service, as company-wide staff.

Each house gets four months of bills (four runs), a quarter of them then partly paid
set-based. ``limit_rate`` is a plain scan-and-sum of the same open bills
(``SELECT count(*), sum(amount - settled) ... WHERE settled < amount``) in the same run.

    python bench/arrears_aging.py [--size 1000000] [--tenant SLUG] [--json]

``--tenant`` (or ``LINLI_BENCH_TENANT``, for ``linli bench``) ages an existing company's
bills instead of seeding one, e.g. the company ``bench/billing_run.py`` just filled.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import time
from decimal import Decimal
from typing import Any


async def _fill(size: int, today: dt.date) -> tuple[Any, int]:
    """A company of ``size`` houses with four months of bills, a quarter of them half paid."""
    import psycopg
    from sqlalchemy import select, text

    from linli.auth.actor import Actor
    from linli.billing import service
    from linli.billing.models import FeeKind
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import unit_of_work
    from linli.estate import seed
    from linli.tenancy import service as tenancy_service
    from linli.tenancy.models import Community

    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="账龄基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
    print(f"seeding {size} houses", file=sys.stderr)
    report = await seed.seed_houses(tenant_id=tenant.id, houses=size, seed=13)
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
    months = [
        (today.replace(day=1) - dt.timedelta(days=31 * k)).replace(day=1) for k in (0, 2, 5, 8)
    ]
    print("issuing bills", file=sys.stderr)
    for period in months:
        for community_id in communities:
            async with unit_of_work(tenant.id) as session:
                billing_run, _ = await service.start_run(
                    session, system, community_id=community_id, period=period
                )
            await service.run_job(tenant.id, billing_run.id)
    async with unit_of_work(tenant.id) as session:
        # Part payments without receipts: only the aging input matters here.
        await session.execute(
            text(
                "UPDATE bills SET settled_cents = amount_cents / 2 WHERE hashtext(id::text) % 4 = 0"
            )
        )
    with psycopg.connect(owner_dsn(get_settings()), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE bills")
    return tenant, report.houses


async def run(size: int, repeats: int, tenant_slug: str | None = None) -> dict[str, Any]:
    from sqlalchemy import text

    from linli.auth.actor import Actor
    from linli.billing import reports, service
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.db.migrate import upgrade
    from linli.tenancy import service as tenancy_service

    owner = owner_dsn(get_settings())
    upgrade(owner)
    today = service.today()
    if tenant_slug:
        # An existing company with its bills (e.g. the one bench/billing_run.py filled).
        async with unit_of_work() as session:
            tenant = await tenancy_service.get_tenant_by_slug(session, tenant_slug)
        if tenant is None:
            raise SystemExit(f"no company {tenant_slug!r}")
        async with unit_of_work(tenant.id) as session:
            houses = int(await session.scalar(text("SELECT count(*) FROM houses")) or 0)
    else:
        tenant, houses = await _fill(size, today)
    actor = Actor.staff(
        id=tenant.id,
        tenant_id=tenant.id,
        roles=frozenset({"finance"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(tenant.id) as session:
        biggest = await session.scalar(
            text("SELECT community_id FROM houses GROUP BY community_id ORDER BY count(*) DESC")
        )
    # Company-wide per community and per building; per house (top 200 debtors) within one
    # community, as the console asks for it. The company-wide house ranking is reported too.
    plans = {
        "community": (reports.AgingLevel.COMMUNITY, None),
        "building": (reports.AgingLevel.BUILDING, None),
        "house_in_community": (reports.AgingLevel.HOUSE, biggest),
        "house_company_wide": (reports.AgingLevel.HOUSE, None),
    }
    timings: dict[str, list[float]] = {name: [] for name in plans}
    rows_seen: dict[str, int] = {}
    for _ in range(repeats):
        for name, (level, community_id) in plans.items():
            begun = time.perf_counter()
            async with unit_of_work(tenant.id) as session:
                rows = await reports.arrears_aging(
                    session, actor, level=level, community_id=community_id, as_of=today
                )
            timings[name].append(time.perf_counter() - begun)
            rows_seen[name] = len(rows)
    limit: list[float] = []
    open_bills = 0
    for _ in range(repeats):
        begun = time.perf_counter()
        async with unit_of_work(tenant.id) as session:
            open_bills, _total = (
                await session.execute(
                    text(
                        "SELECT count(*), sum(amount_cents - settled_cents) FROM bills"
                        " WHERE settled_cents < amount_cents"
                    )
                )
            ).one()
        limit.append(time.perf_counter() - begun)
    await dispose_engine()
    median = {name: statistics.median(values) for name, values in timings.items()}
    worst = max(max(timings[name]) for name in ("community", "building", "house_in_community"))
    seconds = median["building"]
    limit_seconds = statistics.median(limit)
    return {
        "name": "arrears-aging",
        "size": houses,
        "seconds": round(seconds, 3),
        "rate": round(int(open_bills) / seconds, 1),
        "unit": "open bills aged/s",
        "limit_rate": round(int(open_bills) / limit_seconds, 1),
        "ratio": round(limit_seconds / seconds, 4),
        "checks": {
            "open_bills": int(open_bills),
            **{f"{name}_s": round(value, 3) for name, value in median.items()},
            "worst_s": round(worst, 3),
            "under_2s": worst < 2.0,
            "rows": rows_seen,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="houses")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tenant",
        default=os.environ.get("LINLI_BENCH_TENANT") or None,
        help="age an existing company's bills instead of seeding (or LINLI_BENCH_TENANT)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.size, args.repeats, args.tenant))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"aging in {result['checks']['worst_s']} s at worst", file=sys.stderr)


if __name__ == "__main__":
    main()

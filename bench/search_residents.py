"""Benchmark ``search-residents``: console search of a resident by exact phone (blind index)
and by name prefix among ``--size`` residents of one company, through the service and a
real unit of work (tenant set, RLS on), as company-wide staff.

Reports p50 / p99 in ms; ``limit_p99_ms`` and ``limit_rate`` come from the same
number of primary-key lookups of a resident through the same path: the floor
any search can reach here.

    python bench/search_residents.py [--size 1000000] [--queries 2000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import sys
import time
from typing import Any


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(size: int, queries: int) -> dict[str, Any]:
    import psycopg
    from sqlalchemy import select

    from linli.auth.actor import Actor
    from linli.auth.models import StaffUser
    from linli.config import get_settings
    from linli.core import crypto
    from linli.core.pagination import PageParams
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.db.migrate import upgrade
    from linli.estate import seed
    from linli.residents import service
    from linli.residents.models import Resident
    from linli.tenancy import service as tenancy_service

    settings = get_settings()
    owner = owner_dsn(settings)
    upgrade(owner)
    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="搜索基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
        admin_id = (
            await session.scalars(select(StaffUser.id).where(StaffUser.tenant_id == tenant.id))
        ).one()
    # About 2 residents per house in the generator.
    report = await seed.seed_houses(tenant_id=tenant.id, houses=max(1000, size * 10 // 21), seed=3)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("ANALYZE residents, resident_houses")
    actor = Actor.staff(
        id=admin_id,
        tenant_id=tenant.id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    rng = random.Random(5)
    async with unit_of_work(tenant.id) as session:
        sample = (
            await session.execute(
                select(Resident.id, Resident.phone_enc, Resident.name)
                .where(Resident.phone_enc.is_not(None))
                .order_by(Resident.id)
                .limit(5000)
            )
        ).all()
    phones = [crypto.decrypt(enc) for _, enc, _ in sample]
    prefixes = [name[: rng.choice((1, 2))] for _, _, name in sample]
    ids = [rid for rid, _, _ in sample]
    page = PageParams(limit=20)

    async def timed(search: service.ResidentSearch) -> tuple[float, int]:
        started = time.perf_counter()
        async with unit_of_work(tenant.id) as session:
            rows, _ = await service.search_residents(session, actor, search=search, page=page)
        return (time.perf_counter() - started) * 1000, len(rows)

    for _ in range(50):  # warm the pool and the caches
        await timed(service.ResidentSearch(phone=rng.choice(phones)))
    phone_ms, name_ms, misses = [], [], 0
    started = time.perf_counter()
    for i in range(queries):
        if i % 2 == 0:
            ms, found = await timed(service.ResidentSearch(phone=rng.choice(phones)))
            phone_ms.append(ms)
            misses += found != 1
        else:
            ms, found = await timed(service.ResidentSearch(name=rng.choice(prefixes)))
            name_ms.append(ms)
            misses += found == 0
    seconds = time.perf_counter() - started
    limit_ms = []
    for _ in range(queries):
        begun = time.perf_counter()
        async with unit_of_work(tenant.id) as session:
            await service.get_resident(session, actor, resident_id=rng.choice(ids))
        limit_ms.append((time.perf_counter() - begun) * 1000)
    await dispose_engine()
    all_ms = phone_ms + name_ms
    rate = queries / seconds
    limit_rate = queries / (sum(limit_ms) / 1000)
    return {
        "name": "search-residents",
        "size": report.residents,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "searches/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "p50_ms": round(statistics.median(all_ms), 2),
        "p99_ms": round(_percentile(all_ms, 0.99), 2),
        "limit_p99_ms": round(_percentile(limit_ms, 0.99), 2),
        "checks": {
            "phone_p99_ms": round(_percentile(phone_ms, 0.99), 2),
            "name_p99_ms": round(_percentile(name_ms, 0.99), 2),
            "misses": misses,
            "houses": report.houses,
            "seed_seconds": round(report.seconds, 1),
            "p99_under_50ms": _percentile(all_ms, 0.99) < 50,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="residents")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.size, args.queries))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"p99 {result['p99_ms']} ms over {result['size']} residents", file=sys.stderr)


if __name__ == "__main__":
    main()

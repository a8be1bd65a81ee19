"""Benchmark ``seed``: houses per second of ``linli.estate.seed.seed_houses`` (buildings, units,
houses, residents with encrypted phones / ID numbers, relations, vehicles, staff records).

``limit_rate`` is a raw ``COPY`` of rows of the same shape (pre-generated, already
encrypted) straight into the same tables as the owner role, in the same run, with as many
connections and as large batches as the seed, rolled back afterwards: what PostgreSQL alone
needs to take the rows in. It includes the portal's phone directory (``resident_companies``),
which the seed fills too, loaded the same way (once, in key order, a slice per connection).
``checks.timings`` splits the seed's time (``rows.*`` are summed over its connections).

    python bench/seed.py [--size 1000000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CONNECTIONS = 2  # loading connections, for the seed and for the raw COPY limit alike
BATCH_HOUSES = 25_000  # houses per transaction, likewise


async def _company(name: str) -> Any:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.tenancy import service as tenancy_service

    async with unit_of_work() as session:
        return await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name=name,
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )


def copy_limit(
    owner: str, tenant_id: str, plans: list[Any], batch_houses: int, connections: int
) -> tuple[float, int]:
    """Seconds to COPY pre-generated rows of ``plans`` into the real tables, then roll back."""
    import psycopg

    from linli.estate import seed

    batches = [
        seed.build_batch(tenant_id, group, 500_000_000 + i * 10_000_000, i)[0]
        for i, group in enumerate(seed.batches_of(plans, batch_houses))
    ]
    houses = sum(b.counts["houses"] for b in batches)
    # The seed also registers the company's phones for the portal sign-in (resident_companies),
    # once at the end, in key order, one slice of the key space per connection: the same rows
    # go into the limit the same way, taken from the residents' phone_hash column.
    directory = sorted(
        f"{fields[4]}\t{fields[0]}\n"
        for batch in batches
        for fields in (line.split("\t") for line in batch.tables["residents"].splitlines())
        if fields[4] != "\\N"
    )
    # COPY text of a digest is "\\x" + hex: its first byte is the two hex digits after that.
    slices = [
        "".join(r for r in directory if int(r[3:5], 16) * connections // 256 == i)
        for i in range(connections)
    ]

    def load(share: list[Any], conn: psycopg.Connection[Any]) -> None:
        for batch in share:
            for table in seed.TABLE_ORDER:
                columns = ", ".join(seed.COLUMNS[table])
                with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(batch.tables[table])

    def load_directory(rows: str, conn: psycopg.Connection[Any]) -> None:
        with conn.cursor().copy(
            "COPY resident_companies (phone_hash, tenant_id) FROM STDIN"
        ) as copy:
            copy.write(rows)

    # As many connections as seed_houses uses, so the limit is what PostgreSQL alone can take
    # on this machine the same way, not a single-core figure.
    shares = [batches[i::connections] for i in range(connections)]
    conns = [psycopg.connect(owner) for _ in shares]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(shares)) as pool:
            list(pool.map(load, shares, conns))
            list(pool.map(load_directory, slices, conns))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            conn.rollback()
            conn.close()
    return elapsed, houses


async def run(size: int) -> dict[str, Any]:
    import psycopg

    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine
    from linli.db.migrate import upgrade
    from linli.estate import seed

    settings = get_settings()
    owner = owner_dsn(settings)
    upgrade(owner)
    tenant = await _company("基准测试物业")
    report = await seed.seed_houses(
        tenant_id=tenant.id, houses=size, seed=1, connections=CONNECTIONS, batch_houses=BATCH_HOUSES
    )
    rate = report.houses / report.seconds

    limit_tenant = await _company("基准测试物业 (COPY)")
    plans = await seed.create_communities(
        limit_tenant.id, seed.plan_communities(size, random.Random(1)), "LM"
    )
    limit_seconds, limit_houses = copy_limit(
        owner, str(limit_tenant.id), plans, BATCH_HOUSES, CONNECTIONS
    )
    limit_rate = limit_houses / limit_seconds

    with psycopg.connect(owner) as conn:
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT phone_hash FROM residents"
            " WHERE tenant_id = %s AND phone_hash IS NOT NULL"
            " GROUP BY phone_hash HAVING count(*) > 1) d",
            (tenant.id,),
        ).fetchone()
        houses_in_db = conn.execute(
            "SELECT count(*) FROM houses WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    await dispose_engine()
    return {
        "name": "seed",
        "size": size,
        "seconds": round(report.seconds, 3),
        "rate": round(rate, 1),
        "unit": "houses/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "checks": {
            "houses": houses_in_db[0] if houses_in_db else 0,
            "communities": report.communities,
            "buildings": report.buildings,
            "residents": report.residents,
            "relations": report.relations,
            "vehicles": report.vehicles,
            "staff_records": report.staff_records,
            "duplicate_phones": duplicates[0] if duplicates else -1,
            "limit_seconds": round(limit_seconds, 3),
            "timings": {k: round(v, 3) for k, v in report.timings.items()},
            "under_60s": report.seconds < 60,
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
            f"{args.size} houses: {result['seconds']} s, {result['rate']} houses/s", file=sys.stderr
        )


if __name__ == "__main__":
    main()

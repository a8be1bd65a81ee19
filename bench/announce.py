"""Benchmark ``announce``: publish one announcement to ``--size`` residents of one community,
fanned out to the notification queue (one inbox row per resident; with ``--channels``, one
delivery row and one procrastinate job per resident and channel too).

The timed part is the manager's approval through the service in a real unit of work (tenant
set, RLS on): the set-based ``INSERT … SELECT DISTINCT`` of the inbox rows, the deliveries
and their jobs, the audit row and the outbox event, and the commit.

``limit_rate``: a raw ``INSERT … SELECT DISTINCT`` of rows of the same shape (same columns
and values, ids from the same SQL function) into a scratch table with no index, key or row
security, from the same audience, in the same run.

Data: ``linli.estate.seed`` makes communities of 1,000-8,000 houses, so after seeding the
script moves every current resident link into the first community (one UPDATE, before
timing) to get a single audience of about ``--size`` residents; some residents hold several
houses, which is what the ``duplicates`` check is about.

    python bench/announce.py [--size 100000] [--channels wechat] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any


async def run(size: int, channels: list[str]) -> dict[str, Any]:
    import psycopg
    from sqlalchemy import select

    from linli.auth.actor import Actor
    from linli.auth.models import StaffUser
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.db.migrate import upgrade
    from linli.estate import seed
    from linli.notices import service as notices
    from linli.tenancy import service as tenancy_service

    settings = get_settings()
    owner = owner_dsn(settings)
    upgrade(owner)
    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="公告基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
        admin_id = (
            await session.scalars(select(StaffUser.id).where(StaffUser.tenant_id == tenant.id))
        ).one()
    print(f"seeding about {size} residents", file=sys.stderr)
    report = await seed.seed_houses(tenant_id=tenant.id, houses=max(500, size * 10 // 21), seed=8)
    with psycopg.connect(owner, autocommit=True) as conn:
        first = conn.execute(
            "SELECT id FROM communities WHERE tenant_id = %s ORDER BY code LIMIT 1", (tenant.id,)
        ).fetchone()
        assert first is not None
        community_id = first[0]
        conn.execute(
            "UPDATE resident_houses SET community_id = %s WHERE tenant_id = %s",
            (community_id, tenant.id),
        )
        # Every tenth resident also owns the next house: they must still get one message.
        conn.execute(
            "INSERT INTO resident_houses (tenant_id, id, resident_id, house_id, community_id,"
            " relation, source)"
            " SELECT tenant_id, linli_uuid7(), resident_id, next_house, community_id,"
            " 'owner', 'seed'"
            " FROM (SELECT tenant_id, resident_id, community_id, row_number() OVER (ORDER BY id) n,"
            "              lead(house_id) OVER (ORDER BY id) next_house"
            "       FROM resident_houses WHERE tenant_id = %s AND moved_out_on IS NULL) l"
            " WHERE n %% 10 = 0 AND next_house IS NOT NULL"
            " ON CONFLICT DO NOTHING",
            (tenant.id,),
        )
        conn.execute("ANALYZE resident_houses")
        audience_row = conn.execute(
            "SELECT count(*), count(DISTINCT resident_id) FROM resident_houses"
            " WHERE tenant_id = %s AND moved_out_on IS NULL",
            (tenant.id,),
        ).fetchone()
    assert audience_row is not None
    links, audience = int(audience_row[0]), int(audience_row[1])
    print(f"{audience} residents on {links} house links", file=sys.stderr)

    author = Actor.staff(
        id=admin_id,
        tenant_id=tenant.id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(tenant.id) as session:
        draft = await notices.create_draft(
            session,
            author,
            community_id=community_id,
            title="停水通知",
            body="本周三 9:00-12:00 全小区停水检修,请提前储水。",
            channels=channels,
        )
        await notices.submit(session, author, announcement_id=draft.id)
    approver = Actor.system(tenant.id)  # a second person: the author may not approve

    started = time.perf_counter()
    async with unit_of_work(tenant.id) as session:
        published = await notices.approve(session, approver, announcement_id=draft.id)
    seconds = time.perf_counter() - started
    again_started = time.perf_counter()
    async with unit_of_work(tenant.id) as session:
        again = await notices.approve(session, approver, announcement_id=draft.id)
    again_seconds = time.perf_counter() - again_started

    key = notices.dedupe_key(draft.id)
    with psycopg.connect(owner, autocommit=True) as conn:
        counted = conn.execute(
            "SELECT count(*), count(DISTINCT resident_id) FROM notifications"
            " WHERE tenant_id = %s AND dedupe_key = %s",
            (tenant.id, key),
        ).fetchone()
        deliveries = conn.execute(
            "SELECT count(*) FROM notification_deliveries d JOIN notifications n"
            " ON n.tenant_id = d.tenant_id AND n.id = d.notification_id"
            " WHERE n.tenant_id = %s AND n.dedupe_key = %s",
            (tenant.id, key),
        ).fetchone()
        assert counted is not None and deliveries is not None
        # The physical limit: the same rows, raw, into a table with nothing to maintain.
        with conn.transaction():
            conn.execute(
                "CREATE TEMP TABLE scratch_notifications"
                " (LIKE notifications INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            limit_started = time.perf_counter()
            conn.execute(
                "INSERT INTO scratch_notifications (tenant_id, id, resident_id, community_id,"
                " template, params, link, source_type, source_id, dedupe_key)"
                " SELECT %(t)s, linli_uuid7(), a.resident_id, %(c)s, 'announcement.published',"
                " %(p)s::jsonb, %(l)s, 'announcement', %(a)s, %(k)s"
                " FROM (SELECT DISTINCT resident_id FROM resident_houses"
                "       WHERE tenant_id = %(t)s AND community_id = %(c)s"
                "         AND moved_out_on IS NULL) a",
                {
                    "t": tenant.id,
                    "c": community_id,
                    "p": json.dumps(
                        {"title": "停水通知", "community": "x", "published": "2026-01-01"}
                    ),
                    "l": f"/portal/notices/{draft.id}?company={tenant.id}",
                    "a": draft.id,
                    "k": key + ":limit",
                },
            )
            limit_seconds = time.perf_counter() - limit_started
    await dispose_engine()
    total, distinct = int(counted[0]), int(counted[1])
    rate = total / seconds
    limit_rate = audience / limit_seconds
    return {
        "name": "announce",
        "size": total,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "residents/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "checks": {
            "audience": audience,
            "house_links": links,
            "notifications": total,
            "duplicates": total - distinct,
            "missing": audience - distinct,
            "deliveries": int(deliveries[0]),
            "channels": ",".join(channels) or "portal",
            "republish_added": again.recipients - published.recipients,
            "republish_seconds": round(again_seconds, 3),
            "under_10s": seconds < 10,
            "seed_seconds": round(report.seconds, 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="residents in the audience")
    parser.add_argument(
        "--channels", default="", help="extra channels, comma-separated: sms, wechat"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    result = asyncio.run(run(args.size, channels))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{result['size']} residents in {result['seconds']} s"
            f" ({result['ratio']:.0%} of a raw INSERT … SELECT)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

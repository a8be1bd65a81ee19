"""Parking for a seeded company (演示车位): garages, spaces held by the residents' cars.

``seed_parking(tenant_id)`` adds to a company that already has communities, houses,
residents and vehicles (``linli seed --houses N``): per community an underground
garage (地下车库B1) with one space per registered car, held by the car's house and
owner (产权, or 租赁 with the lease of a tenant), and a surface car park (地面停车场)
of temporary spaces, one per ten houses. Two set-based statements, one per table,
however many houses; both run as the app role under the tenant's RLS. Running it
again changes nothing (``ON CONFLICT DO NOTHING`` on the natural keys).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from linli.db.engine import unit_of_work

GARAGE = "地下车库B1"
SURFACE = "地面停车场"
HOUSES_PER_SURFACE_SPACE = 10

# A UUIDv7 per row, made in SQL: 48 bits of milliseconds, version 7, variant 10, random rest.
_UUID7 = """(lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
  || '7' || substr(md5(random()::text), 1, 3) || to_hex(8 + floor(random() * 4)::int)
  || substr(md5(random()::text), 1, 15))::uuid"""

AREAS = f"""
INSERT INTO parking_areas (tenant_id, id, community_id, name, underground)
SELECT c.tenant_id, {_UUID7}, c.id, a.name, a.underground
FROM communities c
CROSS JOIN (VALUES (CAST(:garage AS text), true), (CAST(:surface AS text), false))
    AS a(name, underground)
WHERE c.tenant_id = :tenant AND c.archived_at IS NULL
ON CONFLICT (tenant_id, community_id, name) DO NOTHING
"""  # noqa: S608

SPACES = f"""
WITH cars AS (
  SELECT v.community_id, v.house_id, v.resident_id, rh.relation, rh.lease_start, rh.lease_end,
         row_number() OVER (PARTITION BY v.community_id ORDER BY v.id) AS n
  FROM vehicles v
  LEFT JOIN resident_houses rh ON rh.tenant_id = v.tenant_id AND rh.house_id = v.house_id
       AND rh.resident_id = v.resident_id AND rh.moved_out_on IS NULL
  WHERE v.tenant_id = :tenant AND v.house_id IS NOT NULL AND v.archived_at IS NULL
),
houses_per AS (
  SELECT community_id, count(*) AS houses FROM houses
  WHERE tenant_id = :tenant AND archived_at IS NULL GROUP BY community_id
),
areas AS (
  SELECT community_id, name, id FROM parking_areas
  WHERE tenant_id = :tenant AND name IN (:garage, :surface)
)
INSERT INTO parking_spaces (tenant_id, id, community_id, area_id, space_no, usage, house_id,
                            resident_id, lease_start, lease_end, area_m2)
SELECT :tenant, {_UUID7}, c.community_id, a.id, 'B1-' || lpad(c.n::text, 4, '0'),
       CAST(CASE WHEN c.relation = 'tenant' THEN 'rented' ELSE 'owned' END AS parking_usage),
       c.house_id, c.resident_id,
       CASE WHEN c.relation = 'tenant' THEN c.lease_start END,
       CASE WHEN c.relation = 'tenant' THEN c.lease_end END, 12.50
FROM cars c JOIN areas a ON a.community_id = c.community_id AND a.name = :garage
UNION ALL
SELECT :tenant, {_UUID7}, h.community_id, a.id, 'P-' || lpad(g::text, 4, '0'),
       CAST('temporary' AS parking_usage), NULL, NULL, NULL, NULL, NULL
FROM houses_per h
JOIN areas a ON a.community_id = h.community_id AND a.name = :surface
CROSS JOIN LATERAL generate_series(1, greatest(1, h.houses / :per)::int) AS g
ON CONFLICT (tenant_id, area_id, space_no) DO NOTHING
"""  # noqa: S608


@dataclass
class ParkingSeedReport:
    areas: int = 0
    spaces: int = 0
    seconds: float = 0.0


async def seed_parking(tenant_id: uuid.UUID) -> ParkingSeedReport:
    """Add parking areas and spaces to an already seeded company, set-based and idempotent."""
    started = time.perf_counter()
    report = ParkingSeedReport()
    params = {
        "tenant": tenant_id,
        "garage": GARAGE,
        "surface": SURFACE,
        "per": HOUSES_PER_SURFACE_SPACE,
    }
    async with unit_of_work(tenant_id) as session:
        report.areas = (await session.execute(text(AREAS), params)).rowcount or 0  # type: ignore[attr-defined]
        report.spaces = (await session.execute(text(SPACES), params)).rowcount or 0  # type: ignore[attr-defined]
    report.seconds = time.perf_counter() - started
    return report

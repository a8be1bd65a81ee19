"""The set-based SQL of a billing run: one ``INSERT ... SELECT`` per fee kind and chunk.

Each statement computes every bill of a chunk of buildings in PostgreSQL:
prices come from the price versions in force during the period, prorated by
day when a price changes mid-period (``sum(price × days in force) / days in
period``), the variant matching the house type (or parking usage) preferred
over the item's default price. ``ON CONFLICT DO NOTHING`` on the bill's
natural key is what makes a run idempotent and a killed run safe to re-run.

The same SELECT serves the preview (counted, not inserted), so a preview
cannot disagree with what the run then issues.

These statements read the estate tables (houses, parking spaces) directly:
a billing run is a set-based join over them, which no per-house service call
could do at a million rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.billing.models import FeeCycle, FeeKind

# Bills carry UUIDv7 ids made in SQL (48 bits of milliseconds, version 7, RFC variant).
ID_EXPRESSION = """encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
  substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"""

BILL_COLUMNS = (
    "tenant_id, id, community_id, building_id, house_id, fee_item_id, subject_id, run_id,"
    " period_start, period_end, due_on, quantity, amount_cents, settled_cents,"
    " late_fee_waived, created_at"
)

# Price per period of each (fee item, variant): the versions' prices weighted by the days
# each is in force within [ps, pe), divided by the period's days in the SELECT below.
_PRICE_DAYS = """
versions AS (
  SELECT p.fee_item_id, p.variant, p.unit_price, p.effective_from,
         coalesce(lead(p.effective_from) OVER (
           PARTITION BY p.fee_item_id, p.variant ORDER BY p.effective_from), 'infinity'::date)
           AS effective_to
  FROM fee_prices p WHERE p.fee_item_id = ANY(:items)
),
price_days AS (
  SELECT fee_item_id, variant,
         sum(unit_price * greatest(0, least(CAST(:pe AS date), effective_to)
                                      - greatest(CAST(:ps AS date), effective_from))) AS cents
  FROM versions GROUP BY fee_item_id, variant
)"""


def _variant_prices(enum_type: str) -> str:
    """(fee item, variant value) → price-days, the specific variant before the default."""
    return f"""
prices AS (
  SELECT DISTINCT ON (d.fee_item_id, v.value) d.fee_item_id, v.value, d.cents
  FROM price_days d
  JOIN unnest(enum_range(NULL::{enum_type})) AS v(value)
    ON d.variant = v.value::text OR d.variant IS NULL
  ORDER BY d.fee_item_id, v.value, d.variant NULLS LAST
)"""  # noqa: S608


def _house_select(quantity: str) -> str:
    """Area (quantity = building area) and fixed (quantity = 1) fees: one bill per house."""
    return f"""
WITH {_PRICE_DAYS}, {_variant_prices("house_type")}
SELECT h.tenant_id, {ID_EXPRESSION} AS id, h.community_id, h.building_id, h.id AS house_id,
       pr.fee_item_id, h.id AS subject_id, CAST(:run AS uuid) AS run_id,
       CAST(:ps AS date) AS period_start, CAST(:pe AS date) AS period_end,
       CAST(:ps AS date) + fi.due_days AS due_on, {quantity} AS quantity,
       round({quantity} * pr.cents / :days)::bigint AS amount_cents, 0::bigint AS settled_cents,
       false AS late_fee_waived, now() AS created_at
FROM houses h
JOIN prices pr ON pr.value = h.house_type
JOIN fee_items fi ON fi.tenant_id = h.tenant_id AND fi.id = pr.fee_item_id
WHERE h.community_id = :community AND h.building_id = ANY(:buildings) AND h.archived_at IS NULL
"""  # noqa: S608


_PARKING_SELECT = f"""
WITH {_PRICE_DAYS}, {_variant_prices("parking_usage")}
SELECT s.tenant_id, {ID_EXPRESSION} AS id, s.community_id, h.building_id, h.id AS house_id,
       pr.fee_item_id, s.id AS subject_id, CAST(:run AS uuid) AS run_id,
       CAST(:ps AS date) AS period_start, CAST(:pe AS date) AS period_end,
       CAST(:ps AS date) + fi.due_days AS due_on, 1 AS quantity,
       round(pr.cents / :days)::bigint AS amount_cents, 0::bigint AS settled_cents,
       false AS late_fee_waived, now() AS created_at
FROM parking_spaces s
JOIN houses h ON h.tenant_id = s.tenant_id AND h.id = s.house_id
JOIN prices pr ON pr.value = s.usage
JOIN fee_items fi ON fi.tenant_id = s.tenant_id AND fi.id = pr.fee_item_id
WHERE s.community_id = :community AND h.building_id = ANY(:buildings) AND h.archived_at IS NULL
  AND s.archived_at IS NULL
"""  # noqa: S608

# Metered fees: usage of the readings dated in the period (a flagged jump waits for a
# confirmation), priced by the tiers of the version in force at the end of the period.
_METERED_SELECT = f"""
WITH usage AS (
  SELECT m.house_id, m.fee_item_id, sum(m.usage) AS used
  FROM meter_readings m
  WHERE m.community_id = :community AND m.fee_item_id = ANY(:items)
    AND m.read_on >= :ps AND m.read_on < :pe AND m.flag <> 'jump'
  GROUP BY m.house_id, m.fee_item_id
),
price AS (
  SELECT DISTINCT ON (fee_item_id) fee_item_id, unit_price, tiers
  FROM fee_prices WHERE fee_item_id = ANY(:items) AND effective_from < :pe
  ORDER BY fee_item_id, effective_from DESC
)
SELECT h.tenant_id, {ID_EXPRESSION} AS id, h.community_id, h.building_id, h.id AS house_id,
       u.fee_item_id, h.id AS subject_id, CAST(:run AS uuid) AS run_id,
       CAST(:ps AS date) AS period_start, CAST(:pe AS date) AS period_end,
       CAST(:ps AS date) + fi.due_days AS due_on, u.used AS quantity,
       round(CASE WHEN jsonb_typeof(p.tiers) IS DISTINCT FROM 'array'
                  THEN u.used * p.unit_price ELSE (
         SELECT coalesce(sum(greatest(0, least(u.used, coalesce(t.up_to, u.used))
                                   - coalesce(t.below, 0)) * t.price), 0)
         FROM (SELECT (x.tier->>'up_to')::numeric AS up_to, (x.tier->>'price')::numeric AS price,
                      lag((x.tier->>'up_to')::numeric) OVER (ORDER BY x.n) AS below
               FROM jsonb_array_elements(p.tiers) WITH ORDINALITY AS x(tier, n)) t
       ) END)::bigint AS amount_cents,
       0::bigint AS settled_cents, false AS late_fee_waived, now() AS created_at
FROM usage u
JOIN price p ON p.fee_item_id = u.fee_item_id
JOIN houses h ON h.id = u.house_id
JOIN fee_items fi ON fi.tenant_id = h.tenant_id AND fi.id = u.fee_item_id
WHERE h.building_id = ANY(:buildings)
"""  # noqa: S608

SELECTS: dict[FeeKind, str] = {
    FeeKind.AREA: _house_select("h.building_area"),
    FeeKind.FIXED: _house_select("1"),
    FeeKind.PARKING: _PARKING_SELECT,
    FeeKind.METERED: _METERED_SELECT,
}


@dataclass(frozen=True)
class ItemPeriod:
    """The fee items of one kind billed over one period (a month, or a year for yearly items)."""

    kind: FeeKind
    item_ids: list[uuid.UUID]
    start: dt.date
    end: dt.date  # exclusive


def month_end(start: dt.date) -> dt.date:
    return dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)


def item_periods(items: list[Any], period_start: dt.date) -> list[ItemPeriod]:
    """Group the run's items by kind and period; a yearly item only in its billing month."""
    groups: dict[tuple[FeeKind, dt.date], list[uuid.UUID]] = {}
    for item in items:
        kind = FeeKind(item.kind)
        if kind is FeeKind.ONE_OFF:
            continue
        if item.cycle == FeeCycle.YEARLY.value:
            if item.bill_month != period_start.month:
                continue
            end = dt.date(period_start.year + 1, period_start.month, 1)
        else:
            end = month_end(period_start)
        groups.setdefault((kind, end), []).append(item.id)
    return [ItemPeriod(kind, ids, period_start, end) for (kind, end), ids in sorted(groups.items())]


def _params(
    group: ItemPeriod, *, community_id: uuid.UUID, run_id: uuid.UUID, buildings: list[uuid.UUID]
) -> dict[str, Any]:
    return {
        "items": group.item_ids,
        "ps": group.start,
        "pe": group.end,
        "days": (group.end - group.start).days,
        "community": community_id,
        "run": run_id,
        "buildings": buildings,
    }


async def issue_chunk(
    session: AsyncSession,
    group: ItemPeriod,
    *,
    community_id: uuid.UUID,
    run_id: uuid.UUID,
    buildings: list[uuid.UUID],
) -> list[tuple[uuid.UUID, int, int]]:
    """Insert the chunk's bills; returns (fee item, bills inserted, cents) for the ledger."""
    statement = f"""
WITH ins AS (
  INSERT INTO bills ({BILL_COLUMNS})
  {SELECTS[group.kind]}
  ON CONFLICT (tenant_id, fee_item_id, subject_id, period_start) DO NOTHING
  RETURNING fee_item_id, amount_cents
)
SELECT fee_item_id, count(*), coalesce(sum(amount_cents), 0) FROM ins GROUP BY fee_item_id
"""  # noqa: S608
    rows = await session.execute(
        text(statement),
        _params(group, community_id=community_id, run_id=run_id, buildings=buildings),
    )
    return [(item, int(count), int(cents)) for item, count, cents in rows.all()]


async def preview_chunk(
    session: AsyncSession,
    group: ItemPeriod,
    *,
    community_id: uuid.UUID,
    buildings: list[uuid.UUID],
) -> list[tuple[uuid.UUID, int, int]]:
    """What :func:`issue_chunk` would insert now: new bills only, counted and summed."""
    statement = f"""
SELECT s.fee_item_id, count(*), coalesce(sum(s.amount_cents), 0)
FROM ({SELECTS[group.kind]}) s
WHERE NOT EXISTS (
  SELECT 1 FROM bills b
  WHERE b.tenant_id = s.tenant_id AND b.fee_item_id = s.fee_item_id
    AND b.subject_id = s.subject_id AND b.period_start = s.period_start)
GROUP BY s.fee_item_id
"""  # noqa: S608
    rows = await session.execute(
        text(statement),
        _params(group, community_id=community_id, run_id=uuid.UUID(int=0), buildings=buildings),
    )
    return [(item, int(count), int(cents)) for item, count, cents in rows.all()]


async def building_chunks(
    session: AsyncSession, *, community_id: uuid.UUID, max_houses: int
) -> list[list[uuid.UUID]]:
    """The community's buildings packed into chunks of at most ``max_houses`` houses."""
    rows = await session.execute(
        text(
            "SELECT building_id, count(*) FROM houses WHERE community_id = :c"
            " AND archived_at IS NULL GROUP BY building_id ORDER BY building_id"
        ),
        {"c": community_id},
    )
    chunks: list[list[uuid.UUID]] = []
    current: list[uuid.UUID] = []
    size = 0
    for building_id, count in rows.all():
        if current and size + count > max_houses:
            chunks.append(current)
            current, size = [], 0
        current.append(building_id)
        size += count
    if current:
        chunks.append(current)
    return chunks

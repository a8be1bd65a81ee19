"""The fast seed keeps the data rules: counts, encryption at rest, uniqueness, tenant isolation."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from sqlalchemy import func, select, text

from linli.core import crypto
from linli.db.engine import unit_of_work
from linli.estate import seed
from linli.residents.validators import normalize_id_card, normalize_plate
from tests.factories import make_company

TABLES = ("buildings", "units", "houses", "residents", "resident_houses", "vehicles")


def _counts(owner_dsn: str, tenant_id: uuid.UUID) -> dict[str, int]:
    # As the owner (no RLS): what is really in the tables for this company.
    with psycopg.connect(owner_dsn) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                (tenant_id,),
            ).fetchone()[0]  # type: ignore[index]
            for table in (*TABLES, "resident_companies")
        }


@pytest.fixture(scope="module")
async def seeded(linli_env: dict[str, str]) -> tuple[uuid.UUID, uuid.UUID, seed.SeedReport]:
    """Company A seeded with 4,000 houses over several batches, both workers, both connections;
    company B exists with data of its own."""
    other = await make_company(communities=1)
    before = _counts(linli_env["LINLI_DATABASE_URL"], other.id)
    company = await make_company(communities=0)
    report = await seed.seed_houses(
        tenant_id=company.id, houses=4000, batch_houses=700, seed=11, connections=2, workers=2
    )
    assert _counts(linli_env["LINLI_DATABASE_URL"], other.id) == before
    return company.id, other.id, report


async def test_counts_per_table_match_the_report(
    seeded: tuple[uuid.UUID, uuid.UUID, seed.SeedReport], owner_dsn: str
) -> None:
    tenant_id, _, report = seeded
    counts = _counts(owner_dsn, tenant_id)
    assert counts["houses"] == report.houses == 4000
    assert counts["buildings"] == report.buildings > 0
    assert counts["units"] == report.units >= report.buildings * 2
    assert counts["residents"] == report.residents >= 4000 * 0.8
    assert counts["resident_houses"] == report.relations == report.residents
    assert counts["vehicles"] == report.vehicles > 0
    # One sign-in registration per resident with a phone.
    with psycopg.connect(owner_dsn) as conn:
        phones = conn.execute(
            "SELECT count(*) FROM residents WHERE tenant_id = %s AND phone_hash IS NOT NULL",
            (tenant_id,),
        ).fetchone()
    assert phones is not None and counts["resident_companies"] == phones[0] > 0
    assert set(report.timings) >= {"rows", "rows.insert", "rows.copy", "staff"}


async def test_personal_data_is_encrypted_and_decrypts_to_valid_numbers(
    seeded: tuple[uuid.UUID, uuid.UUID, seed.SeedReport], owner_dsn: str
) -> None:
    tenant_id, _, _ = seeded
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT phone_enc, phone_hash, id_card_enc, id_card_hash, birth_date FROM residents"
            " WHERE tenant_id = %s ORDER BY id LIMIT 400",
            (tenant_id,),
        ).fetchall()
    with_phone = [r for r in rows if r[0] is not None]
    with_id = [r for r in rows if r[2] is not None]
    assert len(with_phone) > 300 and with_id
    for phone_enc, phone_hash, _, _, _ in with_phone:
        # Ciphertext, not the number: the 11 digits never appear in the stored bytes.
        phone = crypto.decrypt(bytes(phone_enc))
        assert crypto.normalize_phone(phone) == phone
        assert phone.encode() not in bytes(phone_enc)
        assert bytes(phone_hash) == crypto.blind_index(phone, purpose="phone")
    for _, _, id_enc, id_hash, birth in with_id:
        number = crypto.decrypt(bytes(id_enc))
        assert normalize_id_card(number) == number
        assert bytes(id_hash) == crypto.blind_index(number, purpose="id_card")
        assert birth == dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


async def test_unique_keys_hold_and_references_stay_in_the_company(
    seeded: tuple[uuid.UUID, uuid.UUID, seed.SeedReport], owner_dsn: str
) -> None:
    tenant_id, _, _ = seeded
    checks = {
        "duplicate phones": "SELECT count(*) FROM (SELECT phone_hash FROM residents"
        " WHERE tenant_id = %(t)s AND phone_hash IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d",
        "duplicate id numbers": "SELECT count(*) FROM (SELECT id_card_hash FROM residents"
        " WHERE tenant_id = %(t)s AND id_card_hash IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d",
        "duplicate plates": "SELECT count(*) FROM (SELECT community_id, plate FROM vehicles"
        " WHERE tenant_id = %(t)s GROUP BY 1, 2 HAVING count(*) > 1) d",
        "houses without an owner": "SELECT count(*) FROM houses h WHERE h.tenant_id = %(t)s"
        " AND h.status <> 'unsold' AND NOT EXISTS (SELECT 1 FROM resident_houses r"
        " WHERE r.tenant_id = h.tenant_id AND r.house_id = h.id AND r.relation = 'owner')",
        "relations across communities": "SELECT count(*) FROM resident_houses r JOIN houses h"
        " ON h.tenant_id = r.tenant_id AND h.id = r.house_id"
        " WHERE r.tenant_id = %(t)s AND h.community_id <> r.community_id",
        "leases ending before they start": "SELECT count(*) FROM resident_houses"
        " WHERE tenant_id = %(t)s AND relation = 'tenant'"
        " AND NOT (lease_start < lease_end AND lease_start <= DATE '2026-01-01')",
    }
    with psycopg.connect(owner_dsn) as conn:
        found = {
            name: conn.execute(sql, {"t": tenant_id}).fetchone()[0]  # type: ignore[index]
            for name, sql in checks.items()
        }
        plates = [
            p
            for (p,) in conn.execute(
                "SELECT plate FROM vehicles WHERE tenant_id = %s LIMIT 500", (tenant_id,)
            ).fetchall()
        ]
    assert found == dict.fromkeys(checks, 0)
    assert plates and all(normalize_plate(p) == p for p in plates)


async def test_reused_phone_numbers_are_refused_and_the_batch_leaves_nothing() -> None:
    """Phones come from a counter: a batch that reuses another's counters (a second seed into
    the same company) is refused by the unique index, all or nothing."""
    from linli.config import get_settings
    from linli.db.dsn import app_dsn

    company = await make_company(communities=0)
    first = await seed.create_communities(company.id, [200], "U1")
    second = await seed.create_communities(company.id, [200], "U2")
    async with await psycopg.AsyncConnection.connect(app_dsn(get_settings())) as conn:
        await seed._loader_session(conn)
        batch, _ = seed.build_batch(str(company.id), first, 5_000, 1)
        await seed.ingest(conn, company.id, batch)
        again, _ = seed.build_batch(str(company.id), second, 5_000, 2)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await seed.ingest(conn, company.id, again)
    async with unit_of_work(company.id) as session:
        residents = (await session.execute(text("SELECT count(*) FROM residents"))).scalar_one()
        houses = (await session.execute(text("SELECT count(*) FROM houses"))).scalar_one()
    assert residents == batch.counts["residents"] and houses == 200


async def test_company_b_sees_none_of_company_a_and_the_seed_cannot_write_into_b(
    seeded: tuple[uuid.UUID, uuid.UUID, seed.SeedReport],
) -> None:
    from linli.residents.models import Resident

    tenant_id, other_id, report = seeded
    async with unit_of_work(other_id) as session:
        # Under B's RLS context none of A's rows are visible.
        assert (await session.execute(text("SELECT count(*) FROM houses"))).scalar_one() == 0
        seen = (await session.execute(select(func.count()).select_from(Resident))).scalar_one()
        assert seen == 0
    async with unit_of_work(tenant_id) as session:
        assert (await session.execute(text("SELECT count(*) FROM houses"))).scalar_one() == (
            report.houses
        )
    # A batch generated for A, loaded under B's tenant context: RLS refuses every row.
    plans = await seed.create_communities(other_id, [50], "XT")
    batch, _ = seed.build_batch(str(tenant_id), plans, 900_000_000, 1)
    from linli.config import get_settings
    from linli.db.dsn import app_dsn

    async with await psycopg.AsyncConnection.connect(app_dsn(get_settings())) as conn:
        await seed._loader_session(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await seed.ingest(conn, other_id, batch)

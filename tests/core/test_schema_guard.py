"""The catalog says every tenant table is fenced: forced RLS, a tenant policy, composite keys.

Tables are found by having a ``tenant_id`` column, not by a list: a table added
by any migration is checked the day it appears. Tables without ``tenant_id``
(``procrastinate_*``, ``alembic_version``, the platform tables) are not tenant
data and are left out for that reason alone.

A few global tables must name tenants without being tenant data: they are read
before any tenant is set. Each is listed in ``GLOBAL_TENANT_DIRECTORIES`` with
the reason and its exact columns; the guard checks such a table holds those
columns and nothing more, and is not silently half-fenced. Any other table with
``tenant_id`` gets the full check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

TENANT_TABLES = """
SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity, a.attnum
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

POLICIES = """
SELECT polname, polpermissive, polcmd,
       pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
FROM pg_policy WHERE polrelid = %s
"""

TENANT_FILTER = "tenant_id = linli_current_tenant()"


@dataclass(frozen=True)
class GlobalDirectory:
    reason: str
    columns: frozenset[str]


GLOBAL_TENANT_DIRECTORIES: dict[str, GlobalDirectory] = {
    "resident_companies": GlobalDirectory(
        reason=(
            "A resident is one person across companies. A portal user signs in by phone and "
            "belongs to no tenant, so 'my homes' must learn which companies know that phone "
            "before it can set any tenant. The table maps the phone's blind index (a keyed hash, "
            "not personal data) to tenant ids and holds nothing else; the homes themselves are "
            "then read under each company's RLS."
        ),
        columns=frozenset({"phone_hash", "tenant_id"}),
    ),
    "payment_merchant_routes": GlobalDirectory(
        reason=(
            "A payment provider's notification arrives unauthenticated at a URL naming the"
            " merchant account; the app must learn that account's company before it can read"
            " the account (keys) under the company's RLS. The table maps account ids to tenant"
            " and provider and holds no secret."
        ),
        columns=frozenset({"id", "created_at", "tenant_id", "provider"}),
    ),
}


def _columns(conn: psycopg.Connection[Any], oid: int) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
        (oid,),
    ).fetchall()
    return {name for (name,) in rows}


def schema_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """What is wrong with the tenant tables this connection sees (empty = all fenced)."""
    problems: list[str] = []
    tables = conn.execute(TENANT_TABLES).fetchall()
    tenant_attnum = {oid: attnum for oid, _, _, _, attnum in tables}
    for oid, name, rls, forced, attnum in tables:
        directory = GLOBAL_TENANT_DIRECTORIES.get(name)
        if directory is not None:
            extra = sorted(_columns(conn, oid) - directory.columns)
            if extra:
                problems.append(
                    f"{name}: global tenant directory has columns beyond its allow-list: "
                    + ", ".join(extra)
                )
            continue
        if not rls:
            problems.append(f"{name}: row level security is not enabled")
        if not forced:
            problems.append(f"{name}: row level security is not forced (the owner would bypass it)")

        policies = conn.execute(POLICIES, (oid,)).fetchall()
        fencing = [
            p
            for p in policies
            if p[2] == "*"
            and TENANT_FILTER in (p[3] or "")
            and TENANT_FILTER in (p[4] or p[3] or "")
        ]
        if not fencing:
            problems.append(
                f"{name}: no policy limits every command to tenant_id = linli_current_tenant()"
            )
        for polname, permissive, _, qual, _ in policies:
            # Permissive policies are OR-ed: one that does not filter by tenant opens the table.
            if permissive and TENANT_FILTER not in (qual or ""):
                problems.append(f"{name}: permissive policy {polname} does not filter by tenant")

        pk = conn.execute(
            "SELECT conkey FROM pg_constraint WHERE conrelid = %s AND contype = 'p'", (oid,)
        ).fetchone()
        if pk is None or not pk[0] or pk[0][0] != attnum:
            problems.append(f"{name}: tenant_id is not the first column of the primary key")

        for conname, conkey, confrelid, confkey in conn.execute(
            "SELECT conname, conkey, confrelid, confkey FROM pg_constraint"
            " WHERE conrelid = %s AND contype = 'f'",
            (oid,),
        ).fetchall():
            target_attnum = tenant_attnum.get(confrelid)
            if target_attnum is None:
                continue  # a platform table: not tenant data
            pairs = list(zip(conkey, confkey, strict=True))
            if (attnum, target_attnum) not in pairs:
                problems.append(
                    f"{name}: foreign key {conname} does not include tenant_id on both sides"
                )
    return problems


def test_every_tenant_table_is_fenced(owner_dsn: str) -> None:
    with psycopg.connect(owner_dsn) as conn:
        names = [row[1] for row in conn.execute(TENANT_TABLES).fetchall()]
        assert {"communities", "staff_users", "staff_community_grants", "audit_log"} <= set(names)
        assert schema_problems(conn) == []


def test_the_guard_reports_each_kind_of_hole(owner_dsn: str) -> None:
    """Deliberately broken tables, in a transaction that is rolled back: every hole is named."""
    with psycopg.connect(owner_dsn) as conn:
        with conn.transaction():  # left by raising Rollback: nothing of this stays
            conn.execute(
                """
                CREATE TABLE guard_parent (
                    tenant_id uuid, id uuid, PRIMARY KEY (tenant_id, id), UNIQUE (id)
                );
                ALTER TABLE guard_parent ENABLE ROW LEVEL SECURITY;
                ALTER TABLE guard_parent FORCE ROW LEVEL SECURITY;
                CREATE POLICY tenant_isolation ON guard_parent
                    USING (tenant_id = linli_current_tenant())
                    WITH CHECK (tenant_id = linli_current_tenant());

                CREATE TABLE guard_loose (
                    tenant_id uuid, id uuid, parent_id uuid REFERENCES guard_parent (id),
                    PRIMARY KEY (id, tenant_id)
                );

                CREATE TABLE guard_open (tenant_id uuid, id uuid, PRIMARY KEY (tenant_id, id));
                ALTER TABLE guard_open ENABLE ROW LEVEL SECURITY;
                CREATE POLICY tenant_isolation ON guard_open
                    USING (tenant_id = linli_current_tenant())
                    WITH CHECK (tenant_id = linli_current_tenant());
                CREATE POLICY everyone ON guard_open USING (true);

                CREATE TABLE guard_directory (phone_hash bytea, tenant_id uuid);
                """
            )
            problems = [p for p in schema_problems(conn) if p.startswith("guard_")]
            raise psycopg.Rollback()
    assert sorted(problems) == sorted(
        [
            "guard_loose: row level security is not enabled",
            "guard_loose: row level security is not forced (the owner would bypass it)",
            "guard_loose: no policy limits every command to tenant_id = linli_current_tenant()",
            "guard_loose: tenant_id is not the first column of the primary key",
            "guard_loose: foreign key guard_loose_parent_id_fkey"
            " does not include tenant_id on both sides",
            "guard_open: row level security is not forced (the owner would bypass it)",
            "guard_open: permissive policy everyone does not filter by tenant",
            # A directory-shaped global table that is not on the allow-list is tenant data.
            "guard_directory: row level security is not enabled",
            "guard_directory: row level security is not forced (the owner would bypass it)",
            "guard_directory: no policy limits every command to tenant_id = linli_current_tenant()",
            "guard_directory: tenant_id is not the first column of the primary key",
        ]
    )


def test_allowed_global_directories_exist_and_carry_nothing_more(owner_dsn: str) -> None:
    """Each allow-listed table exists (no stale entries), and a column added to one is caught."""
    with psycopg.connect(owner_dsn) as conn:
        for name, directory in GLOBAL_TENANT_DIRECTORIES.items():
            assert directory.reason
            oid = conn.execute("SELECT to_regclass(%s)::oid", (f"public.{name}",)).fetchone()
            assert oid is not None and oid[0] is not None, f"{name} is allow-listed but missing"
            assert _columns(conn, oid[0]) == directory.columns
        with conn.transaction():
            conn.execute("ALTER TABLE resident_companies ADD COLUMN phone_enc bytea")
            problems = schema_problems(conn)
            raise psycopg.Rollback()
    assert problems == [
        "resident_companies: global tenant directory has columns beyond its allow-list: phone_enc"
    ]
